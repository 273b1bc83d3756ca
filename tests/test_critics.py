"""Critic losses against hand-computed values on a tiny batch."""

import math

import numpy as np
import torch

from algorithms.common.critics import (
    DistributionalTwinCritic,
    TwinCritic,
    distributional_critic_loss,
    distributional_targets,
    twin_critic_loss,
)
from algorithms.common.nets import EnsembleMLP, mlp


def test_twin_critic_loss_by_hand():
    q = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    y = torch.tensor([2.0, 2.0])
    # member 1: 0.5*mean(1, 0) = 0.25; member 2: 0.5*mean(4, 4) = 2
    assert twin_critic_loss(q, y).item() == 2.25


def test_twin_critic_shapes_and_min():
    critic = TwinCritic(3, 2, (8,), "gelu")
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    q = critic(obs, act)
    assert q.shape == (2, 5)
    torch.testing.assert_close(critic.min_q(obs, act), torch.minimum(q[0], q[1]))


def test_ensemble_members_match_independent_mlps():
    ens = EnsembleMLP(2, 4, 3, (6, 5), "mish")
    x = torch.randn(7, 4)
    out = ens(x)
    for e in range(2):
        single = mlp(4, 3, (6, 5), "mish")
        with torch.no_grad():
            for layer_e, layer_s in zip([m for m in ens.net if hasattr(m, "weight")], [m for m in single if hasattr(m, "weight")]):
                layer_s.weight.copy_(layer_e.weight[e].T)
                layer_s.bias.copy_(layer_e.bias[e, 0])
        torch.testing.assert_close(out[e], single(x))


def test_distributional_targets_by_hand():
    mu = torch.tensor([[1.0, 5.0], [2.0, 3.0]])  # member 0 smaller in column 0, member 1 in column 1
    sigma = torch.tensor([[0.5, 0.5], [1.0, 1.0]])
    r = torch.tensor([0.1, 0.2])
    d = torch.tensor([0.0, 1.0])
    gen = torch.Generator().manual_seed(3)
    z = torch.randn((2, 2), generator=torch.Generator().manual_seed(3)).clamp(-3, 3).numpy()
    y, ys = distributional_targets(mu, sigma, r, d, 0.9, generator=gen)
    np.testing.assert_allclose(y.numpy(), [0.1 + 0.9 * 1.0, 0.2], rtol=1e-6)
    np.testing.assert_allclose(ys.numpy(), [0.1 + 0.9 * (1.0 + 0.5 * z[0, 0]), 0.2], rtol=1e-6)


def test_distributional_loss_value_and_gradients_by_hand():
    mu = torch.tensor([[1.0, 2.0], [0.5, -1.0]], requires_grad=True)
    sigma = torch.tensor([[0.5, 2.0], [1.0, 0.2]], requires_grad=True)
    y = torch.tensor([1.5, 1.0])
    ys = torch.tensor([10.0, 1.2])
    tau, eps = 0.005, 0.1
    old = torch.tensor([-1.0, 0.8])  # member 0 uninitialised, member 1 has a running mean
    loss, new = distributional_critic_loss(mu, sigma, y, ys, old, tau)

    m, s = mu.detach().numpy(), sigma.detach().numpy()
    w = np.array([s[0].mean(), tau * s[1].mean() + (1 - tau) * 0.8])
    np.testing.assert_allclose(new.numpy(), w, rtol=1e-6)
    total, g_mu, g_sigma = 0.0, np.zeros((2, 2)), np.zeros((2, 2))
    for i in range(2):
        yb = m[i] + np.clip(ys.numpy() - m[i], -3 * w[i], 3 * w[i])
        sd = np.maximum(s[i], 0)
        a = (y.numpy() - m[i]) / (sd**2 + eps)
        b = ((m[i] - yb) ** 2 - sd**2) / (sd**3 + eps)
        scale = -(w[i] ** 2 + eps)
        total += scale * np.mean(m[i] * a + s[i] * b)
        g_mu[i] = scale * a / 2  # stop-gradients: mu enters only through the first term
        g_sigma[i] = scale * b / 2
    assert math.isclose(loss.item(), total, rel_tol=1e-5)
    loss.backward()
    np.testing.assert_allclose(mu.grad.numpy(), g_mu, rtol=1e-5)
    np.testing.assert_allclose(sigma.grad.numpy(), g_sigma, rtol=1e-5)


def test_distributional_critic_outputs_positive_std():
    critic = DistributionalTwinCritic(3, 2, (8,), "mish")
    mu, sigma = critic(torch.randn(4, 3), torch.randn(4, 2))
    assert mu.shape == sigma.shape == (2, 4)
    assert torch.all(sigma > 0)
