"""QVPO: the advantage weights, the entropy term and its decay, and the weighted DDPM loss against hand
computations; what the actor loss is built from (a known critic and known candidates); acting with
best-of-4 and evaluating with best-of-32; Table 3 defaults."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from conftest import grad_norms_at_step
from torch import nn

import algorithms.qvpo as qvpo_module
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor
from algorithms.common.diffusion_losses import weighted_ddpm_loss
from algorithms.qvpo import QVPO, QVPOConfig, entropy_weight, qvpo_weights
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: fast on a shared 2-core machine


def roundtrip(state: dict) -> dict:
    """Through bytes, as a checkpoint goes (a state dict holds live references: optimizers loaded from
    one directly would share their moment tensors with the original)."""
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    return torch.load(f, weights_only=False)


def tiny(**kw) -> QVPO:
    cfg = QVPOConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, **kw})
    return QVPO(3, 2, cfg, CPU)


# -- weights and entropy weight -----------------------------------------------------------------

def test_advantage_weights_by_hand():
    q = torch.tensor([[1.0, 3.0, 2.0, 6.0],    # mean 3: best is 6 (index 3), weight 3
                      [5.0, 1.0, 0.0, 2.0],    # mean 2: best is 5 (index 0), weight 3
                      [4.0, 4.0, 4.0, 4.0]])   # no advantage: weight 0
    idx, w = qvpo_weights(q, 1)
    assert idx[:2, 0].tolist() == [3, 0]
    torch.testing.assert_close(w[:, 0], torch.tensor([3.0, 3.0, 0.0]))
    idx2, w2 = qvpo_weights(q[:2], 2)  # the two best: 6, 3 (mean 3) and 5, 2 (mean 2) -> max(q - 3, 0), max(q - 2, 0)
    assert idx2.tolist() == [[3, 1], [0, 3]]
    torch.testing.assert_close(w2, torch.tensor([[3.0, 0.0], [3.0, 0.0]]))
    _, w3 = qvpo_weights(torch.tensor([[-1.0, -4.0, -7.0]]), 2)  # mean -4: -1 -> 3, -4 -> 0
    torch.testing.assert_close(w3, torch.tensor([[3.0, 0.0]]))
    _, w4 = qvpo_weights(q[:1], 3)  # the three best of (1, 3, 2, 6), mean 3: 6 -> 3, 3 -> 0, 2 -> max(-1, 0) = 0
    torch.testing.assert_close(w4, torch.tensor([[3.0, 0.0, 0.0]]))


def test_entropy_weight_decays_linearly_from_002_to_0002():
    assert entropy_weight(0, 0.02, 0.002, 1_000_000) == 0.02
    assert math.isclose(entropy_weight(250_000, 0.02, 0.002, 1_000_000), 0.015)
    assert math.isclose(entropy_weight(500_000, 0.02, 0.002, 1_000_000), 0.01)
    assert math.isclose(entropy_weight(900_000, 0.02, 0.002, 1_000_000), 0.002)  # 0.002 exactly at 90%
    assert entropy_weight(950_000, 0.02, 0.002, 1_000_000) == 0.002  # 0.001 floored
    assert entropy_weight(3_000_000, 0.02, 0.002, 1_000_000) == 0.002


def test_the_algorithm_counts_env_steps_from_the_warmup():
    algo = tiny(warmup_steps=500_000)
    algo.run_steps = 1_000_000  # as the harness sets it: the run's --steps
    batch = random_batch(3, 2, 8, CPU)
    m0 = algo.update(batch)
    m1 = algo.update(batch)
    assert math.isclose(m0["entropy_weight"].item(), 0.01, rel_tol=1e-6)          # env step 500,000
    assert math.isclose(m1["entropy_weight"].item(), 0.02 * (1 - 500_001 / 1e6), rel_tol=1e-6)


# -- the weighted DDPM loss -------------------------------------------------------------------------

class OracleNoise(nn.Module):
    """eps_theta for T = 1 that knows x0 (passed as the 'state'): the exact noise plus `delta`, so the
    per-element squared error is delta^2 whatever noise the loss draws."""

    def __init__(self, sched: DDPMSchedule, d: int, delta: float):
        super().__init__()
        self.a, self.s = float(sched.sqrt_abar[0]), float(sched.sqrt_one_minus_abar[0])
        self.d, self.delta = d, delta
        self.out_features = d

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x0, x = inp[:, : self.d], inp[:, self.d: 2 * self.d]
        return (x - self.a * x0) / self.s + self.delta


def test_weighted_ddpm_loss_by_hand():
    """T = 1 and an oracle noise net off by delta = 0.1: the loss is mean_m w_m * 0.01."""
    sched = DDPMSchedule(1, "cosine")
    actor = DiffusionActor(2, 2, QVPOConfig(hidden_sizes=(8,), diffusion_steps=1))
    actor.net = OracleNoise(sched, 2, 0.1)
    x0 = torch.tensor([[0.3, -0.2], [0.9, 0.1], [-0.5, -0.7]])
    w = torch.tensor([1.0, 3.0, 0.0])
    loss = weighted_ddpm_loss(actor, sched, x0.clone(), x0, w)
    assert math.isclose(loss.item(), 0.01 * (1 + 3 + 0) / 3, rel_tol=1e-4)
    assert math.isclose(weighted_ddpm_loss(actor, sched, x0.clone(), x0).item(), 0.01, rel_tol=1e-4)


# -- what the actor loss is made of ----------------------------------------------------------------

class LinearCritic(nn.Module):
    """min Q(s, a) = s_0 * a_0 (a hand-computable critic)."""

    def min_q(self, obs, actions):
        return obs[:, 0] * actions[:, 0]


def test_actor_loss_uses_the_best_sample_with_its_advantage_and_uniform_actions_at_002(monkeypatch):
    """Two states, K = 4 candidates a_j = (j/4 - 1/2, 0) for every state, Q = s_0 a_0.
    s_0 = 1:  q = (-0.5, -0.25, 0, 0.25), mean -0.125: keep a_3 = (0.25, 0) with weight 0.375.
    s_0 = -2: q = (1, 0.5, 0, -0.5), mean 0.25: keep a_0 = (-0.5, 0) with weight 0.75.
    Then 10 uniform actions per state with weight 0.02 x those (entropy weight at env step 0)."""
    algo = tiny(train_samples=4, warmup_steps=0)
    algo.critic = LinearCritic()
    cand = torch.tensor([[j / 4 - 0.5, 0.0] for j in range(4)])
    monkeypatch.setattr(algo, "generate", lambda states, noise=None: cand.repeat(states.shape[0] // 4, 1))
    seen = {}

    def capture(actor, sched, obs, x0, weights=None):
        seen.update(obs=obs, x0=x0, w=weights)
        return (weights.unsqueeze(-1) * x0).sum()

    monkeypatch.setattr(qvpo_module, "weighted_ddpm_loss", capture)
    obs = torch.tensor([[1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    _, mean_w = algo.policy_loss(obs, 0.02)
    x0, w, s = seen["x0"], seen["w"], seen["obs"]
    assert x0.shape == (2 + 20, 2) and w.shape == (22,)
    torch.testing.assert_close(x0[:2], torch.tensor([[0.25, 0.0], [-0.5, 0.0]]))
    torch.testing.assert_close(w[:2], torch.tensor([0.375, 0.75]))
    torch.testing.assert_close(s[:2], obs)
    assert math.isclose(mean_w.item(), (0.375 + 0.75) / 2)
    # the entropy rows: uniform in the box, at the same states, weighted 0.02 x the state's weight
    uniform = x0[2:]
    assert (uniform.abs() <= 1).all() and uniform.std() > 0.2
    torch.testing.assert_close(s[2:], obs.repeat(10, 1))
    torch.testing.assert_close(w[2:], 0.02 * torch.tensor([0.375, 0.75]).repeat(10))
    # no entropy term at weight 0
    algo.policy_loss(obs, 0.0)
    assert seen["x0"].shape == (2, 2)


def test_uniform_entropy_actions_cover_the_box():
    torch.manual_seed(0)
    algo = tiny(train_samples=4, entropy_samples=500)
    seen = {}
    original = qvpo_module.weighted_ddpm_loss

    def capture(actor, sched, obs, x0, weights=None):
        seen["x0"] = x0
        return original(actor, sched, obs, x0, weights)

    qvpo_module.weighted_ddpm_loss, saved = capture, qvpo_module.weighted_ddpm_loss
    try:
        algo.policy_loss(torch.zeros(2, 3), 0.02)
    finally:
        qvpo_module.weighted_ddpm_loss = saved
    u = seen["x0"][2:].numpy()
    assert u.shape == (1000, 2)
    np.testing.assert_allclose(u.mean(0), 0.0, atol=0.08)
    np.testing.assert_allclose(u.var(0), 1 / 3, atol=0.05)  # Var U(-1, 1) = 1/3


# -- acting and the update -------------------------------------------------------------------------

def test_acts_best_of_4_and_evaluates_best_of_32(monkeypatch):
    algo = tiny()
    sizes = []
    real = algo.generate
    monkeypatch.setattr(algo, "generate", lambda states, noise=None: sizes.append(states.shape[0]) or real(states, noise))
    algo.act(np.zeros(3, np.float32))
    algo.act(np.zeros(3, np.float32), deterministic=True)
    assert sizes == [4, 32]
    assert algo.particles == 32 and QVPO.generation_steps == 20


def test_critic_target_uses_best_of_4_by_the_target_critic(monkeypatch):
    algo = tiny(batch_size=5)
    calls = []
    monkeypatch.setattr(qvpo_module, "best_of_n", lambda gen, q_fn, obs, n: calls.append((q_fn, obs.shape[0], n)) or gen(obs))
    algo.update(random_batch(3, 2, 5, CPU))
    (q_fn, rows, n), = calls
    assert n == 4 and rows == 5 and q_fn == algo.critic_target.min_q


def test_update_steps_actor_and_critic_with_clipped_gradients_and_roundtrips():
    torch.manual_seed(1)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, p) for a, p in zip(before, algo.actor.parameters()))
    other = tiny()
    other.load_state_dict(roundtrip(algo.state_dict()))
    assert other.updates == 3
    torch.manual_seed(5)
    a = algo.update(batch)
    torch.manual_seed(5)
    b = other.update(batch)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


@pytest.mark.parametrize("clip", [1e-4, None])
def test_actor_and_critic_gradients_are_clipped_before_their_steps(monkeypatch, clip):
    """With grad_clip = 1e-4 (far below this batch's gradient norms) both optimizers step on gradients of
    norm 1e-4; unclipped (None) they are larger. Adam alone would hide a missing clip on a first step
    (it divides by the gradient's scale), so the norm is read where the step takes it."""
    torch.manual_seed(0)
    algo = tiny(grad_clip=clip, init="torch")  # the reference's small initial weights give norms near 1e-4
    critic_norms = grad_norms_at_step(monkeypatch, algo.critic_opt)
    actor_norms = grad_norms_at_step(monkeypatch, algo.actor_opt)
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(2):
        algo.update(batch)
    assert len(critic_norms) == len(actor_norms) == 2
    for norm in critic_norms + actor_norms:
        if clip is None:
            assert norm > 10 * 1e-4
        else:
            assert norm == pytest.approx(clip, rel=1e-2)  # clip_grad_norm_ divides by norm + 1e-6


def test_frozen_actor_does_not_move():
    algo = tiny(actor_lr=0.0)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    algo.update(random_batch(3, 2, 8, CPU))
    assert all(torch.equal(a, p) for a, p in zip(before, algo.actor.parameters()))


def test_table3_defaults():
    cfg = QVPOConfig()
    assert (cfg.activation, cfg.actor_lr, cfg.critic_lr, cfg.diffusion_steps, cfg.beta_schedule) == ("mish", 3e-4, 3e-4, 20, "cosine")
    assert (cfg.num_particles, cfg.eval_particles, cfg.train_samples, cfg.train_chosen) == (4, 32, 64, 1)
    assert (cfg.entropy_weight, cfg.entropy_weight_min, cfg.grad_clip) == (0.02, 0.002, 2.0)
    assert (cfg.batch_size, cfg.warmup_steps, cfg.reward_scale, cfg.gamma, cfg.hidden_sizes) == (256, 30_000, 0.2, 0.99, (256,) * 3)


@pytest.mark.parametrize("bad", [{"train_chosen": 65}, {"entropy_weight_min": 0.03}])
def test_cross_field_rules(bad):
    from algorithms.common.config import ConfigError

    with pytest.raises(ConfigError):
        QVPOConfig(**bad)
