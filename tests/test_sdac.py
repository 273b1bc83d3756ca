"""SDAC: the reverse samples, the Boltzmann weights and the weighted loss by hand; the shared DDPM
actor's training-time noise prediction and the generator against algorithms/common/diffusion.py's
closed forms; best-of-N over a twin critic; the update's schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from algorithms.common.diffusion import DDPMSchedule, reverse_process
from algorithms.common.diffusion_losses import predict_noise
from algorithms.sdac import SDAC, SDACConfig, reverse_samples, sdac_loss, sdac_weights
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


def tiny(**kw) -> SDAC:
    cfg = SDACConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "num_particles": 4, "num_reverse_samples": 5, **kw})
    return SDAC(3, 2, cfg, CPU)


# -- the maths by hand ---------------------------------------------------------------------------------

def test_reverse_samples_by_hand_and_they_invert_q_sample():
    sched = DDPMSchedule(20, "vp")
    abar = np.cumprod(1 - sched.betas.double().numpy())
    x_t = torch.tensor([[0.3, -0.2], [0.05, 0.1]])
    i = torch.tensor([3, 17])
    noise = torch.tensor([[[0.1, -0.4], [1.0, 0.0]], [[0.0, 0.0], [-0.2, 0.3]]])  # [B=2, K=2, d=2]
    got = reverse_samples(sched, x_t, i, noise, clip=False)
    for b in range(2):
        for k in range(2):
            a = abar[i[b]]
            expected = (x_t[b].double().numpy() - math.sqrt(1 - a) * noise[b, k].double().numpy()) / math.sqrt(a)
            np.testing.assert_allclose(got[b, k].numpy(), expected, rtol=1e-5, atol=1e-6)
    # the reverse sample with the forward noise recovers the clean action exactly (q_sample of diffusion.py)
    a0 = torch.tensor([[0.4, -0.7], [0.9, 0.2]])
    eps = torch.randn(2, 2)
    back = reverse_samples(sched, sched.q_sample(a0, eps, i), i, eps.unsqueeze(1), clip=False)[:, 0]
    torch.testing.assert_close(back, a0, atol=1e-5, rtol=0)
    # clipping to the action box
    assert reverse_samples(sched, torch.full((1, 2), 0.9), torch.tensor([19]), torch.full((1, 1, 2), -3.0)).max() == 1.0


def test_weights_are_a_softmax_of_beta_q_per_state():
    q = torch.tensor([[0.0, 1.0, 2.0], [0.5, 0.5, -1.0]])
    beta = 5.0 / 2.5  # 5 / alpha with alpha = 2.5
    w = sdac_weights(q, beta)
    row0 = np.exp([0.0, 2.0, 4.0]) / np.exp([0.0, 2.0, 4.0]).sum()
    row1 = np.exp([1.0, 1.0, -2.0]) / np.exp([1.0, 1.0, -2.0]).sum()
    np.testing.assert_allclose(w.numpy(), np.stack([row0, row1]), rtol=1e-6)


def test_weighted_reverse_samples_estimate_the_diffused_boltzmann_noise():
    """The loss's target sum_k w_k eps'_k is a self-normalised estimate of the noise of the diffused Boltzmann
    policy (docs/som-notes.md section 19 drives a sampler with it). Independent check: for a Gaussian Boltzmann
    policy exp(beta Q) = N(m, s^2 I) the diffused density is N(sqrt(abar) m, (abar s^2 + 1 - abar) I), whose
    noise is sqrt(1 - abar) (x - sqrt(abar) m) / (abar s^2 + 1 - abar); with many reverse samples the estimate
    must match it."""
    torch.manual_seed(0)
    sched = DDPMSchedule(10, "linear", linear_scale=0.8)
    m, s, beta = torch.tensor([0.2, -0.1]), 0.3, 2.0
    x = torch.tensor([[0.0, 0.0], [0.5, -0.4], [-0.3, 0.6]])
    for i in (2, 5, 9):
        abar = float(sched.abar[i])
        steps = torch.full((3,), i)
        noise = torch.randn((3, 200_000, 2), dtype=torch.float64)
        a_rev = reverse_samples(sched, x.double(), steps, noise, clip=False)
        q = -((a_rev - m.double()) ** 2).sum(-1) / (2 * s**2 * beta)  # exp(beta Q) = N(m, s^2 I) up to a constant
        estimate = (sdac_weights(q, beta).unsqueeze(-1) * noise).sum(1)
        exact = math.sqrt(1 - abar) * (x.double() - math.sqrt(abar) * m.double()) / (abar * s**2 + 1 - abar)
        torch.testing.assert_close(estimate, exact, atol=0.03, rtol=0.03)


def test_weighted_loss_by_hand():
    noise_pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # eps_theta(s_b, x_b, i_b), shared by the K samples
    noise = torch.tensor([[[0.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [2.0, 2.0]]])  # eps'_bk
    w = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    # squared errors per (b, k) summed over dims: (1, 1), (1, 4); the loss is the mean over b, k and the 2 dims
    expected = (0.25 * 1 + 0.75 * 1 + 0.5 * 1 + 0.5 * 4) / (2 * 2 * 2)
    assert math.isclose(sdac_loss(noise_pred, noise, w).item(), expected, rel_tol=1e-6)


def test_actor_loss_uses_the_critic_weights_at_the_reverse_samples():
    """The whole actor loss, recomputed from the same random draws with the pieces checked above."""
    algo = tiny(inverse_temperature=3.0)
    obs, action = torch.randn(4, 3), torch.rand(4, 2) * 2 - 1
    torch.manual_seed(7)
    loss, w = algo.actor_loss(obs, action)
    torch.manual_seed(7)
    i = torch.randint(0, 20, (4,))
    x_t = algo.schedule.q_sample(action, torch.randn_like(action), i)
    noise = torch.randn(4, 5, 2)
    a_rev = reverse_samples(algo.schedule, x_t, i, noise)
    q = algo.critic.min_q(obs.repeat_interleave(5, 0), a_rev.reshape(20, 2)).view(4, 5)
    w_hand = torch.softmax(3.0 * q, dim=1)
    eps = predict_noise(algo.actor, obs, x_t, i)
    hand = sum(w_hand[b, k] * ((eps[b] - noise[b, k]) ** 2).mean() for b in range(4) for k in range(5)) / 20
    torch.testing.assert_close(w, w_hand)
    torch.testing.assert_close(loss, hand, rtol=1e-5, atol=1e-7)


def test_default_inverse_temperature_is_five_over_alpha():
    algo = tiny(init_alpha=2.0)
    assert math.isclose(algo.inverse_temperature().item(), 2.5, rel_tol=1e-6)
    assert math.isclose(tiny(inverse_temperature=0.7).inverse_temperature().item(), 0.7, rel_tol=1e-6)


# -- the DDPM actor against diffusion.py's closed forms ---------------------------------------------------------

def test_predict_noise_is_the_reverse_process_network_call():
    """Training-time eps_theta at per-row steps equals the call the reverse process makes at that step:
    a reverse process driven by `predict_noise` reproduces the actor's own sampler draw for draw."""
    algo = tiny(act_with_target_actor=False)
    obs, x_init = torch.randn(6, 3), torch.randn(6, 2)

    def model(x, i):
        return predict_noise(algo.actor, obs, x, torch.full((6,), i))

    torch.manual_seed(3)
    ours = algo.generate(obs, x_init)
    torch.manual_seed(3)
    reference = reverse_process(model, algo.schedule, x_init).clamp(-1, 1)
    torch.testing.assert_close(ours, reference)
    torch.manual_seed(3)
    path = algo.rollout(obs, x_init)
    assert len(path) == 21 and torch.equal(path[0], x_init)
    torch.testing.assert_close(path[-1], ours)


def test_one_step_generator_is_the_clipped_clean_prediction():
    """T = 1: a = clip(x / sqrt(abar) - sqrt(1 / abar - 1) eps_theta(s, x, 0))."""
    algo = tiny(diffusion_steps=1)
    obs, x = torch.randn(5, 3), 0.3 * torch.randn(5, 2)
    abar = algo.schedule.abar[0].item()
    eps = predict_noise(algo.actor, obs, x, torch.zeros(5, dtype=torch.long))
    expected = (x / math.sqrt(abar) - math.sqrt(1 / abar - 1) * eps).clamp(-1, 1)
    torch.testing.assert_close(algo.generate(obs, x), expected, rtol=1e-5, atol=1e-6)


# -- best-of-N --------------------------------------------------------------------------------------------

class FixedCandidates:
    """Stubs: the generator returns the same 4 candidates for every state; the twin critic's forward pass
    is a table over them in which argmax Q1 (candidate 0) != argmax min(Q1, Q2) (candidate 2). Only the
    two members' values are stubbed: taking their min is left to the critic's own `min_q`."""

    candidates = torch.tensor([[0.9, 0.9], [-0.5, 0.1], [0.2, -0.3], [0.0, 0.0]])
    q1 = torch.tensor([5.0, 1.0, 3.0, 0.0])
    q2 = torch.tensor([-1.0, 2.0, 2.5, 0.0])

    @classmethod
    def install(cls, algo, monkeypatch):
        def generate(states, noise=None):
            return cls.candidates.repeat(states.shape[0] // 4, 1)

        def twin(states, actions):
            idx = (actions.unsqueeze(1) - cls.candidates).abs().sum(-1).argmin(dim=1)
            return torch.stack([cls.q1[idx], cls.q2[idx]])

        monkeypatch.setattr(algo, "generate", generate)
        monkeypatch.setattr(algo.actor, "sample", lambda obs, *a, **k: generate(obs))
        monkeypatch.setattr(algo.critic, "forward", twin)


def test_best_of_n_keeps_argmax_of_min_q_not_of_q1(monkeypatch):
    algo = tiny()
    FixedCandidates.install(algo, monkeypatch)
    act = algo.act(np.zeros(3, np.float32), deterministic=True)
    np.testing.assert_allclose(act, [0.2, -0.3])  # candidate 2, where Q1 would pick candidate 0
    # the training-time policy (current actor, the critic target's a' and SDAC's a) selects the same way
    monkeypatch.setattr(algo, "exploration_std", lambda: None)
    torch.testing.assert_close(algo.policy_actions(torch.zeros(3, 3)), torch.tensor([[0.2, -0.3]]).expand(3, 2))


def test_acting_adds_alpha_times_noise_scale_noise(monkeypatch):
    algo = tiny(init_alpha=2.0)
    FixedCandidates.install(algo, monkeypatch)
    torch.manual_seed(0)
    acts = np.stack([algo.act(np.zeros(3, np.float32)) for _ in range(2000)])
    assert np.allclose(acts.mean(0), [0.2, -0.3], atol=0.02)
    assert np.allclose(acts.std(0), 2.0 * 0.1, rtol=0.08)


# -- the update ---------------------------------------------------------------------------------------------

def test_actor_alpha_and_targets_update_on_their_schedules():
    torch.manual_seed(0)
    algo = tiny(alpha_delay=3)
    batch = random_batch(3, 2, 8, CPU)
    actor_changed, target_changed, log_alphas = [], [], []
    for _ in range(5):
        before = [p.detach().clone() for p in algo.actor.parameters()]
        before_t = [p.detach().clone() for p in algo.actor_target.parameters()]
        algo.update(batch)
        actor_changed.append(any(not torch.equal(a, p) for a, p in zip(before, algo.actor.parameters())))
        target_changed.append(any(not torch.equal(a, p) for a, p in zip(before_t, algo.actor_target.parameters())))
        log_alphas.append(algo.temperature.log_alpha.item())
    assert actor_changed == [True, False, True, False, True]  # policy delay 2, from update 0
    assert target_changed == [True, False, True, False, True]  # target delay 2 (the acting copy follows)
    steps = np.diff([math.log(2 * 2.5), *log_alphas]) != 0
    assert steps.tolist() == [True, False, False, True, False]  # alpha delay 3
    # the noise entropy of 5 * 0.1 N(0, I) is above -0.9 per dimension, so alpha falls
    assert log_alphas[0] < math.log(5.0)


def test_actor_loss_sees_the_critic_before_its_single_step(monkeypatch):
    """Every loss of an update sees the critic before that update's step (the reference's order), and
    the critic takes one Adam step per update: at each actor loss (updates 0 and 2) the critic's
    parameters are those from before the update, which afterwards differ, by one step each time."""
    torch.manual_seed(0)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    seen = []
    real = algo.actor_loss
    monkeypatch.setattr(algo, "actor_loss", lambda obs, action: seen.append([p.detach().clone() for p in algo.critic.parameters()])
                        or real(obs, action))
    for k in range(3):
        before = [p.detach().clone() for p in algo.critic.parameters()]
        algo.update(batch)
        assert len(seen) == k // 2 + 1
        if k % 2 == 0:
            assert all(torch.equal(a, b) for a, b in zip(seen[-1], before))
        assert not all(torch.equal(a, b) for a, b in zip(before, algo.critic.parameters()))
        assert {int(s["step"]) for s in algo.critic_opt.state.values()} == {k + 1}


def test_acting_uses_the_polyak_copy_of_the_actor():
    """With act_with_target_actor (the default), `generate` (hence best-of-N acting and evaluation) is the
    reverse process of the target actor, not of the current one; without it, of the current actor."""
    algo = tiny()
    with torch.no_grad():
        for p in algo.actor_target.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs, x = torch.randn(5, 3), torch.randn(5, 2)

    def draw(fn):
        torch.manual_seed(4)
        return fn()

    got = draw(lambda: algo.generate(obs, x))
    target = draw(lambda: algo.actor_target.sample(obs, algo.schedule, algo.config.prior_std, x_init=x).clamp(-1, 1))
    online = draw(lambda: algo.actor.sample(obs, algo.schedule, algo.config.prior_std, x_init=x).clamp(-1, 1))
    torch.testing.assert_close(got, target)
    assert (got - online).abs().max() > 1e-3
    plain = tiny(act_with_target_actor=False)
    assert not hasattr(plain, "actor_target")
    torch.testing.assert_close(draw(lambda: plain.generate(obs, x)),
                               draw(lambda: plain.actor.sample(obs, plain.schedule, plain.config.prior_std, x_init=x).clamp(-1, 1)))


def test_zero_actor_lr_freezes_the_actor_and_the_update_is_finite():
    torch.manual_seed(1)
    algo = tiny(actor_lr=0.0)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.equal(a, p) for a, p in zip(before, algo.actor.parameters()))
    assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in metrics.values())


@pytest.mark.parametrize("schedule", ["vp", "cosine"])
def test_checkpoint_roundtrips(schedule):
    torch.manual_seed(1)
    algo = tiny(beta_schedule=schedule)
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(3):
        algo.update(batch)
    other = tiny(beta_schedule=schedule)
    other.load_state_dict(algo.state_dict())
    assert other.updates == 3
    torch.testing.assert_close(other.temperature.alpha, algo.temperature.alpha)
    torch.manual_seed(5)
    a = algo.generate(torch.zeros(4, 3))
    torch.manual_seed(5)
    torch.testing.assert_close(other.generate(torch.zeros(4, 3)), a)
