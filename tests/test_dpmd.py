"""DPMD: the weights (normalisation, the clip at +-3, the temperature) and the running statistics by
hand, the weighted DDPM loss by hand, one critic step per update (the reference steps twice), and the
update's schedules. The DDPM actor and best-of-N are shared with SDAC (tests/test_sdac.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from algorithms.common.diffusion_losses import predict_noise, weighted_noise_loss
from algorithms.dpmd import DPMD, DPMDConfig, dpmd_weights, running_stats
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


def tiny(**kw) -> DPMD:
    cfg = DPMDConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "num_particles": 4, **kw})
    return DPMD(3, 2, cfg, CPU)


def test_weights_by_hand_including_the_clip():
    q = torch.tensor([1.0, 2.0, 10.0, -10.0, 1.5])
    m, s, alpha = torch.tensor(1.5), torch.tensor(0.5), 2.0
    # (q - m) / s = -1, 1, 17 -> 3, -23 -> -3, 0; then / alpha and exp
    expected = np.exp(np.array([-1.0, 1.0, 3.0, -3.0, 0.0]) / alpha)
    np.testing.assert_allclose(dpmd_weights(q, m, s, alpha).numpy(), expected, rtol=1e-6)
    # the reference's precedence bug, q - m / s, would give exp(clip(q - 3, -3, 3) / 2) instead: not this
    buggy = np.exp(np.clip(q.numpy() - 1.5 / 0.5, -3, 3) / alpha)
    assert not np.allclose(dpmd_weights(q, m, s, alpha).numpy(), buggy)
    # a different clip
    np.testing.assert_allclose(dpmd_weights(q, m, s, 1.0, clip=1.0).numpy(), np.exp([-1.0, 1.0, 1.0, -1.0, 0.0]), rtol=1e-6)


def test_running_statistics_by_hand():
    q = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3, population std sqrt(3.5)
    m, s = running_stats(torch.tensor(0.0), torch.tensor(1.0), q, 0.001)
    assert math.isclose(m.item(), 0.001 * 3.0, rel_tol=1e-6)
    assert math.isclose(s.item(), 1.0 + 0.001 * (math.sqrt(3.5) - 1.0), rel_tol=1e-6)
    m2, s2 = running_stats(m, s, q, 0.5)
    assert math.isclose(m2.item(), m.item() + 0.5 * (3.0 - m.item()), rel_tol=1e-6)
    assert math.isclose(s2.item(), s.item() + 0.5 * (math.sqrt(3.5) - s.item()), rel_tol=1e-6)


def test_weighted_loss_by_hand():
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    noise = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, -1.0]])
    w = torch.tensor([2.0, 0.5, 1.0])
    expected = (2.0 * (1 + 0) + 0.5 * (0 + 4) + 1.0 * (0 + 4)) / (3 * 2)
    assert math.isclose(weighted_noise_loss(pred, noise, w).item(), expected, rel_tol=1e-6)


def test_actor_loss_is_the_weighted_ddpm_loss_on_the_given_samples():
    algo = tiny()
    obs, action, w = torch.randn(4, 3), torch.rand(4, 2) * 2 - 1, torch.tensor([0.5, 1.0, 2.0, 4.0])
    torch.manual_seed(11)
    loss = algo.actor_loss(obs, action, w)
    torch.manual_seed(11)
    i = torch.randint(0, 20, (4,))
    eps = torch.randn(4, 2)
    abar = algo.schedule.abar[i].unsqueeze(1)
    x = abar.sqrt() * action + (1 - abar).sqrt() * eps  # q(x_i | a) by hand
    pred = predict_noise(algo.actor, obs, x, i)
    hand = sum(w[b] * ((pred[b] - eps[b]) ** 2).sum() for b in range(4)) / 8
    torch.testing.assert_close(loss, hand, rtol=1e-5, atol=1e-7)


def test_one_update_uses_the_stepped_critic_and_the_old_statistics(monkeypatch):
    """Weights from min Q(s', a') of the critic after its (single) step, normalised by the running
    statistics from before the batch; those statistics then move by 0.001 toward the batch's. The
    statistics start away from (0, 1), where normalising would be the identity."""
    torch.manual_seed(2)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    m0, s0 = 0.05, 0.04
    algo.q_mean.fill_(m0)
    algo.q_std.fill_(s0)
    seen = {}
    real = algo.actor_loss

    def spy(obs, action, weights):
        seen["obs"], seen["action"], seen["weights"] = obs, action, weights
        return real(obs, action, weights)

    monkeypatch.setattr(algo, "actor_loss", spy)
    algo.update(batch)
    q = algo.critic.min_q(batch.next_obs, seen["action"]).detach()  # critic after its step (not touched since)
    z = (q - m0) / s0
    assert ((z.abs() < 2.9) & ((z - q).abs() > 0.1)).any()  # the data exercise the normalisation, not only the clip
    torch.testing.assert_close(seen["weights"], torch.exp(z.clamp(-3, 3) / 5.0))  # alpha = 5
    assert torch.equal(seen["obs"], batch.next_obs)
    assert math.isclose(algo.q_mean.item(), m0 + 0.001 * (q.mean().item() - m0), rel_tol=1e-5)
    assert math.isclose(algo.q_std.item(), s0 + 0.001 * (q.std(unbiased=False).item() - s0), rel_tol=1e-5)


def test_the_critic_takes_one_adam_step_per_update():
    """The reference applies the critic's update twice per batch; the intended maths steps once."""
    torch.manual_seed(3)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(3):
        algo.update(batch)
    steps = {float(s["step"]) for s in algo.critic_opt.state.values()}
    assert steps == {3.0}


def test_actor_alpha_and_targets_update_on_their_schedules():
    torch.manual_seed(0)
    algo = tiny(alpha_delay=3)
    batch = random_batch(3, 2, 8, CPU)
    actor_changed, target_changed, log_alphas = [], [], []
    for _ in range(5):
        before = [p.detach().clone() for p in algo.actor.parameters()]
        before_t = [p.detach().clone() for p in algo.critic_target.parameters()]
        algo.update(batch)
        actor_changed.append(any(not torch.equal(a, p) for a, p in zip(before, algo.actor.parameters())))
        target_changed.append(any(not torch.equal(a, p) for a, p in zip(before_t, algo.critic_target.parameters())))
        log_alphas.append(algo.temperature.log_alpha.item())
    assert actor_changed == [True, False, True, False, True]
    assert target_changed == [True, False, True, False, True]
    assert (np.diff([math.log(5.0), *log_alphas]) != 0).tolist() == [True, False, False, True, False]


def test_update_is_finite_and_checkpoint_roundtrips():
    torch.manual_seed(1)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in metrics.values())
    other = tiny()
    other.load_state_dict(algo.state_dict())
    assert other.updates == 3 and torch.equal(other.q_mean, algo.q_mean) and torch.equal(other.q_std, algo.q_std)
    torch.manual_seed(5)
    a = algo.generate(torch.zeros(4, 3))
    torch.manual_seed(5)
    torch.testing.assert_close(other.generate(torch.zeros(4, 3)), a)
