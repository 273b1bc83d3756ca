"""QSM: the target -M_q * mean_j grad_a Q_j by hand on an analytic twin critic, the loss by hand on the
noisy replay actions, best-of-N acting with the constant 0.1 noise, and the update's order (critic
step, targets, then the actor against the stepped critic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from algorithms.common.buffer import Batch
from algorithms.common.diffusion_losses import predict_noise
from algorithms.qsm import QSM, QSMConfig, qsm_target
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


def tiny(**kw) -> QSM:
    """A small QSM of Psenka et al.'s method (`method=score_matching`: this file's subject; the Langevin
    method's tests are in tests/test_baselines_vs_reference.py)."""
    cfg = QSMConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "num_particles": 4, "method": "score_matching", **kw})
    return QSM(3, 2, cfg, CPU)


class AnalyticTwin(nn.Module):
    """Q1(s, a) = -||a - c||^2 + s_0,  Q2(s, a) = 3 a_0 - a_1^2 (s_0 * a_0 couples the state in too).
    grad Q1 = -2 (a - c),  grad Q2 = (3 + s_0, -2 a_1)."""

    c = torch.tensor([0.5, -0.25])

    def forward(self, obs, a):
        q1 = -((a - self.c) ** 2).sum(-1) + obs[:, 0]
        q2 = 3 * a[:, 0] + obs[:, 0] * a[:, 0] - a[:, 1] ** 2
        return torch.stack([q1, q2])

    def min_q(self, obs, a):
        return self(obs, a).min(dim=0).values


def test_target_is_minus_m_q_times_the_two_critic_mean_gradient_by_hand():
    obs = torch.tensor([[1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    a = torch.tensor([[0.1, 0.2], [-0.3, 0.4]])
    target = qsm_target(AnalyticTwin(), obs, a, m_q=50.0)
    expected = []
    for s0, (a0, a1) in zip([1.0, -2.0], a.tolist()):
        g1 = np.array([-2 * (a0 - 0.5), -2 * (a1 + 0.25)])
        g2 = np.array([3 + s0, -2 * a1])
        expected.append(-50.0 * (g1 + g2) / 2)
    np.testing.assert_allclose(target.numpy(), np.array(expected), rtol=1e-6)
    assert not target.requires_grad


def test_actor_loss_by_hand_on_noisy_replay_actions():
    algo = tiny(q_grad_scale=2.0, q_grad_raw_reward=False)  # M_q on the scaled critic's gradient, as by hand below
    algo.critic = AnalyticTwin()
    obs, action = torch.randn(4, 3), torch.rand(4, 2) * 2 - 1
    torch.manual_seed(5)
    loss, target = algo.actor_loss(obs, action)
    torch.manual_seed(5)
    i = torch.randint(0, 20, (4,))
    eps = torch.randn(4, 2)
    abar = algo.schedule.abar[i].unsqueeze(1)
    noisy = abar.sqrt() * action + (1 - abar).sqrt() * eps
    grad = torch.stack([-2 * (noisy - AnalyticTwin.c)[:, 0] + 3 + obs[:, 0], -2 * (noisy[:, 1] + 0.25) - 2 * noisy[:, 1]], dim=1) / 2
    torch.testing.assert_close(target, -2.0 * grad, rtol=1e-5, atol=1e-6)
    pred = predict_noise(algo.actor, obs, noisy, i)
    hand = ((pred - (-2.0 * grad)) ** 2).sum() / 8
    torch.testing.assert_close(loss, hand, rtol=1e-5, atol=1e-7)


def test_acting_is_best_of_n_plus_constant_noise(monkeypatch):
    algo = tiny(exploration_noise=0.1)
    candidates = torch.tensor([[0.9, 0.9], [-0.5, 0.1], [0.2, -0.3], [0.0, 0.0]])
    q1 = torch.tensor([5.0, 1.0, 3.0, 0.0])
    q2 = torch.tensor([-1.0, 2.0, 2.5, 0.0])

    def twin(states, actions):  # the two members' values; their min is left to the critic's own min_q
        idx = (actions.unsqueeze(1) - candidates).abs().sum(-1).argmin(dim=1)
        return torch.stack([q1[idx], q2[idx]])

    monkeypatch.setattr(algo, "generate", lambda states, noise=None: candidates.repeat(states.shape[0] // 4, 1))
    monkeypatch.setattr(algo.critic, "forward", twin)
    np.testing.assert_allclose(algo.act(np.zeros(3, np.float32), deterministic=True), [0.2, -0.3])  # not Q1's 0
    torch.manual_seed(0)
    acts = np.stack([algo.act(np.zeros(3, np.float32)) for _ in range(2000)])
    assert np.allclose(acts.mean(0), [0.2, -0.3], atol=0.01) and np.allclose(acts.std(0), 0.1, rtol=0.08)


def test_actor_sees_the_critic_after_its_step(monkeypatch):
    """Over three updates: the actor loss sees the critic after this update's step, on the replay actions;
    the actor steps every update; the targets move every update by tau toward the stepped critic
    (checked against the target before each update, moved away from the critic first: at construction they
    are equal, and a tau-step toward a critic one Adam step away would be within float tolerance of none)."""
    torch.manual_seed(0)
    algo = tiny()
    with torch.no_grad():
        for p in algo.critic_target.parameters():
            p.add_(0.5 * torch.randn_like(p))
    batch = random_batch(3, 2, 8, CPU)
    seen = {}
    real = algo.actor_loss

    def spy(obs, action):
        seen["critic"] = [p.detach().clone() for p in algo.critic.parameters()]
        seen["action"] = action
        return real(obs, action)

    monkeypatch.setattr(algo, "actor_loss", spy)
    for _ in range(3):
        before = [p.detach().clone() for p in algo.critic.parameters()]
        before_target = [p.detach().clone() for p in algo.critic_target.parameters()]
        before_actor = [p.detach().clone() for p in algo.actor.parameters()]
        algo.update(batch)
        assert all(torch.equal(a, b) for a, b in zip(seen["critic"], algo.critic.parameters()))
        assert not all(torch.equal(a, b) for a, b in zip(before, seen["critic"]))
        assert torch.equal(seen["action"], batch.action)  # the replay actions, not the policy's
        assert not all(torch.equal(a, b) for a, b in zip(before_actor, algo.actor.parameters()))  # every update
        for t, c, b in zip(algo.critic_target.parameters(), algo.critic.parameters(), before_target):
            torch.testing.assert_close(t, b + 0.005 * (c - b))
            assert (c - b).abs().max() > 0.1  # so a missed Polyak step (t = b) would show


class CriticLossCalled(Exception):
    pass


def test_critic_target_next_action_is_best_of_n_plus_noise(monkeypatch):
    """The next action handed to the critic loss is best-of-N by min(Q1, Q2) of the current critic
    (candidate 2, not Q1's candidate 0, not a single sample) plus 0.1 N(0, I): over 1,000 next states
    its mean is candidate 2 and its std 0.1. The candidates come from the actor's sampler (stubbed) and
    the critic's two members are a table; their min is the critic's own."""
    algo = tiny(exploration_noise=0.1)
    candidates = torch.tensor([[0.9, 0.9], [-0.5, 0.1], [0.2, -0.3], [0.0, 0.0]])
    q1 = torch.tensor([5.0, 1.0, 3.0, 0.0])
    q2 = torch.tensor([-1.0, 2.0, 2.5, 0.0])

    def twin(states, actions):
        idx = (actions.unsqueeze(1) - candidates).abs().sum(-1).argmin(dim=1)
        return torch.stack([q1[idx], q2[idx]])

    def critic_loss(batch, next_action):
        seen["next_action"] = next_action
        raise CriticLossCalled

    seen = {}
    monkeypatch.setattr(algo.actor, "sample", lambda obs, *a, **k: candidates.repeat(obs.shape[0] // 4, 1))
    monkeypatch.setattr(algo.critic, "forward", twin)
    monkeypatch.setattr(algo, "critic_loss", critic_loss)
    n = 1000
    batch = Batch(torch.zeros(n, 3), torch.zeros(n, 2), torch.zeros(n), torch.zeros(n, 3), torch.zeros(n))
    torch.manual_seed(0)
    with pytest.raises(CriticLossCalled):
        algo.update(batch)
    a = seen["next_action"]
    assert a.shape == (n, 2)
    assert torch.allclose(a.mean(0), torch.tensor([0.2, -0.3]), atol=0.015)
    assert torch.allclose(a.std(0), torch.tensor([0.1, 0.1]), rtol=0.1)


def test_zero_actor_lr_freezes_the_actor_update_is_finite_and_checkpoint_roundtrips():
    torch.manual_seed(1)
    algo = tiny(actor_lr=0.0)
    before = [p.detach().clone() for p in algo.actor.parameters()]
    batch = random_batch(3, 2, 8, CPU)
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.equal(a, p) for a, p in zip(before, algo.actor.parameters()))
    assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in metrics.values())
    other = tiny(actor_lr=0.0)
    other.load_state_dict(algo.state_dict())
    assert other.updates == 3
    torch.manual_seed(5)
    a = algo.generate(torch.zeros(4, 3))
    torch.manual_seed(5)
    torch.testing.assert_close(other.generate(torch.zeros(4, 3)), a)
    assert math.isclose(algo.exploration_std(), 0.1)
