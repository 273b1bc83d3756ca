"""DACER: the GMM entropy estimator against closed forms and Monte Carlo, the DDPM helpers by hand,
and the update's schedule (policy every 2 updates, alpha every alpha_delay updates)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from algorithms.common.diffusion import DDPMSchedule, reverse_process, sinusoidal_embedding, vp_betas
from algorithms.common.gmm_entropy import gmm_entropy, gmm_entropy_per_state
from algorithms.dacer import DACER, DACERConfig
from sombench.measure.latency import random_batch


def closed_form_entropy(cov: np.ndarray) -> float:
    """H(N(mu, cov)) = 0.5 log det(2 pi e cov)."""
    return 0.5 * math.log(np.linalg.det(2 * math.pi * math.e * cov))


# -- GMM entropy -----------------------------------------------------------------------------------

def test_one_component_gmm_entropy_is_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    cov = np.array([[0.5, 0.2, 0.0], [0.2, 0.3, -0.05], [0.0, -0.05, 0.1]])
    x = rng.multivariate_normal([0.1, -0.3, 0.5], cov, size=20_000)
    est = gmm_entropy(x[None], n_components=1)
    assert abs(est - closed_form_entropy(cov)) < 0.03, (est, closed_form_entropy(cov))
    # with one component it is exactly the entropy of the maximum-likelihood covariance (+ sklearn's 1e-6 ridge)
    mle = np.cov(x.T, bias=True) + 1e-6 * np.eye(3)
    assert math.isclose(est, closed_form_entropy(mle), abs_tol=1e-6)


def test_gmm_entropy_averages_over_states():
    rng = np.random.default_rng(1)
    stds = [0.05, 0.4]
    x = np.stack([rng.normal(0, s, size=(5_000, 2)) for s in stds])
    per_state = gmm_entropy_per_state(x, n_components=1)
    expected = [closed_form_entropy(s**2 * np.eye(2)) for s in stds]
    np.testing.assert_allclose(per_state, expected, atol=0.05)
    assert math.isclose(gmm_entropy(x, n_components=1), float(np.mean(per_state)))


def test_three_component_gmm_entropy_matches_monte_carlo_for_a_well_separated_mixture():
    """True entropy -E[log p(x)] by Monte Carlo with the true density, against the estimator's fit."""
    rng = np.random.default_rng(2)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    covs = [np.diag([0.3, 0.1]), np.array([[0.2, 0.05], [0.05, 0.2]]), np.diag([0.05, 0.4])]

    def sample(n: int) -> np.ndarray:
        k = rng.choice(3, size=n, p=weights)
        per_component = np.stack([rng.multivariate_normal(m, c, size=n) for m, c in zip(means, covs)])
        return per_component[k, np.arange(n)]

    mc_points = sample(100_000)
    log_p = logsumexp(np.stack([np.log(w) + multivariate_normal(m, c).logpdf(mc_points)
                                for w, m, c in zip(weights, means, covs)]), axis=0)
    mc_entropy = -log_p.mean()  # standard error ~ 0.004
    est = gmm_entropy(sample(4_000)[None], n_components=3)
    assert abs(est - mc_entropy) < 0.05, (est, mc_entropy)
    # and a single Gaussian over the same points is far off, so the test tells 3 components from 1
    assert gmm_entropy(mc_points[None, :4000], n_components=1) > mc_entropy + 1.0


# -- DDPM helpers --------------------------------------------------------------------------------

def test_vp_betas_telescope_to_the_continuous_vp_marginal():
    """prod (1 - beta_i) = exp(-int_0^1 beta(t) dt) = exp(-(beta_min + (beta_max - beta_min) / 2))."""
    for steps in (1, 2, 20):
        abar = np.prod(1 - vp_betas(steps, 0.1, 10.0))
        assert math.isclose(abar, math.exp(-(0.1 + 0.5 * 9.9)), rel_tol=1e-12)
    b = vp_betas(2, 0.1, 10.0)
    assert math.isclose(b[0], 1 - math.exp(-0.05 - 0.5 * 9.9 * 1 / 4), rel_tol=1e-12)
    assert math.isclose(b[1], 1 - math.exp(-0.05 - 0.5 * 9.9 * 3 / 4), rel_tol=1e-12)


def test_one_step_reverse_process_is_the_clipped_clean_prediction():
    """T = 1: the posterior at the last step has coef_x0 = 1 and coef_xt = 0, so the sample is
    clip(x / sqrt(abar) - sqrt(1 / abar - 1) eps_hat)."""
    sched = DDPMSchedule(1, "vp")
    abar = float(np.prod(1 - vp_betas(1)))
    x = torch.tensor([[0.02, -0.01]])
    out = reverse_process(lambda x_, i: torch.full_like(x_, 0.01), sched, x)
    expected = x / math.sqrt(abar) - math.sqrt(1 / abar - 1) * 0.01
    torch.testing.assert_close(out, expected)
    big = reverse_process(lambda x_, i: torch.full_like(x_, -5.0), sched, x)  # x0_hat >> 1: clipped
    torch.testing.assert_close(big, torch.ones_like(x))


def test_reverse_process_with_the_exact_noise_of_a_point_mass_ends_on_it():
    """For a point mass at c the exact noise predictor is (x - sqrt(abar_i) c) / sqrt(1 - abar_i): every
    x0_hat is c, and the last posterior step returns c exactly, whatever the noise drawn on the way."""
    sched = DDPMSchedule(20, "vp")
    c = torch.tensor([0.3, -0.8])

    def exact(x, i):
        return (x - sched.sqrt_abar[i] * c) / sched.sqrt_one_minus_abar[i]

    out = reverse_process(exact, sched, torch.randn(256, 2))
    torch.testing.assert_close(out, c.expand(256, 2), atol=1e-5, rtol=0)


def test_sinusoidal_embedding_by_hand():
    emb = sinusoidal_embedding(torch.tensor([1.0]), 4)  # freqs 1 and 10000^-0.5 = 0.01, scale 1/2
    expected = [math.sin(1) / 2, math.sin(0.01) / 2, math.cos(1) / 2, math.cos(0.01) / 2]
    np.testing.assert_allclose(emb[0].numpy(), expected, rtol=1e-6)


# -- the algorithm -------------------------------------------------------------------------------

def tiny(**kw) -> DACER:
    cfg = DACERConfig(hidden_sizes=(16, 16), batch_size=8, entropy_samples=20, **kw)
    return DACER(3, 2, cfg, torch.device("cpu"))


def test_policy_and_alpha_update_on_their_schedules():
    torch.manual_seed(0)
    algo = tiny(alpha_delay=3)
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    log_alphas, actor_changed = [], []
    for _ in range(5):
        before = [p.detach().clone() for p in algo.actor.parameters()]
        algo.update(batch)
        actor_changed.append(any(not torch.equal(a, p) for a, p in zip(before, algo.actor.parameters())))
        log_alphas.append(algo.temperature.log_alpha.item())
    assert actor_changed == [True, False, True, False, True]  # updates 0, 2, 4 (policy delay 2)
    start = math.log(algo.config.init_alpha)
    steps = np.diff([start, *log_alphas]) != 0
    assert steps.tolist() == [True, False, False, True, False]  # updates 0 and 3 (alpha delay 3)
    # the first estimate: 0.5 * e^1.2 * 0.15 noise alone has entropy ~ -0.29 per dim > -0.9: alpha falls
    assert algo.entropy.item() > algo.target_entropy and log_alphas[0] < start


def test_actor_loss_is_minus_min_q_of_the_critic_before_its_step(monkeypatch):
    """J_pi = -mean min(mu1, mu2)(s, a), a = pi(s) with exploration noise (the last policy call of the update),
    rated by the online critic as it was before this update's step (the target critic is moved away, and
    the critic does step, so either slip would show)."""
    torch.manual_seed(0)
    algo = tiny()
    with torch.no_grad():
        for p in algo.critic_target.parameters():
            p.add_(0.5 * torch.randn_like(p))
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    before = copy.deepcopy(algo.critic)
    calls = []
    real = algo.policy
    monkeypatch.setattr(algo, "policy", lambda obs, noisy=True: calls.append((obs, noisy, real(obs, noisy))) or calls[-1][2])
    metrics = algo.update(batch)
    obs, noisy, action = calls[-1]
    assert torch.equal(obs, batch.obs) and noisy
    with torch.no_grad():
        expected = -before.min_q(obs, action).mean()
        for other in (algo.critic, algo.critic_target):
            assert abs(float(-other.min_q(obs, action).mean() - expected)) > 1e-4
    torch.testing.assert_close(metrics["actor_loss"], expected)


def test_actor_gradient_reaches_every_denoising_step():
    """Q is backpropagated through the reverse process: every actor parameter, the step embedding's
    included, gets a non-zero gradient from -min(mu1, mu2)."""
    torch.manual_seed(0)
    algo = tiny()
    obs = torch.randn(8, 3)
    loss = -algo.critic.min_q(obs, algo.policy(obs, noisy=False)).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in algo.actor.parameters())


def test_the_loss_gradient_reaches_the_initial_noise_through_all_steps():
    """Full backpropagation through the 20 steps: the gradient of the loss with respect to the starting
    noise x_T matches central finite differences of the whole chain (same per-step noise). Truncated
    backpropagation (x detached between steps) would give zero here, though every parameter, shared
    across steps, would still get a gradient."""
    torch.manual_seed(0)
    algo = tiny()
    obs = torch.randn(4, 3)

    def loss_of(x_init: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(1)  # the same posterior noise at every step
        action = algo.actor.sample(obs, algo.schedule, algo.config.prior_std, x_init=x_init).clamp(-1, 1)
        return -algo.critic.min_q(obs, action).sum()

    x = torch.randn(4, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(loss_of(x), x)
    assert grad.abs().sum() > 0
    h, fd = 1e-2, torch.zeros_like(grad)
    with torch.no_grad():
        for i in range(4):
            for j in range(2):
                e = torch.zeros_like(x)
                e[i, j] = h
                fd[i, j] = (loss_of(x + e) - loss_of(x - e)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=0.1, atol=2e-3)


def test_deterministic_acting_has_no_exploration_noise(monkeypatch):
    algo = tiny()
    calls = []
    real = torch.randn_like
    monkeypatch.setattr(torch, "randn_like", lambda x, *a, **k: calls.append(x.shape) or real(x, *a, **k))
    algo.act(np.zeros(3, np.float32), deterministic=True)
    assert calls == []
    algo.act(np.zeros(3, np.float32))
    assert calls == [(1, 2)]


@pytest.mark.parametrize("schedule", ["vp", "cosine"])
def test_update_is_finite_and_checkpoint_roundtrips(schedule):
    torch.manual_seed(1)
    algo = tiny(beta_schedule=schedule)
    batch = random_batch(3, 2, 8, torch.device("cpu"))
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(torch.isfinite(v) for v in metrics.values())
    other = tiny(beta_schedule=schedule)
    other.load_state_dict(algo.state_dict())
    assert other.updates == 3 and torch.equal(other.entropy, algo.entropy)
    torch.manual_seed(5)
    a = algo.policy(torch.zeros(4, 3), noisy=False)
    torch.manual_seed(5)
    torch.testing.assert_close(other.policy(torch.zeros(4, 3), noisy=False), a)
