"""QSM: the target -M_q * mean_j grad_a Q_j by hand on an analytic twin critic, the loss by hand on the
noisy replay actions, best-of-N acting with the constant 0.1 noise, and the update's order (critic
step, targets, then the actor against the stepped critic)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from algorithms.common.diffusion_losses import predict_noise
from algorithms.qsm import QSM, QSMConfig, qsm_target
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


def tiny(**kw) -> QSM:
    cfg = QSMConfig(**{"hidden_sizes": (16, 16), "batch_size": 8, "num_particles": 4, **kw})
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
    algo = tiny(q_grad_scale=2.0)
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

    def twin_min(states, actions):
        idx = (actions.unsqueeze(1) - candidates).abs().sum(-1).argmin(dim=1)
        return torch.minimum(q1[idx], q2[idx])

    monkeypatch.setattr(algo, "generate", lambda states, noise=None: candidates.repeat(states.shape[0] // 4, 1))
    monkeypatch.setattr(algo.critic, "min_q", twin_min)
    np.testing.assert_allclose(algo.act(np.zeros(3, np.float32), deterministic=True), [0.2, -0.3])  # not Q1's 0
    torch.manual_seed(0)
    acts = np.stack([algo.act(np.zeros(3, np.float32)) for _ in range(2000)])
    assert np.allclose(acts.mean(0), [0.2, -0.3], atol=0.01) and np.allclose(acts.std(0), 0.1, rtol=0.08)


def test_actor_sees_the_critic_after_its_step(monkeypatch):
    torch.manual_seed(0)
    algo = tiny()
    batch = random_batch(3, 2, 8, CPU)
    seen = {}
    real = algo.actor_loss

    def spy(obs, action):
        seen["critic"] = [p.detach().clone() for p in algo.critic.parameters()]
        seen["action"] = action
        return real(obs, action)

    monkeypatch.setattr(algo, "actor_loss", spy)
    before = [p.detach().clone() for p in algo.critic.parameters()]
    before_actor = [p.detach().clone() for p in algo.actor.parameters()]
    algo.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(seen["critic"], algo.critic.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before, seen["critic"]))
    assert torch.equal(seen["action"], batch.action)  # the replay actions, not the policy's
    assert not all(torch.equal(a, b) for a, b in zip(before_actor, algo.actor.parameters()))  # every update
    # targets move every update, by tau
    for t, c, b in zip(algo.critic_target.parameters(), algo.critic.parameters(), before):
        torch.testing.assert_close(t, b + 0.005 * (c - b))


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
