"""DIPO: the clipped Adam ascent on the actions against a hand-written Adam in numpy, the gradient
clip by hand, the write-back into the replay buffer (and that it survives a checkpoint and resume),
the buffer's indexed sampling, evaluation without step noise, Table 3 defaults."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from conftest import grad_norms_at_step
from torch import nn

from algorithms.common.base import Choice
from algorithms.common.buffer import PolicyActionReplayBuffer, ReplayBuffer
from algorithms.dipo import DIPO, DIPOConfig, clip_action_gradient
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: fast on a shared 2-core machine


def roundtrip(state: dict) -> dict:
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    return torch.load(f, weights_only=False)


def tiny(**kw) -> DIPO:
    cfg = DIPOConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "diffusion_steps": 5, "warmup_steps": 0, **kw})
    return DIPO(4, 2, cfg, CPU)


def fill(algo: DIPO, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        obs = rng.standard_normal(algo.obs_dim).astype(np.float32)
        algo.observe(obs, Choice(rng.uniform(-1, 1, algo.act_dim).astype(np.float32)), float(rng.standard_normal()),
                     rng.standard_normal(algo.obs_dim).astype(np.float32), False, False)


# -- the ascent -----------------------------------------------------------------------------------

def test_gradient_clip_by_hand():
    g = torch.tensor([[3.0, 4.0], [0.0, 0.5]])
    batch = g.clone()
    clip_action_gradient(batch, 1.0, "batch")  # ||g|| = sqrt(9 + 16 + 0.25) = 5.02494
    torch.testing.assert_close(batch, g / (math.sqrt(25.25) + 1e-6))
    rows = g.clone()
    clip_action_gradient(rows, 1.0, "action")  # row norms 5 (scaled to 1) and 0.5 (kept)
    torch.testing.assert_close(rows, torch.tensor([[0.6, 0.8], [0.0, 0.5]]), atol=1e-6, rtol=0)
    small = g.clone()
    clip_action_gradient(small, 100.0, "batch")
    torch.testing.assert_close(small, g)


class QuadraticCritic(nn.Module):
    """min Q(s, a) = -k ||a - c(s)||^2 with the centre c(s) = s[:, :2]."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def min_q(self, obs, actions):
        return -self.k * ((actions - obs[:, :2]) ** 2).sum(-1)


def numpy_ascent(a0, centres, k, steps, lr, eps, max_norm, scope, b1=0.9, b2=0.999):
    """Adam (Kingma and Ba, Algorithm 1) on -sum_b Q = k sum ||a - c||^2, gradient clipped, box clamp."""
    a = a0.astype(np.float64).copy()
    m = np.zeros_like(a)
    v = np.zeros_like(a)
    for t in range(1, steps + 1):
        g = 2 * k * (a - centres)
        if max_norm is not None:
            norm = np.linalg.norm(g) if scope == "batch" else np.linalg.norm(g, axis=1, keepdims=True)
            g = g * np.minimum(1.0, max_norm / (norm + 1e-6))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        a = a - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        a = np.clip(a, -1, 1)
    return a


@pytest.mark.parametrize("scope", ["batch", "action"])
def test_action_ascent_matches_a_hand_written_clipped_adam(scope):
    """2 steps of Adam(lr 0.03, eps 1e-5) with the gradient norm clipped to 0.1 * dim(A) = 0.2 and the box
    clamp, from four actions towards centres, one of them outside the box (1.5: the clamp binds), one 1e-4
    from its centre."""
    algo = tiny(action_gradient_steps=2, action_grad_clip_scope=scope)
    algo.critic = QuadraticCritic(5.0)
    centres = np.array([[0.5, -0.2], [1.5, 0.0], [-0.3, -0.3], [0.0, 0.9]])
    a0 = np.array([[0.0, 0.0], [0.95, 0.5], [-0.2999, -0.3001], [0.2, -0.9]])
    obs = torch.tensor(np.concatenate([centres, np.zeros((4, 2))], 1), dtype=torch.float32)
    out = algo.improve_actions(obs, torch.tensor(a0, dtype=torch.float32)).numpy()
    expected = numpy_ascent(a0, centres, 5.0, 2, 0.03, 1e-5, 0.2, scope)
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert out[1, 0] == 1.0  # clamped at the box
    if scope == "batch":  # the clip matters here (Adam undoes a common scale, but the third row, 1e-4
        # from its centre, gets a clipped gradient near eps): unclipped Adam lands elsewhere
        assert np.abs(numpy_ascent(a0, centres, 5.0, 2, 0.03, 1e-5, None, scope) - expected).max() > 1e-3
    # and the actions that started away from their centres have higher Q
    q = lambda a: -5.0 * ((a - centres) ** 2).sum(1)  # noqa: E731
    assert (q(out) > q(a0))[[0, 1, 3]].all()


def test_ascent_leaves_the_critic_trainable_and_the_input_untouched():
    algo = tiny(action_gradient_steps=2)
    obs, a = torch.randn(5, 4), torch.rand(5, 2) * 2 - 1
    keep = a.clone()
    out = algo.improve_actions(obs, a)
    assert torch.equal(a, keep) and not torch.equal(out, keep)
    assert all(p.requires_grad for p in algo.critic.parameters())
    assert all(p.grad is None for p in algo.critic.parameters())  # no critic gradient is accumulated
    assert torch.equal(tiny(action_gradient_steps=0).improve_actions(obs, a), a)


# -- the write-back -------------------------------------------------------------------------------

def spy(monkeypatch, algo):
    seen = {}
    real_idx, real_improve = algo.buffer.sample_indices, algo.improve_actions
    monkeypatch.setattr(algo.buffer, "sample_indices", lambda n, generator=None: seen.setdefault("idx", real_idx(n)))
    monkeypatch.setattr(algo, "improve_actions", lambda o, a: seen.setdefault("improved", real_improve(o, a)))
    return seen


@pytest.mark.parametrize("separate", [True, False])
def test_improved_actions_are_written_back_into_the_sampled_rows(monkeypatch, separate):
    torch.manual_seed(0)
    algo = tiny(action_gradient_steps=5, separate_policy_actions=separate)
    fill(algo, 30)
    executed = algo.buffer.storage["action"][:30].clone()
    column = "policy_action" if separate else "action"
    seen = spy(monkeypatch, algo)
    algo.train_step()
    idx, improved = seen["idx"], seen["improved"]
    after = algo.buffer.storage[column][:30]
    torch.testing.assert_close(after[idx], improved, rtol=0, atol=0)
    untouched = torch.ones(30, dtype=torch.bool)
    untouched[idx] = False
    assert untouched.any() and torch.equal(after[untouched], executed[untouched])
    assert not torch.equal(after[idx], executed[idx])
    if separate:  # the critic's column keeps the executed actions
        assert torch.equal(algo.buffer.storage["action"][:30], executed)


def test_the_next_ascent_starts_from_the_written_actions(monkeypatch):
    """Two train steps that sample the same rows: the second ascent starts where the first ended."""
    torch.manual_seed(0)
    algo = tiny(action_gradient_steps=2)
    fill(algo, 12)
    rows = torch.arange(8)
    monkeypatch.setattr(algo.buffer, "sample_indices", lambda n, generator=None: rows)
    starts = []
    real = algo.improve_actions
    monkeypatch.setattr(algo, "improve_actions", lambda o, a: starts.append(a.clone()) or real(o, a))
    algo.train_step()
    first = algo.buffer.storage["policy_action"][rows].clone()
    algo.train_step()
    torch.testing.assert_close(starts[1], first, rtol=0, atol=0)


def test_write_back_survives_checkpoint_and_resume():
    """Train, checkpoint (through bytes), restore into a fresh DIPO, then train both on from the same RNG
    state: the rewritten actions, the networks and what follows are identical."""
    torch.manual_seed(0)
    algo = tiny(action_gradient_steps=3)
    fill(algo, 40)
    for _ in range(4):
        algo.train_step()
    state = roundtrip(algo.state_dict())
    other = tiny(action_gradient_steps=3)
    other.load_state_dict(state)
    pa, pb = algo.buffer, other.buffer
    assert (pb.ptr, pb.size) == (pa.ptr, pa.size) == (40, 40)
    torch.testing.assert_close(pb.storage["policy_action"][:40], pa.storage["policy_action"][:40], rtol=0, atol=0)
    assert not torch.equal(pb.storage["policy_action"][:40], pb.storage["action"][:40])  # it holds rewritten rows
    for x in (algo, other):
        fill(x, 5, seed=9)
        torch.manual_seed(3)
        for _ in range(3):
            x.train_step()
    for key in ("policy_action", "action", "obs"):
        torch.testing.assert_close(pb.storage[key][:45], pa.storage[key][:45], rtol=0, atol=0)
    for p, q in zip(algo.actor.parameters(), other.actor.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_checkpoint_without_the_policy_column_is_refused():
    buf = PolicyActionReplayBuffer(10, 2, 1)
    plain = ReplayBuffer(10, 2, 1)
    plain.add(np.zeros(2), np.zeros(1), 0.0, np.zeros(2), False)
    with pytest.raises(ValueError, match="policy_action"):
        buf.load_state_dict(plain.state_dict())


def test_policy_column_follows_the_ring_buffer():
    buf = PolicyActionReplayBuffer(3, 1, 1)
    for x in (0.1, 0.2, 0.3):
        buf.add(np.zeros(1), np.array([x]), 0.0, np.zeros(1), False)
    buf.write_actions(torch.tensor([0, 1]), torch.tensor([[0.9], [0.8]]), "policy_action")
    buf.add(np.zeros(1), np.array([0.4]), 0.0, np.zeros(1), False)  # overwrites row 0
    torch.testing.assert_close(buf.storage["policy_action"][:, 0], torch.tensor([0.4, 0.8, 0.3]))
    torch.testing.assert_close(buf.storage["action"][:, 0], torch.tensor([0.4, 0.2, 0.3]))


def test_indexed_sampling_is_the_same_draw_as_sample():
    buf = ReplayBuffer(50, 3, 2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        buf.add(rng.standard_normal(3), rng.uniform(-1, 1, 2), float(rng.standard_normal()), rng.standard_normal(3), bool(rng.random() < .2))
    torch.manual_seed(4)
    a = buf.sample(16)
    torch.manual_seed(4)
    b = buf.gather(buf.sample_indices(16))
    torch.manual_seed(4)
    idx = torch.randint(0, 20, (16,))  # what `sample` has always drawn
    for x, y, key in zip(a, b, a._fields):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
        torch.testing.assert_close(x, buf.storage[key][idx], rtol=0, atol=0)


# -- acting ---------------------------------------------------------------------------------------

def test_evaluation_draws_only_the_starting_noise():
    """Deterministic evaluation samples a_T and then takes posterior means: exactly one [1, d] normal draw."""
    algo = tiny()
    obs = np.zeros(4, np.float32)
    torch.manual_seed(0)
    algo.act(obs, deterministic=True)
    after = torch.rand(3)
    torch.manual_seed(0)
    torch.randn(1, 2)
    torch.testing.assert_close(torch.rand(3), after)
    torch.manual_seed(0)
    algo.act(obs)  # acting keeps the per-step noise
    assert not torch.equal(torch.rand(3), after)


def test_the_actor_clones_the_improved_actions(monkeypatch):
    """The DDPM loss is taken on the ascent's output at the policy batch's states, not on the actions it
    started from."""
    import algorithms.dipo as dipo_module

    torch.manual_seed(0)
    algo = tiny(action_gradient_steps=3)
    batch = random_batch(4, 2, 8, CPU)
    seen, improved = [], []
    real_loss, real_improve = dipo_module.weighted_ddpm_loss, algo.improve_actions
    monkeypatch.setattr(dipo_module, "weighted_ddpm_loss", lambda actor, sched, obs, x0, *a: seen.append((obs, x0)) or real_loss(actor, sched, obs, x0, *a))
    monkeypatch.setattr(algo, "improve_actions", lambda o, a: improved.append(real_improve(o, a)) or improved[-1])
    algo.update(batch)
    (obs, x0), = seen
    assert torch.equal(obs, batch.obs)
    torch.testing.assert_close(x0, improved[0], rtol=0, atol=0)
    assert (x0 - batch.action).abs().max() > 1e-3


@pytest.mark.parametrize("clip", [1e-4, None])
def test_actor_and_critic_gradients_are_clipped_before_their_steps(monkeypatch, clip):
    """With grad_clip = 1e-4 (far below this batch's gradient norms) both optimizers step on gradients of
    norm 1e-4; unclipped (None) they are larger. Adam alone would hide a missing clip on a first step
    (it divides by the gradient's scale), so the norm is read where the step takes it."""
    torch.manual_seed(0)
    algo = tiny(grad_clip=clip, action_gradient_steps=2)
    critic_norms = grad_norms_at_step(monkeypatch, algo.critic_opt)
    actor_norms = grad_norms_at_step(monkeypatch, algo.actor_opt)
    batch = random_batch(4, 2, 8, CPU)
    for _ in range(2):
        algo.update(batch)
    assert len(critic_norms) == len(actor_norms) == 2
    for norm in critic_norms + actor_norms:
        if clip is None:
            assert norm > 10 * 1e-4
        else:
            assert norm == pytest.approx(clip, rel=1e-2)  # clip_grad_norm_ divides by norm + 1e-6


def test_update_is_finite_and_a_frozen_actor_stays():
    torch.manual_seed(0)
    algo = tiny(actor_lr=0.0)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    metrics = algo.update(random_batch(4, 2, 8, CPU))
    assert all(torch.isfinite(v) for v in metrics.values())
    assert all(torch.equal(a, p) for a, p in zip(before, algo.actor.parameters()))


def test_table3_defaults():
    cfg = DIPOConfig()
    assert (cfg.activation, cfg.actor_lr, cfg.critic_lr, cfg.diffusion_steps, cfg.action_gradient_steps) == ("mish", 3e-4, 3e-4, 100, 30)
    assert (cfg.action_lr, cfg.action_grad_ratio, cfg.batch_size, cfg.warmup_steps, cfg.reward_scale) == (0.03, 0.1, 256, 30_000, 0.2)
    assert DIPO.generation_steps == 100 and tiny().particles == 1
