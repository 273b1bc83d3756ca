"""SOM's gates: the score estimator against the exact score, the velocity field, the MeanFlow
machinery, controls, the JVP target, best-of-N (issue: SOM, gates 1-5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import jvp

from algorithms.common.base import Choice
from algorithms.common.buffer import Batch
from algorithms.common.meanflow import MeanFlowActor, meanflow_target, sample_times
from algorithms.common.schedules import VESchedule, VPSchedule
from algorithms.common.score import mc_score
from algorithms.som import SOM, SOMConfig
from conftest import invoke, run_path
from labs import online_lab, som_lab
from sombench.bandit.mixtures import eight_gaussians, mode_counts

MIX = eight_gaussians()


def estimator_error(schedule, t0: float, k: int, sign: float = 1.0, n: int = 400, seed: int = 0) -> tuple[float, float]:
    """Relative L2 error and mean cosine of Eq. 5 (target = the mixture) vs the exact diffused score,
    at n points drawn from p_t."""
    g = torch.Generator().manual_seed(seed)
    t = torch.full((n, 1), t0, dtype=torch.float64)
    scale, std = schedule.marginal_kernel(t)
    a_t = scale * MIX.sample(n, g) + std * torch.randn((n, 2), dtype=torch.float64, generator=g)
    est = sign * mc_score(lambda p: MIX.log_prob(p), a_t, t, schedule, k, generator=g)
    true = MIX.score(a_t, scale, std)
    err = float((est - true).norm() / true.norm())
    cos = float(torch.nn.functional.cosine_similarity(est, true, dim=1).mean())
    return err, cos


def test_vp_estimator_matches_the_exact_score():
    vp = VPSchedule()
    err, cos = estimator_error(vp, 0.05, 1000)
    assert err <= 0.06 and cos >= 0.98, (err, cos)
    err_big, cos_big = estimator_error(vp, 0.2, 10_000)
    assert err_big <= 0.15 and cos_big >= 0.95, (err_big, cos_big)
    err_small, _ = estimator_error(vp, 0.2, 100)
    assert err_big <= 0.3 * err_small, (err_big, err_small)


def test_ve_estimator_matches_the_exact_score():
    ve = VESchedule(0.01, 1.0)
    err, cos = estimator_error(ve, 0.8, 1000)  # sigma = 0.4
    assert err <= 0.2 and cos >= 0.98, (err, cos)
    err_big, cos_big = estimator_error(ve, 1.0, 10_000)  # sigma = 1
    assert err_big <= 0.15 and cos_big >= 0.95, (err_big, cos_big)
    err_small, _ = estimator_error(ve, 1.0, 100)
    assert err_big <= 0.3 * err_small, (err_big, err_small)


def test_velocity_field_lands_on_the_four_high_modes():
    res = som_lab.integrate_field(SOMConfig())  # VP, contracting reading, w = 25, K = 100
    assert res["in_mode"] >= 0.95, res
    assert min(res["modes"].values()) >= 0.15, res


def test_ve_velocity_field_lands_on_the_four_high_modes():
    res = som_lab.integrate_field(SOMConfig(sde="ve", score_scale=10.0))
    assert res["in_mode"] >= 0.95 and min(res["modes"].values()) >= 0.15, res


@pytest.mark.parametrize("cfg", [SOMConfig(score_scale=0.0), SOMConfig(vp_velocity="literal")])
def test_controls_do_not_reach_the_modes(cfg):
    """Config switches of the code path itself: under VP, w = 0 leaves only the prior's pull, which
    collapses samples to the origin; the literal VP reading diverges. (A score sign flipped inside the lab's helper
    would only restate the test above, so it is not a control.)"""
    assert som_lab.integrate_field(cfg)["in_mode"] < 0.05


@pytest.mark.slow
def test_meanflow_machinery_reproduces_the_mixture():
    """Trained on the exact VP PF-ODE of the mixture (analytic score, no normalization), one-step samples
    must reproduce it: about half its mass lies within 0.5 of the four high modes."""
    res = som_lab.train_generator(SOMConfig(loss_weight_power=0.0), 5000, target="exact", eval_every=5000)
    assert 0.40 <= res.final["in_mode"] <= 0.65, res.final
    assert min(res.final["modes"].values()) >= 0.08, res.final


def test_jvp_target_matches_finite_differences():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.GELU(), torch.nn.Linear(32, 2)).double()

    def u_fn(z, r, t):
        return net(torch.cat([z, r, t], dim=-1))

    z, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    r, t = torch.rand(5, 1, dtype=torch.float64) * 0.5, 0.5 + torch.rand(5, 1, dtype=torch.float64) * 0.5
    u, target = meanflow_target(u_fn, z, r, t, v)
    h = 1e-5
    total = (u_fn(z + h * v, r, t + h) - u_fn(z - h * v, r, t - h)) / (2 * h)  # d/dt u(z + v dt, r, t + dt)
    torch.testing.assert_close(u, u_fn(z, r, t))
    torch.testing.assert_close(target, v - (t - r) * total, rtol=1e-6, atol=1e-8)
    assert not target.requires_grad and u.requires_grad
    _, dudt = jvp(u_fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    torch.testing.assert_close(dudt, total, rtol=1e-6, atol=1e-8)


def test_actor_action_scale_is_the_same_network_in_other_units():
    """u_c(z) = net(c z) / c equals an unscaled actor whose first layer's z-columns are multiplied by c
    and whose last layer is divided by c: the same function class, other units (docs/som-notes.md s. 10)."""
    cfg = SOMConfig(hidden_sizes=(16, 16))
    scaled = MeanFlowActor(3, 2, cfg, action_scale=2.5).double()
    plain = MeanFlowActor(3, 2, cfg).double()
    plain.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        linears = [m for m in plain.net.modules() if isinstance(m, torch.nn.Linear)]
        linears[0].weight[:, :2] *= 2.5  # the z columns come first: cat([z, r, t, obs])
        linears[-1].weight /= 2.5
        linears[-1].bias /= 2.5
    g = torch.Generator().manual_seed(0)
    z, obs = torch.randn((7, 2), generator=g, dtype=torch.float64), torch.randn((7, 3), generator=g, dtype=torch.float64)
    r, t = torch.rand((7, 1), generator=g, dtype=torch.float64), torch.ones((7, 1), dtype=torch.float64)
    torch.testing.assert_close(scaled(z, r, t, obs), plain(z, r, t, obs))


def test_sample_times_orders_r_and_t():
    r, t = sample_times(10_000, 0.25, "cpu", torch.Generator().manual_seed(0))
    assert torch.all(r <= t) and torch.all((0 <= r) & (t <= 1))
    assert abs(float((r == t).float().mean()) - 0.25) < 0.02


def tiny_som(**kw) -> SOM:
    torch.manual_seed(0)
    cfg = SOMConfig(hidden_sizes=(16,), batch_size=8, num_score_samples=4, num_particles=5, warmup_steps=0, **kw)
    return SOM(3, 2, cfg, torch.device("cpu"))


# -- SOM.score end to end: pairing, inverse temperature, standardisation, clipping ----------------
class QuadraticCritic(torch.nn.Module):
    """min_q(s, a) = -0.5 k |a - c(s)|^2 with a state-dependent centre c(s) = 0.5 s[:2]."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def centre(self, obs: torch.Tensor) -> torch.Tensor:
        return 0.5 * obs[:, :2]

    def min_q(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return -0.5 * self.k * ((a - self.centre(obs)) ** 2).sum(-1)


# three states, repeated in turn: a state/proposal pairing bug (repeat vs repeat_interleave) mixes centres
STATES = torch.tensor([[1.2, -0.8, 0.0], [-1.0, 0.6, 1.0], [0.4, 1.4, -1.0]]).repeat(4, 1)


def quadratic_som(sde: str, k_samples: int = 8192, **kw) -> SOM:
    cfg = SOMConfig(hidden_sizes=(8,), sde=sde, num_score_samples=k_samples, buffer_size=1,
                    **{"standardize_q": False, "clip_proposals": False, "inverse_temperature": 2.0, **kw})
    som = SOM(3, 2, cfg, "cpu")
    som.critic = QuadraticCritic(4.0)
    return som


@pytest.mark.parametrize("sde, t0", [("vp", 0.2), ("ve", 0.9)])
def test_som_score_is_the_smoothed_boltzmann_score_of_a_state_dependent_critic(sde, t0):
    """With beta_Q = 2 and Q = -2 |a - c(s)|^2, exp(beta_Q Q) is N(c(s), 1/8 I); diffused by the kernel
    a_t = scale a_0 + std eps its score is (scale c(s) - a_t) / (scale^2 / 8 + std^2), per row's own state."""
    torch.manual_seed(0)
    som = quadratic_som(sde)
    a_t = 0.5 * torch.randn(12, 2)
    t = torch.full((12, 1), t0)
    est = som.score(STATES, a_t, t)
    scale, std = som.schedule.marginal_kernel(t)
    exact = (scale * som.critic.centre(STATES) - a_t) / (scale**2 / 8 + std**2)
    rel = float((est - exact).norm() / exact.norm())
    cos = float(torch.nn.functional.cosine_similarity(est, exact, dim=1).min())
    assert rel < 0.1 and cos > 0.98, (rel, cos)


def test_som_score_defaults_to_beta_5_over_alpha_and_standardisation_removes_q_scale():
    torch.manual_seed(0)
    a_t, t = 0.5 * torch.randn(12, 2), torch.full((12, 1), 0.9)

    def score(som):
        torch.manual_seed(1)  # the same proposals
        return som.score(STATES, a_t, t)

    fixed = score(quadratic_som("ve", 512))
    default = score(quadratic_som("ve", 512, inverse_temperature=None, init_alpha=2.5))  # 5 / 2.5 = 2
    torch.testing.assert_close(default, fixed)
    plain, shifted = quadratic_som("ve", 512, standardize_q=True), quadratic_som("ve", 512, standardize_q=True)
    shifted.critic.min_q = lambda obs, a: 3.0 * QuadraticCritic(4.0).min_q(obs, a) + 7.0
    torch.testing.assert_close(score(plain), score(shifted), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(score(plain), fixed)  # standardised: another inverse temperature in effect


def test_clipped_proposals_carry_no_gradient():
    som = quadratic_som("ve", 64, clip_proposals=True)
    a_t = torch.tensor([[3.0, -3.0], [0.2, 0.1]]).repeat(6, 1)  # far outside the box: every proposal clipped
    est = som.score(STATES, a_t, torch.full((12, 1), 0.2))  # sigma(0.2) = 0.025
    assert torch.all(est[0::2] == 0) and torch.all(est[1::2].norm(dim=1) > 0)


def test_best_of_n_picks_per_state_the_argmax_of_min_q_not_of_q1(monkeypatch):
    """Candidate j of state s is (s, j / 10). Q1 = j always prefers j = 4; Q2 = 10 - 3 (j - 2 - s)^2 makes
    min(Q1, Q2) pick j = 3 for state 0 and j = 4 for state 1. The real twin critic's min_q takes the min."""
    som = tiny_som()
    monkeypatch.setattr(som, "generate", lambda obs, noise=None: torch.stack(
        [obs[:, 0], torch.arange(obs.shape[0], dtype=torch.float32) % 5 / 10], dim=1))

    def twin_heads(x):  # x = [obs (3), action (2)]; channel 0 is each member's mean
        s, j = x[..., 0], x[..., 4] * 10
        q1, q2 = j, 10 - 3 * (j - 2 - s) ** 2
        mean = torch.stack([q1, q2]).unsqueeze(-1)
        return torch.cat([mean, torch.zeros_like(mean)], dim=-1)

    monkeypatch.setattr(som.critic.net, "forward", twin_heads)
    picked = som.best_of_n(torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]), 5)
    torch.testing.assert_close(picked, torch.tensor([[0.0, 0.3], [1.0, 0.4]]))


def test_one_update_by_hand_critic_target_and_alpha_schedule(monkeypatch):
    """The critic's backup is 0.2 r + 0.99 (1 - d) min of the target critic's means at the best-of-N next
    action (0.2 r exactly at terminals); alpha takes one Adam step every alpha_delay updates, towards the
    noise-entropy target: H(N(0, (0.1 alpha)^2 I_2)) = -1.77 > -1.8, so alpha falls by alpha_lr in log."""
    import algorithms.som as som_module

    som = tiny_som(alpha_delay=3, init_alpha=1.0)
    fixed_next = torch.full((8, 2), 0.25)
    calls, seen = [], {}
    monkeypatch.setattr(som, "best_of_n", lambda obs, n: (calls.append((obs, n)), fixed_next)[1])
    real = som_module.distributional_targets

    def spy(t_mu, t_sigma, reward, terminated, gamma, generator=None):
        out = real(t_mu, t_sigma, reward, terminated, gamma, generator)
        seen.update(t_mu=t_mu, reward=reward, y=out[0])
        return out

    monkeypatch.setattr(som_module, "distributional_targets", spy)
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(8, 3, generator=g), torch.rand(8, 2, generator=g) * 2 - 1, torch.rand(8, generator=g),
                  torch.randn(8, 3, generator=g), torch.tensor([1.0, 0, 1, 0, 0, 0, 1, 0]))
    log_alphas = []
    for _ in range(6):
        with torch.no_grad():
            expected_mu = som.critic_target(batch.next_obs, fixed_next)[0]
        som.update(batch)
        log_alphas.append(float(som.temperature.log_alpha))
        torch.testing.assert_close(calls[-1][0], batch.next_obs)
        assert calls[-1][1] == 5
        torch.testing.assert_close(seen["t_mu"], expected_mu)
        torch.testing.assert_close(seen["reward"], 0.2 * batch.reward)
        y = 0.2 * batch.reward + 0.99 * (1 - batch.terminated) * expected_mu.min(dim=0).values
        torch.testing.assert_close(seen["y"], y)
        assert torch.equal(seen["y"][batch.terminated == 1], (0.2 * batch.reward)[batch.terminated == 1])
    assert log_alphas[0] == log_alphas[1] == 0.0
    assert log_alphas[2] == pytest.approx(-7e-3, abs=1e-5)
    assert log_alphas[3] == log_alphas[4] == log_alphas[2]
    assert log_alphas[5] < log_alphas[4] - 5e-3


def test_actor_step_regresses_onto_the_velocity_of_its_score(monkeypatch):
    """The actor's MeanFlow target is built at the perturbed replay action a_t from v = velocity(a_t, s_hat, t),
    s_hat the Monte Carlo score of Eq. 5 at (s, a_t, t) (not zero, and not some other field)."""
    import algorithms.som as som_module

    som = tiny_som()
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(8, 3, generator=g), torch.rand(8, 2, generator=g) * 2 - 1, torch.rand(8, generator=g),
                  torch.randn(8, 3, generator=g), torch.zeros(8))
    scores, targets = [], []
    real_score, real_target = som.score, som_module.meanflow_target
    monkeypatch.setattr(som, "score", lambda obs, a_t, t: scores.append((obs, a_t, t, real_score(obs, a_t, t))) or scores[-1][3])
    monkeypatch.setattr(som_module, "meanflow_target", lambda fn, z, r, t, v: targets.append((z, t, v)) or real_target(fn, z, r, t, v))
    som.actor_step(batch)
    (obs, a_t, t, score), = scores
    (z, t_target, v), = targets
    assert torch.equal(obs, batch.obs) and torch.equal(z, a_t) and torch.equal(t_target, t)
    assert score.norm(dim=1).max() > 0  # (a row whose proposals all leave the box has score 0)
    torch.testing.assert_close(v, som.velocity(a_t, score, t))
    assert (v - som.velocity(a_t, torch.zeros_like(score), t)).abs().max() > 1e-3


@pytest.mark.parametrize("k", [1, 3])
def test_critic_updates_adds_critic_steps_on_their_own_batches(monkeypatch, k):
    """train_step with critic_updates = k: k critic Adam steps, the first k - 1 each on its own fresh batch
    from the buffer, the last on the update's batch, which the one actor step shares; one counted update
    (the target and alpha delays count env steps, not critic steps)."""
    som = tiny_som(critic_updates=k)
    g = torch.Generator().manual_seed(1)
    for _ in range(200):  # distinct states, so different draws are different batches
        obs = torch.randn(3, generator=g).numpy()
        som.observe(obs, Choice((torch.rand(2, generator=g) * 2 - 1).numpy()), 0.5, obs, True, False)
    critic_batches, actor_batches = [], []
    real_critic, real_actor = som.critic_step, som.actor_step
    monkeypatch.setattr(som, "critic_step", lambda b: (critic_batches.append(b), real_critic(b))[1])
    monkeypatch.setattr(som, "actor_step", lambda b: (actor_batches.append(b), real_actor(b))[1])
    before = [p.detach().clone() for p in som.critic.parameters()]
    som.train_step()
    assert len(critic_batches) == k and len(actor_batches) == 1 and som.updates == 1
    assert critic_batches[-1] is actor_batches[0]
    for i in range(k):
        for j in range(i):
            assert not torch.equal(critic_batches[i].obs, critic_batches[j].obs)
    steps = {int(state["step"]) for state in som.critic_opt.state.values()}
    assert steps == {k} and {int(st["step"]) for st in som.actor_opt.state.values()} == {1}
    assert all(not torch.equal(a, b) for a, b in zip(before, som.critic.parameters()))


def test_act_and_update_run_and_stay_in_the_box():
    som = tiny_som()
    obs = np.zeros(3, np.float32)
    for deterministic in (False, True):
        a = som.act(obs, deterministic)
        assert a.shape == (2,) and np.all(np.abs(a) <= 1)
    batch = Batch(torch.randn(8, 3), torch.rand(8, 2) * 2 - 1, torch.randn(8), torch.randn(8, 3), torch.zeros(8))
    for cfg in ({}, {"sde": "ve"}, {"score_dtype": "bfloat16"}):
        metrics = tiny_som(**cfg).update(batch)
        assert all(torch.isfinite(v) for v in metrics.values()), metrics


def test_paper_defaults():
    cfg = SOMConfig()
    assert (cfg.actor_lr, cfg.critic_lr, cfg.warmup_steps, cfg.num_particles, cfg.num_score_samples) == (1e-4, 1e-4, 100_000, 32, 100)
    assert (cfg.alpha_lr, cfg.alpha_delay, cfg.target_entropy_scale, cfg.noise_scale, cfg.reward_scale) == (7e-3, 250, -0.9, 0.1, 0.2)
    assert cfg.hidden_sizes == (256, 256, 256) and cfg.activation == "gelu" and cfg.sde == "vp"
    assert tiny_som().w == 25.0


def test_mode_counts_on_fixed_points():
    pts = torch.tensor([[1.414, 0.0], [0.0, 1.0], [0.0, -1.8], [-0.8, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert mode_counts(pts) == {"E": 1, "N": 1, "W": 0, "S": 1}



# -- Gate 6: SOM learns through the runner, with its own critic; the w = 0 control does not --------
# The eight-Gaussian bandit with the generator scored alone (eval_particles=1): a one-step episode's
# return is the reward of one generated action, so the evaluation return is the mean reward of the
# generator's samples. Best-of-32 is kept for acting (it gathers the data) but cannot lift this score;
# on Pendulum it could (docs/som-notes.md, section 7). CPU-sized config: 2 x 128 networks, batch 128,
# K = 16, lr 3e-4 for actor and critic, 500 warm-up steps; VE with sigma 0.004 -> 0.4 and w = 12.5,
# the bandit-unit settings (sigma 0.01 -> 1, w 5) carried into the [-1, 1] box (section 5).
# w = 0 leaves the generator at its prior N(0, 0.4^2 I): mean reward ~0.2 whatever the critic does.
GATE6_SETTINGS = ("sde=ve", "sigma_max=0.4", "sigma_min=0.004", "score_scale=12.5", "init_alpha=1.0",
                  "hidden_sizes=128,128", "batch_size=128", "num_score_samples=16", "warmup_steps=500",
                  "eval_particles=1", "actor_lr=3e-4", "critic_lr=3e-4")
GATE6_BAR = 0.265


def train_som_bandit(results, *extra: str) -> float:
    """Mean of the last two evaluations (1,000 generator samples each) after 4,000 env steps."""
    args = ["run", "--algo", "som", "--env", "sombench/EightGaussians-v0", "--steps", "4000", "--seeds", "1",
            "--results", str(results), "--eval-every", "500", "--eval-episodes", "1000", "--threads", "1", "--device", "cpu"]
    for pair in GATE6_SETTINGS + extra:
        args += ["--set", pair]
    assert invoke(args) == 0
    returns = pd.read_csv(run_path(results, "sombench/EightGaussians-v0", "som", 0) / "eval.csv")["return_mean"]
    return float(returns.iloc[-2:].mean())


@pytest.mark.slow
def test_som_generator_learns_the_bandit(tmp_path):
    final = train_som_bandit(tmp_path / "som")
    assert final > GATE6_BAR, final


@pytest.mark.full
@pytest.mark.slow
def test_som_without_the_score_stays_below_the_bar(tmp_path):
    final = train_som_bandit(tmp_path / "control", "score_scale=0")
    assert final < GATE6_BAR, final


# Gate 6 by mode coverage (>= 40% of the generator's samples within 0.5 of a high mode and >= 3 of the 4
# modes >= 10%, 2 seeds), which mean reward cannot give (one mode scores as well as four), asserted for
# SOM's own acting, update and generator in the online loop with the true reward as Q (labs/online_lab.py
# `--critic oracle`, the bandit preset; critic_updates=1, since the oracle replaces the critic and its
# extra steps would only cost time). Measured at 4,000 updates: seed 0 57.9% in a mode (N/E/S/W
# 14/13/16/15%), seed 1 59.6% (13/18/14/15%). Broken, seed 0: without the actor's units
# (actor_action_scale=1) 27.9% with every mode under 8%; without the score (score_scale=0) 19.9%, the
# prior's level (docs/som-notes.md section 10).
COVERAGE_STEPS = 4500  # 500 uniform warm-up steps, then 4,000 updates


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.full)])  # seed 1: make test-all
def test_som_generator_covers_the_four_modes_with_a_perfect_critic(seed):
    final = online_lab.run("oracle", "buffer", seed, COVERAGE_STEPS, ["critic_updates=1"],
                           eval_every=COVERAGE_STEPS)["history"][-1]
    modes = [final[m] for m in online_lab.MODES]
    assert final["in_mode"] >= 0.40 and sum(share >= 0.10 for share in modes) >= 3, final


# The same loop with SOM's own learned critic (the bandit preset, four critic steps per env step): every
# mode must keep >= 7% and the total >= 50%. One critic step per env step leaves one mode's peak low and
# the generator loses that mode (docs/som-notes.md section 12). Measured at 4,000 updates: 61.4% in a mode
# (N/E/S/W 15/17/16/14%), every peak of Q within 1% of the true 0.2. Broken (this test's call with
# ["critic_updates=1"]): 48.6% with W at 4.0% (its peak at 0.078), failing both bars.
@pytest.mark.full
@pytest.mark.slow
def test_som_generator_covers_the_four_modes_with_its_own_critic():
    final = online_lab.run("learned", "buffer", 0, COVERAGE_STEPS, [], eval_every=COVERAGE_STEPS)["history"][-1]
    modes = [final[m] for m in online_lab.MODES]
    assert final["in_mode"] >= 0.50 and min(modes) >= 0.07, final


# The VP smoke gate below runs the paper's main SDE through `sombench bandit`.
GATE6_STEPS = 1000


def som_bandit_reports(cli, results, seeds: int, *sets: str) -> list[dict]:
    args = ["bandit", "--algo", "som", "--task", "eight-gaussians", "--seeds", str(seeds), "--steps", str(GATE6_STEPS),
            "--results", str(results), "--threads", "1", "--format", "json"]
    for pair in sets:
        args += ["--set", pair]
    code, out, err = cli(args)
    assert code == 0, err[-2000:]
    return json.loads(out)["clean"]["seeds"]


@pytest.mark.full
@pytest.mark.slow
def test_vp_som_trains_on_the_bandit_smoke(cli, tmp_path):
    """VP (the paper's main SDE) through the same path: the run finishes with finite losses and its
    generator's samples stay in the box's neighbourhood (VP does not reach the goal on the bandit;
    docs/som-notes.md section 9)."""
    (report,) = som_bandit_reports(cli, tmp_path, 1, "sde=vp", "score_scale=25")
    train = pd.read_csv(run_path(tmp_path, "sombench/EightGaussians-v0", "som") / "train.csv")
    assert np.isfinite(train.drop(columns="env_step").to_numpy()).all()
    assert report["n"] == 1000 and sum(report["counts"].values()) == report["total"]


def test_q_standardised_per_state_makes_each_states_score_blind_to_an_affine_change_of_its_own_q():
    """`standardize_q_over='state'` (GRPO's group = one state's K proposals): a per-state positive scale and
    offset of Q leaves every state's score unchanged; over the batch it does not (a state whose Q spans a
    small range beside the others' is flattened: docs/som-notes.md section 16). With one state the two agree."""
    from algorithms.common.schedules import VESchedule
    from algorithms.common.score import boltzmann_score

    schedule, k = VESchedule(0.01, 1.0), 64
    a_t, t = 0.4 * torch.randn(6, 2, generator=torch.Generator().manual_seed(0)), torch.full((6, 1), 0.3)
    scale = torch.tensor([1.0, 30.0, 0.05, 3.0, 1.0, 200.0]).repeat_interleave(k)
    offset = torch.tensor([0.0, 100.0, -50.0, 7.0, -3.0, 1000.0]).repeat_interleave(k)

    def q_plain(actions):
        return -((actions - 0.3) ** 2).sum(-1)

    def q_affine(actions):
        return scale * q_plain(actions) + offset

    def score(q_fn, over, rows=slice(None)):
        return boltzmann_score(q_fn, a_t[rows], t[rows], schedule, k, 2.0, True, standardize_over=over,
                               generator=torch.Generator().manual_seed(1))

    torch.testing.assert_close(score(q_plain, "state"), score(q_affine, "state"), rtol=1e-3, atol=1e-4)
    assert not torch.allclose(score(q_plain, "batch"), score(q_affine, "batch"), rtol=1e-2, atol=1e-2)
    one = slice(0, 1)
    torch.testing.assert_close(score(q_plain, "state", one), score(q_plain, "batch", one))
    with pytest.raises(ValueError, match="standardize_over"):
        score(q_plain, "states")
