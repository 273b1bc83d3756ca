"""The 2-D bandits (SOM Appendices F, H): rewards, perturbations, mode counting, and `sombench bandit`."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run_path, tree
from sombench.errors import UserError
from sombench.bandit import tasks as bandits
from sombench.train.bandit import aggregate_reports, mode_report
from sombench.envs import describe_env, make_env


SQ2 = math.sqrt(2)


def reward(task: str, *points) -> list[float]:
    return bandits.TASKS[task].reward(torch.tensor(points, dtype=torch.float64)).tolist()


# -- rewards against hand-computed values ------------------------------------------------------
def test_eight_gaussians_reward_by_hand():
    def density(x, y):  # sum_i w_i N((x, y); mu_i, 0.3^2 I) up to the common factor 1 / (2 pi 0.09 * 12)
        return sum((2 if i % 2 == 0 else 1) * math.exp(-((x - SQ2 * math.cos(i * math.pi / 4)) ** 2 + (y - SQ2 * math.sin(i * math.pi / 4)) ** 2) / 0.18)
                   for i in range(8))

    peak = density(SQ2, 0.0)
    centre, origin, odd, far = reward("eight-gaussians", (0.0, SQ2), (0.0, 0.0), (1.0, 1.0), (2.5, -2.5))
    assert centre == pytest.approx(1.0, abs=1e-9)  # every high-mode centre has the peak value
    assert origin == pytest.approx(12 * math.exp(-2 / 0.18) / peak, rel=1e-9) and origin == pytest.approx(8.95e-5, rel=1e-2)
    assert odd == pytest.approx(density(1.0, 1.0) / peak, rel=1e-9) and odd == pytest.approx(0.5, abs=0.01)  # low mode: half weight
    assert far == pytest.approx(density(2.5, -2.5) / peak, rel=1e-6) and far < 1e-3


def test_two_moons_reward_by_hand():
    # on the upper moon's top (its centre (-0.6, -0.3) + 1.2 (0, 1)), on the lower moon's bottom,
    # at the origin (0.6708 from both centres: 1.2 - 0.6708 = 0.5292 from both lines), and far away
    top, bottom, origin, far = reward("two-moons", (-0.6, 0.9), (0.6, -0.9), (0.0, 0.0), (2.5, 2.5))
    assert top == pytest.approx(1.0) and bottom == pytest.approx(1.0)
    assert origin == pytest.approx(math.exp(-((1.2 - math.hypot(0.6, 0.3)) ** 2) / 0.08), rel=1e-9)
    # (2.5, 2.5): the upper moon's line is 4.18 - 1.2 away; nearer is the lower moon's end (0.6 + 1.2, 0.3)
    assert far == pytest.approx(math.exp(-(0.7**2 + 2.2**2) / 0.08), rel=1e-6)
    # beyond an arc's end the distance is to the end point: (0.6, -0.5) is 0.2 below the upper moon's
    # end (0.6, -0.3) (a full circle would pass 0.017 from it) and 0.4 inside the lower moon's line
    assert reward("two-moons", (0.6, -0.5))[0] == pytest.approx(math.exp(-0.04 / 0.08), rel=1e-9)


def test_checkerboard_reward_by_hand():
    black, white, edge, origin, outside = reward("checkerboard", (0.5, 0.5), (1.5, 0.5), (0.75, 0.5), (0.0, 0.0), (2.25, 0.5))
    assert black == pytest.approx(1.0) and white == 0.0 and origin == pytest.approx(0.0, abs=1e-12) and outside == 0.0
    assert edge == pytest.approx(math.sin(0.75 * math.pi))
    assert len(bandits.CHECKER_CELLS) == 8
    assert all(reward("checkerboard", c)[0] == pytest.approx(1.0) for c in bandits.CHECKER_CELLS)


# -- perturbations ------------------------------------------------------------------------------
def test_noise_has_the_stated_std_and_zero_mean():
    env = make_env("sombench/EightGaussians-noise0.2-v0")
    env.reset(seed=3)
    a = np.array([0.0, SQ2], np.float32)
    clean = reward("eight-gaussians", tuple(float(v) for v in a))[0]
    draws = np.array([env.step(a)[1] for _ in range(4000)]) - clean
    assert abs(draws.mean()) < 4 * 0.2 / math.sqrt(4000)
    assert draws.std() == pytest.approx(0.2, rel=0.05)
    env.reset(seed=3)  # the env's RNG drives the noise: the same seed gives the same stream
    assert env.step(a)[1] - clean == pytest.approx(draws[0])


def test_bump_is_deterministic_and_as_defined():
    env = make_env("sombench/EightGaussians-bump0.5x0.3-v0")
    env.reset(seed=0)
    for point in [(0.0, 0.0), (0.3, 0.0), (0.0, SQ2), (2.0, 2.0)]:
        clean = reward("eight-gaussians", point)[0]
        bump = 0.5 * 1.0 * math.exp(-(point[0] ** 2 + point[1] ** 2) / (2 * 0.3**2))
        values = {env.step(np.array(point, np.float32))[1] for _ in range(3)}
        assert len(values) == 1 and values.pop() == pytest.approx(clean + bump, rel=1e-6)


def test_perturbation_parsing_and_ids():
    p = bandits.parse_perturb("bump:0.5,0.3")
    assert (p.kind, p.c, p.sigma, p.text, p.slug) == ("bump", 0.5, 0.3, "bump:0.5,0.3", "bump0.5x0.3")
    assert bandits.parse_perturb("noise:0.20").slug == "noise0.2"
    task = bandits.TASKS["two-moons"]
    assert bandits.env_id_for(task, p) == "sombench/TwoMoons-bump0.5x0.3-v0"
    assert bandits.parse_env_id("sombench/TwoMoons-bump0.5x0.3-v0") == (task, p)
    assert bandits.parse_env_id("sombench/Checkerboard-v0") == (bandits.TASKS["checkerboard"], None)
    assert bandits.parse_env_id("Hopper-v4") is None
    for bad in ["noise", "noise:", "noise:-1", "noise:0", "noise:x", "bump:0.5", "bump:0.5,0.3,1", "blur:1", "noise:nan", "noise:inf"]:
        with pytest.raises(UserError):
            bandits.parse_perturb(bad)
    # gym.make kwargs give the same env as the registered id
    env = gym.make("sombench/EightGaussians-v0", perturb="bump:0.5,0.3")
    env.reset(seed=0)
    assert env.step(np.zeros(2, np.float32))[1] == pytest.approx(0.5 + reward("eight-gaussians", (0.0, 0.0))[0])
    info = describe_env("sombench/Checkerboard-noise1e-05-v0")
    assert (info.obs_dim, info.act_dim, list(info.act_high)) == (1, 2, [2.5, 2.5])


# -- mode counting ------------------------------------------------------------------------------
def test_mode_counts_on_fixed_points():
    points = np.array([
        [0.0, SQ2], [0.0, SQ2 + 0.49], [0.3, SQ2 - 0.3],   # N: 3 (0.424 from the centre)
        [SQ2, 0.0], [SQ2 + 0.51, 0.0],                     # E: 1 (0.51 is outside)
        [0.0, -SQ2],                                       # S: 1
        [1.0, 1.0], [0.0, 0.0], [-2.5, 2.5],               # a low mode, the origin, a corner: none
    ])
    report = mode_report(bandits.TASKS["eight-gaussians"], points)
    assert report["counts"] == {"N": 3, "E": 1, "S": 1, "W": 0}
    assert (report["total"], report["n"], report["fraction"], report["goal_met"]) == (5, 9, 5 / 9, False)
    on_modes = np.array([[0.0, SQ2], [SQ2, 0.0], [0.0, -SQ2], [-SQ2, 0.0]] * 5)
    good = mode_report(bandits.TASKS["eight-gaussians"], on_modes)
    assert good["goal_met"] and good["fraction"] == 1.0
    aggregate = aggregate_reports([report, good])
    assert aggregate["counts"] == {"N": 8, "E": 6, "S": 6, "W": 5} and aggregate["goal_seeds"] == 1
    assert aggregate["fraction"] == pytest.approx(25 / 29)
    cells = mode_report(bandits.TASKS["checkerboard"], np.array([[0.5, 0.5], [0.9, 0.1], [1.5, 0.5], [-1.5, -1.5]]))
    assert cells["total"] == 3 and cells["counts"]["+0.5,+0.5"] == 2
    moons = mode_report(bandits.TASKS["two-moons"], np.array([[-0.6, 0.9], [0.6, -0.9], [0.6, -0.7], [0.0, 0.0]]))
    assert moons["counts"] == {"upper": 1, "lower": 2}


# -- the command --------------------------------------------------------------------------------
TINY = ["--set", "hidden_sizes=32,32", "--set", "batch_size=32", "--set", "warmup_steps=100"]


def test_bandit_command_writes_files_and_json(cli, tmp_path):
    args = ["bandit", "--algo", "sac", "--task", "two-moons", "--perturb", "bump:0.5,0.3", "--seeds", "1", "--steps", "150",
            "--results", str(tmp_path), "--threads", "1", "--format", "json", *TINY]
    code, out, err = cli(args)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["perturb"] == "bump:0.5,0.3" and payload["preset"] == "bandit"
    for group, env_id in [("clean", "sombench/TwoMoons-v0"), ("perturbed", "sombench/TwoMoons-bump0.5x0.3-v0")]:
        run = run_path(tmp_path, env_id, "sac")
        seed = payload[group]["seeds"][0]
        assert payload[group]["env"] == env_id and seed["n"] == 1000 and set(seed["counts"]) == {"upper", "lower"}
        assert seed["source"] == "generate(obs, noise)"
        assert json.loads((run / "bandit_modes.json").read_text())["counts"] == seed["counts"]
        assert (run / "bandit_arrows.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((run.parent / "bandit_modes.json").read_text())["aggregate"]["n"] == 1000
        config = json.loads((run / "config.json").read_text())["run"]
        assert config["env"] == env_id and config["algo_config"]["warmup_steps"] == 100  # the user's --set wins
    assert (run_path(tmp_path, "sombench/TwoMoons-bump0.5x0.3-v0", "sac") / "bandit_perturbation.png").exists()
    assert not (run_path(tmp_path, "sombench/TwoMoons-v0", "sac") / "bandit_perturbation.png").exists()
    # a rerun trains nothing (finished seeds are skipped) and prints the same counts
    code, out2, _ = cli(args)
    assert code == 0 and json.loads(out2)["perturbed"]["seeds"][0]["counts"] == payload["perturbed"]["seeds"][0]["counts"]


def test_bandit_reports_the_papers_grid_measure_beside_the_sample_counts(cli, tmp_path):
    """Appendix H.3: the 49 endpoints of the 7 x 7 noise grid, each counted for the cardinal mode whose centre
    (distance sqrt 2 from the origin) lies within 0.5; recounted here by hand from the trained generator."""
    from sombench.runs.spec import RunSpec
    from sombench.train.bandit import TrainedBandit

    code, out, err = cli(["bandit", "--algo", "mfp", "--seeds", "1", "--steps", "150", "--results", str(tmp_path), "--threads", "1",
                          "--format", "json", *TINY])
    assert code == 0, err
    seed = json.loads(out)["clean"]["seeds"][0]
    assert seed["grid"]["n"] == 49 and seed["n"] == 1000
    run = run_path(tmp_path, "sombench/EightGaussians-v0", "mfp")
    spec = RunSpec("mfp", "sombench/EightGaussians-v0", 0, 150, set_pairs=tuple(TINY[1::2]), preset="bandit")
    ends = TrainedBandit(spec, run).grid_endpoints()
    centres = {"N": (0.0, SQ2), "E": (SQ2, 0.0), "S": (0.0, -SQ2), "W": (-SQ2, 0.0)}
    by_hand = {k: int(sum(math.dist(p, c) <= 0.5 for p in ends)) for k, c in centres.items()}
    assert seed["grid"]["counts"] == by_hand
    assert json.loads((run.parent / "bandit_modes.json").read_text())["aggregate"]["grid"]["n"] == 49
    code, out, _ = cli(["bandit", "--algo", "mfp", "--seeds", "1", "--steps", "150", "--results", str(tmp_path), "--threads", "1", *TINY])
    assert code == 0 and "7x7 grid (H.3)" in out and f"({sum(by_hand.values())}/49)" in out
    assert "the trained critic" in out and "corr(Q, r)" in out
    assert -1 <= seed["critic"]["corr"] <= 1 and set(seed["critic"]["region_peak"]) == set(centres)


def test_bandit_command_som_score_field(cli, tmp_path):
    code, out, err = cli(["bandit", "--algo", "som", "--seeds", "1", "--steps", "120", "--results", str(tmp_path), "--threads", "1",
                          *TINY, "--set", "num_score_samples=8", "--set", "num_particles=4"])
    assert code == 0, err
    run = run_path(tmp_path, "sombench/EightGaussians-v0", "som")
    assert {"bandit_arrows.png", "bandit_score_field.png", "bandit_modes.json"} <= {p.name for p in run.iterdir()}
    assert "N" in out and "goal" in out
    assert json.loads((run / "config.json").read_text())["run"]["algo_config"]["score_scale"] == 12.5  # the bandit default


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--algo", "sac", "--task", "three-moons"], "'three-moons' is not one of"),
        (["--algo", "sac", "--perturb", "noise:-1"], "--perturb 'noise:-1' is not a perturbation"),
        (["--algo", "sac", "--perturb", "bump:0.5"], "--perturb 'bump:0.5' is not a perturbation"),
        (["--algo", "nope"], "unknown algorithm 'nope'"),
        (["--algo", "sac", "--format", "xml"], "'xml' is not one of"),
        (["--algo", "sac", "--steps", "0"], "--steps expects a positive integer"),
        (["--algo", "som", "--set", "score_scale=big"], "score_scale: expected"),
    ],
)
def test_bandit_bad_input(cli, tmp_path, args, needle):
    code, out, err = cli(["bandit", *args, "--results", str(tmp_path / "results")])
    assert_one_line_error(code, out, err, needle)
    assert tree(tmp_path) == []


def test_bandit_help_and_envs_listing(cli):
    code, out, _ = cli(["bandit", "--help"])
    assert code == 0 and "Example: sombench bandit" in out
    code, out, _ = cli(["envs"])
    assert code == 0 and all(t.env_id in out for t in bandits.TASKS.values())


# -- the optional generator interface (algorithms/common/base.py) -------------------------------
def test_generator_interface_defaults_and_som():
    from algorithms.common.capabilities import Generator, ScoreField
    from algorithms.sac import SAC, SACConfig
    from algorithms.som import SOM, SOMConfig

    torch.manual_seed(0)
    obs, noise = torch.zeros((5, 1)), torch.randn((5, 2))
    sac = SAC(1, 2, SACConfig(hidden_sizes=(16,)), "cpu")
    with torch.no_grad():
        action = sac.generate(obs, noise)
        assert action.shape == (5, 2) and action.abs().max() < 1
        path = sac.rollout(obs, noise)  # the default: one step
        assert len(path) == 2 and torch.equal(path[0], noise) and torch.equal(path[1], action)
        at = sac.samples_at(obs, noise, [1.0, 0.75, 0.25, 0.0])  # the nearest rollout point
        assert [torch.equal(x, noise) for x in at] == [True, True, False, False] and torch.equal(at[3], action)
    assert issubclass(SAC, Generator) and issubclass(SOM, Generator) and issubclass(SOM, ScoreField)
    assert not issubclass(SAC, ScoreField)

    som = SOM(1, 2, SOMConfig(hidden_sizes=(16,), sde="ve", sigma_min=0.004, sigma_max=0.4, num_score_samples=4), "cpu")
    assert som.noise_std == 0.4
    with torch.no_grad():
        at = som.samples_at(obs, noise, [1.0, 0.5, 0.0])
        assert torch.equal(at[0], noise) and torch.equal(at[2], som.generate(obs, noise))
        # MeanFlow's jump to t = 0.5: z = eps - 0.5 u(eps, 0.5, 1)
        half = torch.full((5, 1), 0.5)
        assert torch.allclose(at[1], noise - 0.5 * som.actor(noise, half, torch.ones_like(half), obs))
    score = som.score_field(obs, noise, torch.full((5, 1), 0.5))
    scale, std = som.diffusion_kernel(torch.tensor([[0.5]]))
    assert score.shape == (5, 2) and float(scale) == 1.0 and float(std) == pytest.approx(0.004 * 100**0.5)


def test_critic_report_reads_a_perfect_critic_and_a_lowered_peak():
    """A stand-in critic that is reward_scale * r (what a perfect critic of one-step episodes holds) gives
    corr 1, every region's peak at its true height and ~0 at the origin; lowering one mode's bump by half
    shows in that region alone."""
    from sombench.train.bandit import critic_report

    task = bandits.TASKS["eight-gaussians"]
    west = np.array([-SQ2, 0.0])

    class Stub:
        half = np.array([bandits.BOX, bandits.BOX])

        def __init__(self, lower_west: bool):
            self.lower_west = lower_west

        def q_values(self, points):
            q = 0.2 * task.reward(torch.as_tensor(points, dtype=torch.float64)).numpy()
            if self.lower_west:
                q = np.where(np.linalg.norm(points - west, axis=1) <= 0.6, 0.5 * q, q)
            return q

    perfect = critic_report(Stub(False), task, 0.2)
    assert perfect["corr"] == pytest.approx(1.0)
    assert perfect["true_peak"] == pytest.approx(0.2, rel=1e-3)
    assert all(v == pytest.approx(1.0, abs=0.01) for v in perfect["region_peak"].values())
    assert abs(perfect["q_origin"]) < 0.01 and perfect["outside_peak"] < 0.9
    lowered = critic_report(Stub(True), task, 0.2)
    assert lowered["region_peak"]["W"] == pytest.approx(0.5, abs=0.01)
    assert all(lowered["region_peak"][k] == pytest.approx(1.0, abs=0.01) for k in "NES")
