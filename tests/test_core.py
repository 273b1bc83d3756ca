"""Polyak updates, temperature helpers, action scaling, SAC's tanh-Gaussian log-probability."""

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from algorithms.common.base import Choice
from algorithms.common.spaces import ActionScaler
from algorithms.common.targets import polyak_update
from algorithms.common.temperature import LogAlpha, gaussian_noise_entropy, noise_alpha_loss, sac_alpha_loss
from algorithms.sac import SAC, SACConfig


def test_polyak_update():
    src = torch.nn.Linear(3, 2)
    tgt = copy.deepcopy(src)
    with torch.no_grad():
        for p in tgt.parameters():
            p.fill_(1.0)
    expected = [0.1 * p.detach() + 0.9 * 1.0 for p in src.parameters()]
    polyak_update(src, tgt, 0.1)
    for p, e in zip(tgt.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)


def test_gaussian_noise_entropy_matches_torch():
    alpha = torch.tensor(5.0)
    expected = D.Normal(torch.zeros(3), 0.1 * 5.0 * torch.ones(3)).entropy().sum()
    torch.testing.assert_close(gaussian_noise_entropy(alpha, 0.1, 3), expected)


def test_alpha_losses_push_the_right_way():
    t = LogAlpha(2.0)
    assert math.isclose(t.alpha.item(), 2.0, rel_tol=1e-6)
    # entropy below target -> the loss decreases as log_alpha grows
    sac_alpha_loss(t.log_alpha, torch.tensor([5.0]), target_entropy=-3.0).backward()  # entropy -5 < -3
    assert t.log_alpha.grad.item() < 0
    t.log_alpha.grad = None
    sac_alpha_loss(t.log_alpha, torch.tensor([1.0]), target_entropy=-3.0).backward()  # entropy -1 > -3
    assert t.log_alpha.grad.item() > 0
    t.log_alpha.grad = None
    noise_alpha_loss(t.log_alpha, torch.tensor(-5.0), target_entropy=-1.0).backward()  # H below target
    assert t.log_alpha.grad.item() < 0


def test_action_scaler_round_trip_and_clip():
    s = ActionScaler(np.array([-2.0, 0.0]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(s.to_env(np.array([1.0, -1.0])), [2.0, 0.0])
    np.testing.assert_allclose(s.to_env(np.array([3.0, 0.0])), [2.0, 0.5])
    np.testing.assert_allclose(s.from_env(s.to_env(np.array([0.3, -0.7]))), [0.3, -0.7], rtol=1e-6)
    with pytest.raises(ValueError):
        ActionScaler(np.array([-np.inf]), np.array([1.0]))


def test_sac_log_prob_matches_torch_transformed_distribution():
    torch.manual_seed(0)
    algo = SAC(4, 3, SACConfig(hidden_sizes=(16,)), torch.device("cpu"))
    obs = torch.randn(64, 4)
    torch.manual_seed(1)
    action, log_prob = algo.actor.sample(obs)
    mean, log_std = algo.actor(obs)
    dist = D.TransformedDistribution(D.Normal(mean, log_std.exp()), [D.TanhTransform(cache_size=1)])
    torch.manual_seed(1)
    ref_action = dist.rsample()
    torch.testing.assert_close(action, ref_action)
    torch.testing.assert_close(log_prob, dist.log_prob(ref_action).sum(-1), rtol=1e-4, atol=1e-4)


def test_sac_actor_loss_is_alpha_log_pi_minus_min_q_of_the_stepped_critic(monkeypatch):
    """J_pi = mean[alpha log pi(a|s) - min_j Q_j(s, a)], a ~ pi(.|s) the update's second policy sample, with
    the online critic after its step (the target critic is moved away so using it would show), alpha = 0.5."""
    from sombench.measure.latency import random_batch

    torch.manual_seed(0)
    algo = SAC(3, 2, SACConfig(hidden_sizes=(16,), batch_size=8, init_alpha=0.5), torch.device("cpu"))
    with torch.no_grad():
        for p in algo.critic_target.parameters():
            p.add_(0.5 * torch.randn_like(p))
    draws = []
    real = algo.actor.sample
    monkeypatch.setattr(algo.actor, "sample", lambda obs: draws.append((obs, *real(obs))) or draws[-1][1:])
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    metrics = algo.update(batch)
    obs, action, log_prob = draws[1]
    assert torch.equal(obs, batch.obs)
    with torch.no_grad():
        expected = (0.5 * log_prob - algo.critic.min_q(obs, action)).mean()
        other = (0.5 * log_prob - algo.critic_target.min_q(obs, action)).mean()
    torch.testing.assert_close(metrics["actor_loss"], expected)
    assert abs(float(expected - other)) > 1e-3


def test_algorithm_state_round_trip():
    cfg = SACConfig(hidden_sizes=(16,), batch_size=8, warmup_steps=0)
    a = SAC(3, 1, cfg, torch.device("cpu"))
    for i in range(20):
        a.observe(np.ones(3) * i, Choice(np.zeros(1)), 1.0, np.ones(3), False, False)
    a.train_step()
    b = SAC(3, 1, cfg, torch.device("cpu"))
    saved = io.BytesIO()  # through serialisation, as a checkpoint does (state_dict holds references)
    torch.save(a.state_dict(), saved)
    saved.seek(0)
    b.load_state_dict(torch.load(saved, weights_only=False))
    torch.manual_seed(5)
    ma = a.train_step()
    torch.manual_seed(5)
    mb = b.train_step()
    for k in ma:
        torch.testing.assert_close(ma[k], mb[k])
    with pytest.raises(ValueError):
        b.load_state_dict({"actor": {}})
