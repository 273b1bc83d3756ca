"""MFP: the flow path, the MeanFlow and IVC losses on hand examples, best-of-N selection, conventions."""

from __future__ import annotations

import math

import numpy as np
import torch

from algorithms.common.best_of_n import best_of_n
from algorithms.common.critics import TwinCritic
from algorithms.common.meanflow import sample_times
from algorithms.mfp import MFP, MFPConfig, MeanFlowActor, flow_path, mfp_losses
from sombench.measure.latency import random_batch

# Hand example: a* = (0.5, -1), eps = (1, 2), r = 0.25, t = 0.5, and the linear field
# u(z, r, t) = w * z + t (1, -1) + r (0, 3) with w = (1, 2) elementwise.
A_STAR = torch.tensor([[0.5, -1.0]])
EPS = torch.tensor([[1.0, 2.0]])
R, T = torch.tensor([[0.25]]), torch.tensor([[0.5]])


def linear_field(w: torch.Tensor):
    return lambda z, r, t: w * z + t * torch.tensor([1.0, -1.0]) + r * torch.tensor([0.0, 3.0])


def test_flow_path_by_hand():
    z, v = flow_path(A_STAR, EPS, T)
    np.testing.assert_allclose(z.numpy(), [[0.75, 0.5]])  # 0.5 a* + 0.5 eps
    np.testing.assert_allclose(v.numpy(), [[0.5, 3.0]])  # eps - a* (MFP's a* - a(0), time reversed)


def test_mf_and_ivc_losses_and_gradients_by_hand():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    mf, ivc = mfp_losses(linear_field(w), A_STAR, EPS, R, T)
    # u(z, r, t) = (0.75, 1.0) + (0.5, -0.5) + (0, 0.75) = (1.25, 1.25)
    # du/dt along (v, 0, 1) = w * v + (1, -1) = (1.5, 5);  u_tgt = v - (t - r) du/dt = (0.125, 1.75)
    assert math.isclose(mf.item(), 1.125**2 + 0.5**2, rel_tol=1e-6)  # 1.515625
    # u(z, t, t) = (0.75, 1.0) + (0.5, -0.5) + (0, 1.5) = (1.25, 2.0);  minus v = (0.75, -1.0)
    assert math.isclose(ivc.item(), 0.75**2 + 1.0**2, rel_tol=1e-6)  # 1.5625
    # The MeanFlow target is a stop-gradient: d L_MF / dw = 2 (u - u_tgt) * z only.
    (g_mf,) = torch.autograd.grad(mf, w, retain_graph=True)
    np.testing.assert_allclose(g_mf.numpy(), [2 * 1.125 * 0.75, 2 * -0.5 * 0.5], rtol=1e-6)
    (g_ivc,) = torch.autograd.grad(ivc, w)
    np.testing.assert_allclose(g_ivc.numpy(), [2 * 0.75 * 0.75, 2 * -1.0 * 0.5], rtol=1e-6)


def test_exact_average_velocity_of_a_point_target_has_zero_loss_and_generates_it():
    """For one target a*, every path is straight and u(z, r, t) = (z - a*) / t is its exact average
    velocity: both losses vanish, and one-step generation eps - u(eps, 0, 1) lands on a*."""
    g = torch.Generator().manual_seed(0)
    a_star = torch.tensor([0.3, -0.7]).expand(64, 2)
    eps = torch.randn((64, 2), generator=g)
    r, t = sample_times(64, 0.0, "cpu", generator=g)
    t = t.clamp_min(0.05)
    r = torch.minimum(r, t)
    exact = lambda z, r_, t_: (z - a_star) / t_  # noqa: E731
    mf, ivc = mfp_losses(exact, a_star, eps, r, t)
    assert mf.item() < 1e-8 and ivc.item() < 1e-8
    one = torch.ones((64, 1))
    torch.testing.assert_close(eps - exact(eps, 0 * one, one), a_star)
    # and a wrong field (generation towards -a*) is penalised
    wrong = lambda z, r_, t_: (z + a_star) / t_  # noqa: E731
    assert min(mfp_losses(wrong, a_star, eps, r, t)) > 0.1


def test_training_on_a_fixed_target_moves_one_step_samples_onto_it():
    """End to end through the actor: regressing on a single a* makes a = eps - u(eps, 0, 1, s) ~ a*
    (catches a sign or time-convention error, which would send samples elsewhere)."""
    torch.manual_seed(0)
    cfg = MFPConfig(hidden_sizes=(32, 32))
    actor = MeanFlowActor(1, 2, cfg)
    opt = torch.optim.Adam(actor.parameters(), lr=3e-3)
    obs = torch.zeros((64, 1))
    a_star = torch.tensor([0.4, -0.6]).expand(64, 2)
    def mean_distance() -> float:
        with torch.no_grad():
            eps = torch.randn(512, 2)
            samples = eps - actor(eps, torch.zeros(512, 1), torch.ones(512, 1), torch.zeros(512, 1))
        return (samples - torch.tensor([0.4, -0.6])).norm(dim=1).mean().item()

    before = mean_distance()
    for _ in range(200):
        r, t = sample_times(64, 0.0, "cpu")
        mf, ivc = mfp_losses(lambda z, r_, t_: actor(z, r_, t_, obs), a_star, torch.randn(64, 2), r, t)
        opt.zero_grad()
        (mf + ivc).backward()
        opt.step()
    after = mean_distance()
    assert before > 0.8 and after < 0.3, (before, after)  # measured: ~1.4 before, ~0.15 after


class HandCritic(TwinCritic):
    """Q1(s, a) = a_0, Q2(s, a) = 1 - a_0: min(Q1, Q2) peaks at a_0 = 0.5, argmax Q1 and argmax Q2 differ."""

    def __init__(self, hidden=(1,)):
        super().__init__(1, 1, hidden, "relu")  # weights unused; the shape lets Polyak updates run

    def forward(self, obs, action):
        return torch.stack([action[:, 0], 1 - action[:, 0]])


def test_best_of_n_picks_argmax_of_min_q():
    cand = {0: [-0.5, 0.1, 0.4, 0.9], 1: [0.55, 0.95, -0.9, 0.2]}  # per state; min(Q1, Q2) best: 0.4, 0.55

    def generate(states):
        return torch.tensor([cand[int(s)] for s in states[::4, 0]]).reshape(-1, 1)

    critic = HandCritic()
    picked = best_of_n(generate, critic.min_q, torch.tensor([[0.0], [1.0]]), 4)
    np.testing.assert_allclose(picked.numpy(), [[0.4], [0.55]])


def test_mfp_acts_with_best_of_n_through_its_critic(monkeypatch):
    algo = MFP(1, 1, MFPConfig(hidden_sizes=(8,), num_particles=4), torch.device("cpu"))
    algo.critic = HandCritic()
    monkeypatch.setattr(algo, "generate", lambda states: torch.tensor([[-0.5], [0.1], [0.4], [0.9]]))
    assert algo.act(np.zeros(1, np.float32)).tolist() == [np.float32(0.4)]
    assert algo.act(np.zeros(1, np.float32), deterministic=True).tolist() == [np.float32(0.4)]


def test_critic_target_uses_the_best_of_n_next_action(monkeypatch):
    """y = r_scaled + gamma (1 - d) min Q_targ(s', a*(s')): with the hand critic as target and a*(s') = 0.4,
    min Q_targ = 0.4; the critic loss then equals the hand value."""
    cfg = MFPConfig(hidden_sizes=(8,), num_particles=4, batch_size=2)
    algo = MFP(1, 1, cfg, torch.device("cpu"))
    algo.critic_target = HandCritic(cfg.hidden_sizes)
    picked = []
    real_best = algo.best_of_n

    def spy(obs, n):
        out = real_best(obs, n)
        picked.append(out)
        return out

    monkeypatch.setattr(algo, "best_of_n", spy)
    batch = random_batch(1, 1, 2, torch.device("cpu"))
    q_before = algo.critic(batch.obs, batch.action).detach()
    metrics = algo.update(batch)
    next_action = picked[0][2:, 0]
    next_q = torch.minimum(next_action, 1 - next_action)
    y = cfg.reward_scale * batch.reward + cfg.gamma * (1 - batch.terminated) * next_q
    expected = 0.5 * ((q_before - y) ** 2).mean(dim=1).sum()
    assert math.isclose(metrics["critic_loss"].item(), expected.item(), rel_tol=1e-5)
    assert math.isclose(metrics["target_q"].item(), next_q.mean().item(), rel_tol=1e-6)


def test_actor_loss_is_mf_plus_lambda_ivc_towards_the_best_of_n_action_at_s(monkeypatch):
    """The actor regresses onto a* = best-of-N at the batch's states (the first half of the one best-of-N
    pass, whose second half is the critic's next action), with loss L_MF + lambda L_IVC, lambda = 0.5."""
    import algorithms.mfp as mfp_module

    torch.manual_seed(0)
    algo = MFP(3, 2, MFPConfig(hidden_sizes=(16, 16), batch_size=8, num_particles=4, ivc_weight=0.5), torch.device("cpu"))
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    picks, losses = [], []
    real_best, real_losses = algo.best_of_n, mfp_module.mfp_losses
    monkeypatch.setattr(algo, "best_of_n", lambda obs, n: picks.append(real_best(obs, n)) or picks[-1])
    monkeypatch.setattr(mfp_module, "mfp_losses", lambda *a: losses.append((a, real_losses(*a))) or losses[-1][1])
    metrics = algo.update(batch)
    (args, (mf, ivc)), = losses
    torch.testing.assert_close(args[1], picks[0][:8])
    assert not torch.allclose(picks[0][:8], picks[0][8:])
    torch.testing.assert_close(metrics["actor_loss"], (mf + 0.5 * ivc).detach())
    assert float(ivc.detach()) > 1e-4


def test_update_is_finite_and_checkpoint_roundtrips():
    torch.manual_seed(1)
    algo = MFP(3, 2, MFPConfig(hidden_sizes=(16, 16), batch_size=8), torch.device("cpu"))
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.isfinite(v) for v in metrics.values())
    state = algo.state_dict()
    other = MFP(3, 2, MFPConfig(hidden_sizes=(16, 16), batch_size=8), torch.device("cpu"))
    other.load_state_dict(state)
    eps = torch.randn(5, 2)
    obs = torch.randn(5, 3)
    torch.testing.assert_close(other.generate(obs, eps), algo.generate(obs, eps))
