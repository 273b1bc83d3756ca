"""Issue 25, first half: the baselines against their reference code (docs/baselines-vs-reference.md).
One test per behavioural decision, each failing on the code before it: SDAC's and DPMD's policy
learning-rate decay and relax's diffusion schedule and prior; QVPO's entropy weight over the run's length,
its target actor and fresh actor batch; QVPO's and DIPO's network details (init, Adam eps, step embedding,
summed critic MSE); DIPO's write-back switch; QSM's M_q in raw-reward units and relax's Langevin QSM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import algorithms.dipo as dipo_module
import algorithms.qvpo as qvpo_module
from algorithms.common.base import Choice
from algorithms.common.diffusion import DDPMSchedule, linear_betas, position_embedding
from algorithms.common.diffusion_losses import linear_lr_factor, twin_mse_loss
from algorithms.common.nets import EnsembleLinear
from algorithms.dipo import DIPO, DIPOConfig
from algorithms.dpmd import DPMD, DPMDConfig
from algorithms.qsm import QSM, LangevinScoreActor, QSMConfig, min_member_gradient, qsm_target
from algorithms.qvpo import QVPO, QVPOConfig
from algorithms.sdac import SDAC, SDACConfig
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: fast on a shared 2-core machine


def fill(algo, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        obs = rng.standard_normal(algo.obs_dim).astype(np.float32)
        algo.observe(obs, Choice(rng.uniform(-1, 1, algo.act_dim).astype(np.float32)), float(rng.standard_normal()),
                     rng.standard_normal(algo.obs_dim).astype(np.float32), False, False)


def actor_lr(algo) -> float:
    return float(algo.actor_opt.param_groups[0]["lr"])


# -- 1. SDAC and DPMD: the policy's learning rate decays as the reference's optax.linear_schedule ---------------------

def test_linear_lr_factor_is_optax_linear_schedule():
    """optax.linear_schedule(3e-4, 3e-5, transition_steps=5e4, transition_begin=2.5e4) / 3e-4 at its step count."""
    f = lambda n: linear_lr_factor(n, 25_000, 50_000, 0.1)  # noqa: E731
    assert f(0) == 1.0 and f(25_000) == 1.0
    assert math.isclose(f(50_000), 0.55) and math.isclose(f(37_500), 0.775)
    assert math.isclose(f(75_000), 0.1) and math.isclose(f(1_000_000), 0.1)
    assert linear_lr_factor(10**6, 25_000, 50_000, None) == 1.0


@pytest.mark.parametrize("cls, cfg_cls", [(SDAC, SDACConfig), (DPMD, DPMDConfig)])
def test_actor_lr_at_a_given_policy_step(cls, cfg_cls):
    """Policy delay 2: update k is the actor's (k / 2)-th step. At policy step 50,000 (update 100,000) the rate is
    3e-4 * 0.55 = 1.65e-4; from policy step 75,000 on, 3e-5; the critic's stays 3e-4; actor_lr=0 stays frozen."""
    algo = cls(3, 2, cfg_cls(hidden_sizes=(16, 16), batch_size=8, num_particles=2, diffusion_steps=3), CPU)
    batch = random_batch(3, 2, 8, CPU)
    algo.update(batch)
    assert math.isclose(actor_lr(algo), 3e-4, rel_tol=1e-6)
    algo.updates = 100_000
    algo.update(batch)
    assert math.isclose(actor_lr(algo), 1.65e-4, rel_tol=1e-6)
    algo.updates = 150_000
    algo.update(batch)
    assert math.isclose(actor_lr(algo), 3e-5, rel_tol=1e-6)
    algo.update(batch)  # update 150,001: no actor step, the rate is left as it was
    assert math.isclose(actor_lr(algo), 3e-5, rel_tol=1e-6)
    assert math.isclose(float(algo.critic_opt.param_groups[0]["lr"]), 3e-4, rel_tol=1e-6)
    frozen = cls(3, 2, cfg_cls(hidden_sizes=(16, 16), batch_size=8, num_particles=2, diffusion_steps=3, actor_lr=0.0), CPU)
    frozen.updates = 100_000
    frozen.update(batch)
    assert actor_lr(frozen) == 0.0
    constant = cls(3, 2, cfg_cls(hidden_sizes=(16, 16), batch_size=8, num_particles=2, diffusion_steps=3,
                                 actor_lr_end_factor=None), CPU)
    constant.updates = 150_000
    constant.update(batch)
    assert math.isclose(actor_lr(constant), 3e-4, rel_tol=1e-6)


# -- 2. SDAC and DPMD: relax's betas and its 0.5 N(0, I) prior -------------------------------------------------------

@pytest.mark.parametrize("cls, cfg_cls", [(SDAC, SDACConfig), (DPMD, DPMDConfig)])
def test_betas_alpha_bar_and_prior_are_relax_s(cls, cfg_cls):
    cfg = cfg_cls(hidden_sizes=(16, 16))
    assert (cfg.beta_schedule, cfg.linear_beta_scale, cfg.prior_std) == ("linear", 0.8, 0.5)
    algo = cls(3, 2, cfg, CPU)
    np.testing.assert_allclose(algo.schedule.betas.numpy(), 0.8 * np.linspace(1e-4, 0.999, 20), rtol=1e-6)
    abar = algo.schedule.abar.double().numpy()
    assert math.isclose(abar[0], 0.99992, rel_tol=1e-6)
    assert math.isclose(abar[-1], 5.2684e-6, rel_tol=1e-3)
    # the spread of a reverse sample at the last denoising step, sqrt(1 / abar_0 - 1): 0.009 (VP 0.1 -> 10: 0.132)
    assert math.isclose(algo.schedule.sqrt_recipm1_abar[0].item(), 0.008945, rel_tol=1e-3)
    assert algo.noise_std == 0.5
    vp = DDPMSchedule(20, "vp")
    assert math.isclose(vp.abar[0].item(), 0.98278, rel_tol=1e-4) and math.isclose(vp.abar[-1].item(), 0.0064093, rel_tol=1e-3)


def test_the_reverse_process_starts_from_half_a_standard_normal(monkeypatch):
    """With no x_init the sampler draws x_T = prior_std N(0, I): 0.5 for SDAC (relax's `p_sample`)."""
    algo = SDAC(3, 2, SDACConfig(hidden_sizes=(16, 16), diffusion_steps=2), CPU)
    seen = []
    real = algo.actor.sample.__func__

    def spy(self, obs, schedule, prior_std, x_init=None, return_path=False):
        seen.append(prior_std)
        return real(self, obs, schedule, prior_std, x_init, return_path)

    monkeypatch.setattr(type(algo.actor), "sample", spy)
    algo.policy_actions(torch.zeros(4, 3), n=2)
    algo.generate(torch.zeros(4, 3))
    assert seen == [0.5, 0.5]


def test_linear_betas_by_hand():
    np.testing.assert_allclose(linear_betas(3, 0.5), [0.5e-4, 0.5 * (1e-4 + 0.999) / 2, 0.4995])


# -- 3. QVPO: the entropy weight decays over the run's length; target actor; fresh actor batch -------------------------

def tiny_qvpo(**kw) -> QVPO:
    return QVPO(3, 2, QVPOConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "train_samples": 4, "diffusion_steps": 3,
                                    **kw}), CPU)


def test_entropy_weight_at_half_of_a_5e6_step_run_is_001():
    """The reference decays over its run's own length: at 2.5e6 of a 5e6-step run the weight is 0.01 (with a fixed
    1e6 decay it was already at the 0.002 floor); a 1e6 run (the harness's run_steps) is at 0.01 at 5e5."""
    algo = tiny_qvpo(warmup_steps=30_000)
    assert algo.config.default_run_steps == 5_000_000 and algo.config.entropy_decay_steps is None and algo.run_steps is None
    algo.updates = 2_500_000 - 30_000
    assert math.isclose(algo.current_entropy_weight(), 0.01, rel_tol=1e-6)
    short = tiny_qvpo(warmup_steps=30_000)
    short.run_steps = 1_000_000
    short.updates = 500_000 - 30_000
    assert math.isclose(short.current_entropy_weight(), 0.01, rel_tol=1e-6)
    fixed = tiny_qvpo(warmup_steps=30_000, entropy_decay_steps=1_000_000)
    fixed.updates = 2_500_000 - 30_000
    assert fixed.current_entropy_weight() == 0.002


def test_critic_target_samples_the_polyak_target_actor(monkeypatch):
    """The critic target's 4 candidates per next state come from the target actor (the authors' code), which
    then moves toward the actor by tau; `target_actor=false` samples the current actor."""
    torch.manual_seed(0)
    algo = tiny_qvpo()
    batch = random_batch(3, 2, 8, CPU)
    calls = {"target": 0, "actor": 0}
    for name in calls:
        module = algo.actor_target if name == "target" else algo.actor
        real = module.sample

        def spy(obs, *a, _name=name, _real=real, **k):
            calls[_name] += obs.shape[0]
            return _real(obs, *a, **k)

        monkeypatch.setattr(module, "sample", spy)
    before_target = [p.detach().clone() for p in algo.actor_target.parameters()]
    algo.update(batch)
    assert calls["target"] == 4 * 8  # best of 4 at each of the 8 next states
    assert calls["actor"] == 4 * 8  # the actor's own samples: train_samples 4 at the 8 states of its loss
    for t, a, b in zip(algo.actor_target.parameters(), algo.actor.parameters(), before_target):
        torch.testing.assert_close(t, b + 0.005 * (a - b))
    plain = tiny_qvpo(target_actor=False)
    assert not hasattr(plain, "actor_target")


def test_the_actor_loss_sees_a_fresh_batch_of_states(monkeypatch):
    torch.manual_seed(0)
    algo = tiny_qvpo(warmup_steps=0)
    fill(algo, 50)
    seen = {}
    real_loss, real_sample = algo.policy_loss, algo.buffer.sample

    def loss_spy(obs, *a, **k):
        seen["actor"] = obs.clone()
        return real_loss(obs, *a, **k)

    def sample_spy(n, *a, **k):
        batch = real_sample(n, *a, **k)
        seen["critic"] = batch.obs.clone()
        return batch

    monkeypatch.setattr(algo, "policy_loss", loss_spy)
    monkeypatch.setattr(algo.buffer, "sample", sample_spy)
    algo.train_step()
    assert seen["actor"].shape == seen["critic"].shape and not torch.equal(seen["actor"], seen["critic"])
    stored = algo.buffer.storage["obs"][: algo.buffer.size]
    assert all((stored == row).all(dim=1).any() for row in seen["actor"])  # rows of the buffer
    same = tiny_qvpo(warmup_steps=0, fresh_actor_batch=False)
    fill(same, 50)
    monkeypatch.setattr(same, "policy_loss", loss_spy)
    monkeypatch.setattr(same.buffer, "sample", real_sample.__func__.__get__(same.buffer))
    batch_seen = {}
    real_same = same.buffer.sample

    def same_sample_spy(n, *a, **k):
        batch = real_same(n, *a, **k)
        batch_seen["critic"] = batch.obs.clone()
        return batch

    monkeypatch.setattr(same.buffer, "sample", same_sample_spy)
    same.train_step()
    assert torch.equal(seen["actor"], batch_seen["critic"])


# -- 7. QVPO and DIPO: the reference's networks and critic loss ---------------------------------------------------------

def tiny_dipo(**kw) -> DIPO:
    return DIPO(4, 2, DIPOConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "diffusion_steps": 5, "warmup_steps": 0,
                                    "action_gradient_steps": 3, **kw}), CPU)


@pytest.mark.parametrize("make", [tiny_qvpo, tiny_dipo])
def test_truncated_normal_init_adam_eps_and_step_embedding(make):
    torch.manual_seed(0)
    algo = make(hidden_sizes=(256, 256))
    for module in (algo.actor, algo.critic):
        layers = [m for m in module.modules() if isinstance(m, (nn.Linear, EnsembleLinear))]
        assert layers
        for m in layers:
            fan_in = m.in_features if isinstance(m, nn.Linear) else m.weight.shape[1]
            std = 1 / (2 * math.sqrt(fan_in))
            assert m.weight.abs().max() <= 2 * std + 1e-7
            assert torch.count_nonzero(m.bias) == 0
            if m.weight.numel() >= 4096:  # a truncated normal at +-2 s has std 0.88 s
                assert math.isclose(m.weight.std().item(), 0.8796 * std, rel_tol=0.05)
    for opt in (algo.actor_opt, algo.critic_opt):
        assert opt.param_groups[0]["eps"] == 1e-5
    emb = algo.actor.time_embed
    assert emb.net[0].in_features == 32 and emb.net[0].out_features == 256 and emb.net[2].out_features == 32
    steps = torch.tensor([0.0, 3.0])
    torch.testing.assert_close(emb.net[0](position_embedding(steps, 32)), emb.net[0](emb_input(emb, steps)))
    old = make(init="torch", adam_eps=1e-8, time_hidden=None, time_frequencies="relax")
    assert old.actor.time_embed.net[0].out_features == 64 and old.actor_opt.param_groups[0]["eps"] == 1e-8
    assert torch.count_nonzero(old.actor.net[0].bias) > 0


def emb_input(emb, steps):
    """What the embedding's first layer receives, read off a forward hook."""
    got = {}
    handle = emb.net[0].register_forward_hook(lambda m, inp, out: got.update(x=inp[0]))  # returns None: output kept
    emb(steps)
    handle.remove()
    return got["x"]


def test_position_embedding_by_hand():
    """SinusoidalPosEmb(4) at t = 2: frequencies exp(-j log 1e4 / 1), j = 0, 1 -> 1 and 1e-4, unscaled."""
    torch.testing.assert_close(position_embedding(torch.tensor([2.0]), 4),
                               torch.tensor([[math.sin(2.0), math.sin(2e-4), math.cos(2.0), math.cos(2e-4)]]))


@pytest.mark.parametrize("module, make", [(qvpo_module, tiny_qvpo), (dipo_module, tiny_dipo)])
def test_critic_loss_is_the_sum_of_the_two_mses(monkeypatch, module, make):
    q, y = torch.tensor([[1.0, 2.0], [0.0, 4.0]]), torch.tensor([0.0, 1.0])
    assert twin_mse_loss(q, y).item() == (1 + 1) / 2 + (0 + 9) / 2
    assert twin_mse_loss(q, y, 0.5).item() == 0.5 * twin_mse_loss(q, y).item()
    weights = []
    real = module.twin_mse_loss
    monkeypatch.setattr(module, "twin_mse_loss", lambda q, y, w=1.0: weights.append(w) or real(q, y, w))
    make().update(random_batch(make().obs_dim, 2, 8, CPU))
    assert weights == [1.0]


# -- 4. DIPO: the write-back switch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("write_back", [True, False])
def test_write_back_switch(write_back):
    """True (relax's port, the default): the improved actions replace the policy column's rows, so a row sampled
    again continues from there. False (the original code's effective behaviour): the column keeps the executed
    actions, every ascent starts from them."""
    torch.manual_seed(0)
    algo = tiny_dipo(write_back=write_back)
    fill(algo, 20)
    executed = algo.buffer.storage["action"][:20].clone()
    for _ in range(5):
        algo.train_step()
    column = algo.buffer.storage["policy_action"][:20]
    assert torch.equal(algo.buffer.storage["action"][:20], executed)
    assert torch.equal(column, executed) != write_back
    assert DIPOConfig().write_back is True


# -- 5. QSM: M_q in the reference's raw-reward units; relax's Langevin QSM -------------------------------------------

class AnalyticTwin(nn.Module):
    """Q1(s, a) = -||a - c||^2 + s_0, Q2(s, a) = 3 a_0 - a_1^2; accepts [B, .] or [2, B, .] inputs (member j at [j])."""

    c = torch.tensor([0.5, -0.25])

    def forward(self, obs, a):
        a1, a2 = (a[0], a[1]) if a.dim() == 3 else (a, a)
        s = obs[0] if obs.dim() == 3 else obs
        return torch.stack([-((a1 - self.c) ** 2).sum(-1) + s[:, 0], 3 * a2[:, 0] - a2[:, 1] ** 2])

    def min_q(self, obs, a):
        return self(obs, a).min(dim=0).values


def test_score_matching_target_is_in_raw_reward_units():
    """M_q = 50 multiplies grad Q / reward_scale: the reference's critic sees unscaled rewards. Before, the target
    was -50 grad Q of the 0.2-scaled critic, M_q = 10 in the reference's units."""
    algo = QSM(3, 2, QSMConfig(hidden_sizes=(16, 16), num_particles=2, method="score_matching"), CPU)
    algo.critic = AnalyticTwin()
    obs, action = torch.randn(4, 3), torch.rand(4, 2) * 2 - 1
    torch.manual_seed(5)
    _, target = algo.actor_loss(obs, action)
    torch.manual_seed(5)
    i = torch.randint(0, 20, (4,))
    noisy = algo.schedule.q_sample(action, torch.randn(4, 2), i)
    torch.testing.assert_close(target, qsm_target(algo.critic, obs, noisy, 50.0 / 0.2))
    assert algo.exploration_std() == 0.1 and algo.config.actor_lr_end_factor is None


def test_min_member_gradient_by_hand():
    obs = torch.tensor([[0.0, 0, 0], [5.0, 0, 0]])
    a = torch.tensor([[0.9, 0.5], [0.0, 0.0]])
    # row 0: Q1 = -(0.16 + 0.5625) = -0.7225 < Q2 = 2.7 - 0.25 -> grad Q1 = -2 (a - c) = (-0.8, -1.5)
    # row 1: Q1 = -(0.25 + 0.0625) + 5 = 4.6875 > Q2 = 0 -> grad Q2 = (3, -2 a_1) = (3, 0)
    torch.testing.assert_close(min_member_gradient(AnalyticTwin(), obs, a), torch.tensor([[-0.8, -1.5], [3.0, 0.0]]))


def test_langevin_sampler_by_hand():
    """x <- clip(x + delta_t / 2 * s(s, x) + sqrt(delta_t) z_t, -1, 1), delta_t = 1 - t / T (relax's LangevinDynamics)."""
    cfg = QSMConfig(hidden_sizes=(8,), diffusion_steps=3, method="langevin")
    actor = LangevinScoreActor(3, 2, cfg)
    obs, x0 = torch.randn(5, 3), 0.3 * torch.randn(5, 2)
    torch.manual_seed(2)
    got = actor.sample(obs, None, 1.0, x_init=x0)
    torch.manual_seed(2)
    z = torch.randn(3, 5, 2)
    x = x0
    for t in range(3):
        delta = 1 - t / 3
        x = (x + delta / 2 * actor.score(obs, x) + math.sqrt(delta) * z[t]).clamp(-1, 1)
    torch.testing.assert_close(got, x)


def test_langevin_qsm_update_fits_the_score_to_the_critic_gradient(monkeypatch):
    """The actor loss regresses s_phi(s, a) onto the smaller member's grad_a Q / reward_scale at the replay actions;
    acting adds no noise; the update is finite and the actor steps."""
    torch.manual_seed(0)
    algo = QSM(3, 2, QSMConfig(hidden_sizes=(16, 16), batch_size=8, num_particles=4, diffusion_steps=4, method="langevin"), CPU)
    assert isinstance(algo.actor, LangevinScoreActor) and algo.exploration_std() == 0.0
    critic = algo.critic
    algo.critic = AnalyticTwin()
    obs, action = torch.randn(6, 3), torch.rand(6, 2) * 2 - 1
    loss, target = algo.actor_loss(obs, action)
    hand = min_member_gradient(AnalyticTwin(), obs, action) / 0.2
    torch.testing.assert_close(target, hand)
    torch.testing.assert_close(loss, ((algo.actor.score(obs, action) - hand) ** 2).mean())
    algo.critic = critic
    before = [p.detach().clone() for p in algo.actor.parameters()]
    metrics = algo.update(random_batch(3, 2, 8, CPU))
    assert all(torch.isfinite(v) for v in metrics.values())
    assert not all(torch.equal(a, b) for a, b in zip(before, algo.actor.parameters()))
    act = algo.act(np.zeros(3, np.float32))
    assert act.shape == (2,) and np.all(np.abs(act) <= 1)
    other = QSM(3, 2, algo.config, CPU)
    other.load_state_dict(algo.state_dict())
    torch.manual_seed(3)
    a = algo.generate(torch.zeros(2, 3))
    torch.manual_seed(3)
    torch.testing.assert_close(other.generate(torch.zeros(2, 3)), a)
