"""SOM's gates: the score estimator against the exact score, the velocity field, the MeanFlow
machinery, controls, the JVP target, best-of-N (issue: SOM, gates 1-5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import jvp

from algorithms.common.buffer import Batch
from algorithms.common.meanflow import meanflow_target, sample_times
from algorithms.common.schedules import VESchedule, VPSchedule
from algorithms.common.score import mc_score
from algorithms.som import SOM, SOMConfig
from conftest import invoke, run_path
from labs import som_lab
from sombench import store
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


@pytest.mark.parametrize("schedule, t0, k", [(VPSchedule(), 0.05, 1000), (VESchedule(0.01, 1.0), 0.8, 1000)])
def test_flipped_estimator_sign_fails_the_gate(schedule, t0, k):
    err, cos = estimator_error(schedule, t0, k, sign=-1.0)
    assert err > 1.5 and cos < -0.9


def test_velocity_field_lands_on_the_four_high_modes():
    res = som_lab.integrate_field(SOMConfig())  # VP, contracting reading, w = 25, K = 100
    assert res["in_mode"] >= 0.95, res
    assert min(res["modes"].values()) >= 0.15, res


def test_ve_velocity_field_lands_on_the_four_high_modes():
    res = som_lab.integrate_field(SOMConfig(sde="ve", score_scale=10.0))
    assert res["in_mode"] >= 0.95 and min(res["modes"].values()) >= 0.15, res


@pytest.mark.parametrize("cfg, sign", [(SOMConfig(score_scale=0.0), 1.0), (SOMConfig(), -1.0), (SOMConfig(sde="ve"), -1.0),
                                       (SOMConfig(vp_velocity="literal"), 1.0)])
def test_controls_do_not_reach_the_modes(cfg, sign):
    """w = 0 collapses to the origin, a flipped score pushes away, the literal VP reading diverges."""
    assert som_lab.integrate_field(cfg, sign=sign)["in_mode"] < 0.05


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


def test_sample_times_orders_r_and_t():
    r, t = sample_times(10_000, 0.25, "cpu", torch.Generator().manual_seed(0))
    assert torch.all(r <= t) and torch.all((0 <= r) & (t <= 1))
    assert abs(float((r == t).float().mean()) - 0.25) < 0.02


def tiny_som(**kw) -> SOM:
    torch.manual_seed(0)
    cfg = SOMConfig(hidden_sizes=(16,), batch_size=8, num_score_samples=4, num_particles=5, warmup_steps=0, **kw)
    return SOM(3, 2, cfg, torch.device("cpu"))


def test_best_of_n_picks_argmax_min_q(monkeypatch):
    som = tiny_som()
    cands = torch.tensor([[0.1, 0.1], [0.9, -0.2], [0.3, 0.3], [-0.5, 0.5], [0.0, 0.0]] * 2)

    def fake_min_q(obs, act):
        return -(act - torch.tensor([0.8, -0.1])).norm(dim=-1) + obs[:, 0]  # best: closest to (0.8, -0.1)

    monkeypatch.setattr(som, "generate", lambda obs, eps=None: cands[: obs.shape[0]])
    monkeypatch.setattr(som.critic, "min_q", fake_min_q)
    picked = som.best_of_n(torch.zeros(2, 3), 5)
    torch.testing.assert_close(picked, torch.tensor([[0.9, -0.2], [0.9, -0.2]]))


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


@pytest.mark.slow
def test_som_without_the_score_stays_below_the_bar(tmp_path):
    final = train_som_bandit(tmp_path / "control", "score_scale=0")
    assert final < GATE6_BAR, final
