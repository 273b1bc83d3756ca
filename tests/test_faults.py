"""Faults that users of other RL tools have met (issue 24), each with an input whose right answer is known.

1. evaluation never changes training (every registered algorithm);
4. actions reach the env in the Box's shape and dtype; spaces the harness cannot handle are refused;
5. seeds in numpy's full SeedSequence range; a set-up failure leaves no run folder.
The others (non-finite returns, stopping, mixed evaluation schedules) live beside the code they guard:
tests/test_table.py, tests/test_stop.py.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import algorithms
from algorithms.common.spaces import ActionScaler
from conftest import assert_one_line_error, invoke, run_path

ALGOS = sorted(n for n in algorithms.load_all() if not n.startswith("test-"))


def small_sets(name: str) -> list[str]:
    """--set pairs that shrink `name` to seconds: 16-unit networks, batch 8 (PPO: a 50-step rollout, so it
    updates within the run), 20 warm-up steps, short reverse processes and ascent loops."""
    fields = {f.name for f in dataclasses.fields(algorithms.get(name).Config)}
    small = {"hidden_sizes": "16,16", "batch_size": "50" if name == "ppo" else "8", "warmup_steps": "20",
             "diffusion_steps": "4", "action_gradient_steps": "3", "policy_iters": "3", "value_iters": "3"}
    return [arg for k, v in small.items() if k in fields for arg in ("--set", f"{k}={v}")]


def run_args(results, name: str, eval_every: int, steps: int = 90, env: str = "Pendulum-v1", extra=()) -> list[str]:
    return ["run", "--algo", name, "--env", env, "--steps", str(steps), "--results", str(results),
            "--eval-every", str(eval_every), "--eval-episodes", "1", "--log-every", "10", "--threads", "1",
            "--device", "cpu", *small_sets(name), *extra]


# -- 1. evaluation never changes training -------------------------------------------------------
@pytest.mark.parametrize("name", ALGOS)
def test_the_evaluation_schedule_changes_neither_training_nor_the_shared_evaluations(name, tmp_path):
    """Two runs that differ only in --eval-every train identically (every train.csv row equal) and
    evaluate identically at the steps both evaluate (30, 60, 90 against 45, 90). Before evaluation drew from
    its own stream, DACER's critic loss parted at the first update after an evaluation."""
    often, seldom = tmp_path / "often", tmp_path / "seldom"
    assert invoke(run_args(often, name, 30)) == 0
    assert invoke(run_args(seldom, name, 45)) == 0
    a, b = run_path(often, "Pendulum-v1", name), run_path(seldom, "Pendulum-v1", name)
    train_a, train_b = (pd.read_csv(r / "train.csv").drop(columns="wall_s") for r in (a, b))
    assert len(train_a) >= 1  # it trained (off-policy: a row every 10 steps from 20; PPO: after its 50-step rollout)
    pd.testing.assert_frame_equal(train_a, train_b)
    eval_a, eval_b = (pd.read_csv(r / "eval.csv").set_index("env_step")["return_mean"] for r in (a, b))
    assert list(eval_a.index) == [30, 60, 90] and list(eval_b.index) == [45, 90]
    assert eval_a[90] == eval_b[90]


# -- 4. action spaces of other shapes and dtypes ------------------------------------------------
class MatrixActionEnv(gym.Env):
    """Actions are 2x2 float64 matrices in a box whose bounds differ per entry; the reward is minus the
    distance of the action to a target matrix, and the env asserts that every action is in its Box."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3, 1), np.float32)
    action_space = gym.spaces.Box(np.array([[-1.0, 0.0], [2.0, -3.0]]), np.array([[1.0, 0.5], [4.0, -1.0]]), (2, 2), np.float64)
    target = np.array([[0.5, 0.25], [3.0, -2.0]])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((3, 1), np.float32), {}

    def step(self, action):
        assert action.shape == (2, 2) and action.dtype == np.float64, (action.shape, action.dtype)
        assert self.action_space.contains(action), action
        return np.zeros((3, 1), np.float32), -float(np.abs(action - self.target).sum()), False, False, {}


gym.register("sombench-test/MatrixAction-v0", entry_point=MatrixActionEnv, max_episode_steps=20)


def test_an_action_box_of_another_shape_and_dtype_runs(tmp_path):
    """A (2, 2) float64 action Box with a (3, 1) observation Box trains and evaluates (it failed at step 0)."""
    assert invoke(run_args(tmp_path, "sac", 40, steps=40, env="sombench-test/MatrixAction-v0")) == 0
    run = run_path(tmp_path, "sombench-test/MatrixAction-v0", "sac")
    assert np.isfinite(pd.read_csv(run / "eval.csv")["return_mean"]).all()


def test_the_scaler_returns_the_box_shape_and_dtype_inside_its_bounds():
    space = MatrixActionEnv.action_space
    scaler = ActionScaler(space.low, space.high, space.shape, space.dtype)
    corners = scaler.to_env(np.array([1.0, -1.0, 1.0, -1.0]))
    np.testing.assert_array_equal(corners, [[1.0, 0.0], [4.0, -3.0]])
    np.testing.assert_array_equal(scaler.to_env(np.zeros(4)), [[0.0, 0.25], [3.0, -2.0]])
    np.testing.assert_allclose(scaler.from_env(scaler.to_env(np.array([0.5, -0.5, 0.25, 0.0]))), [0.5, -0.5, 0.25, 0.0])
    # a float16 Box whose high rounds up when cast: the action stays inside the bound after the cast
    half = gym.spaces.Box(-1.1, 0.7, (1,), np.float16)
    top = ActionScaler(np.array([-1.1]), np.array([0.7]), (1,), np.float16).to_env(np.array([1.0]))
    assert top.dtype == np.float16 and half.contains(top) and float(top[0]) <= 0.7


class DictActionEnv(MatrixActionEnv):
    action_space = gym.spaces.Dict({"a": gym.spaces.Box(-1.0, 1.0, (1,))})


class IntegerBoxEnv(MatrixActionEnv):
    action_space = gym.spaces.Box(0, 3, (2,), np.int64)


class DiscreteObsEnv(MatrixActionEnv):
    observation_space = gym.spaces.Discrete(4)


class UnboundedEnv(MatrixActionEnv):
    action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


for _cls in (DictActionEnv, IntegerBoxEnv, DiscreteObsEnv, UnboundedEnv):
    gym.register(f"sombench-test/{_cls.__name__}-v0", entry_point=_cls, max_episode_steps=20)


@pytest.mark.parametrize("env, needle", [
    ("DictActionEnv", "has a Dict action space"),
    ("IntegerBoxEnv", "action Box of dtype int64"),
    ("DiscreteObsEnv", "has a Discrete observation space"),
    ("UnboundedEnv", "unbounded action space"),
])
def test_spaces_the_harness_cannot_handle_are_refused_up_front(cli, tmp_path, env, needle):
    code, out, err = cli(run_args(tmp_path, "sac", 20, steps=20, env=f"sombench-test/{env}-v0"))
    assert_one_line_error(code, out, err, needle)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


# -- 5. seeds and set-up failures ---------------------------------------------------------------
def test_a_seed_beyond_the_legacy_numpy_range_runs(tmp_path):
    """numpy's legacy global generator takes seeds < 2**32; SeedSequence takes any non-negative int."""
    big = 2**40 + 7
    assert invoke(run_args(tmp_path, "sac", 20, steps=20, extra=("--seed-start", str(big)))) == 0
    assert pd.read_csv(run_path(tmp_path, "Pendulum-v1", "sac", big) / "eval.csv")["env_step"].tolist() == [20]


def test_seeds_that_agree_modulo_2_to_the_32_differ(tmp_path):
    """A seed is not reduced modulo 2**32 anywhere: seeds 3 and 2**32 + 3 give different runs."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke(run_args(a, "sac", 40, steps=40, extra=("--seed-start", "3"))) == 0
    assert invoke(run_args(b, "sac", 40, steps=40, extra=("--seed-start", str(2**32 + 3)))) == 0
    ta = pd.read_csv(run_path(a, "Pendulum-v1", "sac", 3) / "train.csv").drop(columns="wall_s")
    tb = pd.read_csv(run_path(b, "Pendulum-v1", "sac", 2**32 + 3) / "train.csv").drop(columns="wall_s")
    assert not ta.equals(tb)


class SecondInstanceFails(MatrixActionEnv):
    """Checks pass on the first instance (the harness's look at the spaces); the trainer's instances fail, as
    an env whose simulator cannot start in the worker would."""

    made = 0

    def __init__(self):
        type(self).made += 1
        if type(self).made > 1:
            raise RuntimeError("simulator could not start\nsecond line of the env's message")


gym.register("sombench-test/SecondInstanceFails-v0", entry_point=SecondInstanceFails, max_episode_steps=20)


def test_a_failure_while_a_run_is_set_up_leaves_nothing_and_says_what_failed(cli, tmp_path):
    SecondInstanceFails.made = 0
    code, out, err = cli(run_args(tmp_path, "sac", 20, steps=20, env="sombench-test/SecondInstanceFails-v0"))
    assert_one_line_error(code, out, err, "seed 0 could not be set up (cannot create environment 'sombench-test/SecondInstanceFails-v0': simulator could not start)")
    store_files = {p.name for p in tmp_path.iterdir()} if tmp_path.exists() else set()
    assert not (tmp_path / "sombench-test").exists(), store_files  # no env, variant or seed folder left behind


# -- 2. non-finite returns ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def nan_store(tmp_path_factory):
    """Three finished SAC seeds; seed 2's evaluations are then rewritten as an env returning NaN rewards
    would have left them (eval.csv holds what happened: NaN)."""
    root = tmp_path_factory.mktemp("nan")
    assert invoke(run_args(root, "sac", 20, steps=40, extra=("--seeds", "3"))) == 0
    run = run_path(root, "Pendulum-v1", "sac", 2)
    frame = pd.read_csv(run / "eval.csv")
    frame["return_mean"] = np.nan
    frame.to_csv(run / "eval.csv", index=False)
    return root


def test_a_nan_seed_is_left_out_of_its_cell_and_named(nan_store):
    from sombench.analysis import aggregate

    table = aggregate.build_table(aggregate.load_runs(nan_store))
    cell = next(iter(table.cells.values()))
    assert cell.seeds == [0, 1] and np.isfinite(cell.mean) and np.isfinite(cell.ci)
    assert cell.excluded == ["seed 2 final return is nan (an evaluation episode's return was not finite)"]


@pytest.mark.parametrize("fmt", ["rich", "md", "latex", "csv", "json"])
def test_every_table_format_shows_the_cell_and_says_which_seed_it_left_out(cli, nan_store, fmt):
    import json

    code, out, err = cli(["table", "--results", str(nan_store), "--format", fmt])
    assert code == 0, err
    if fmt == "json":
        payload = json.loads(out)  # strict JSON: no NaN tokens
        (cell,) = payload["cells"]
        assert cell["n"] == 2 and cell["mean"] is not None and "seed 2 final return is nan" in cell["excluded"][0]
    else:
        assert "seed 2 final return is nan" in " ".join(out.split())


def test_plot_of_a_store_with_a_nan_seed_draws(cli, nan_store, tmp_path):
    code, out, err = cli(["plot", "--results", str(nan_store), "--out", str(tmp_path / "f.png")])
    assert code == 0, err
    assert (tmp_path / "f.png").stat().st_size > 0


def test_regress_fails_an_entry_with_a_nan_final():
    """A collapsed seed must not pass as missing evidence: two finite finals inside the band and one NaN fail."""
    from sombench.analysis import regress

    entry = regress.Entry(algo="sac", env="Pendulum-v1", steps=100, seeds=3, eval_episodes=1, floor=10.0, sets=())
    outs = [{"seed": s, "status": "done", "final_return": v} for s, v in enumerate([-150.0, -160.0, float("nan")])]
    band = {"finals": [-150.0, -155.0, -160.0], "set": list(entry.sets), "preset": entry.preset,
            "eval_episodes": entry.eval_episodes}
    (row,) = regress.evaluate([entry], {entry.key: []}, {entry.key: outs}, {"suites": {"ci": {entry.key: band}}}, "ci")
    assert row["verdict"] == "failed" and "seed 2: final return nan is not finite" in row["reason"]


# -- 6. seeds evaluated on different schedules --------------------------------------------------
def synthetic(seed: int, steps: list[int], values: list[float]):
    from sombench.analysis.aggregate import Run

    return Run("Pendulum-v1", "sac", seed, "done", 600, pd.DataFrame({"env_step": steps, "return_mean": values}))


def test_seeds_on_different_schedules_share_one_grid_with_values_carried_forward():
    from sombench.analysis.aggregate import common_grid

    runs = [synthetic(0, [200, 400, 600], [1.0, 2.0, 3.0]), synthetic(1, [250, 500, 600], [10.0, 20.0, 30.0]),
            synthetic(2, [300, 600], [100.0, 300.0])]
    steps, values = common_grid(runs)
    assert steps.tolist() == [300, 400, 500, 600]  # the union, from the latest first evaluation (300)
    np.testing.assert_array_equal(values, [[1.0, 2.0, 2.0, 3.0], [10.0, 10.0, 20.0, 30.0], [100.0, 100.0, 100.0, 300.0]])
    same, matrix = common_grid([synthetic(0, [200, 400], [1.0, 2.0]), synthetic(1, [200, 400], [3.0, 4.0])])
    assert same.tolist() == [200, 400] and matrix.tolist() == [[1.0, 2.0], [3.0, 4.0]]  # one schedule: its own steps


def test_a_cell_of_mixed_schedules_is_flagged_in_the_table():
    from sombench.analysis import aggregate
    from sombench.render import tables

    runs = [synthetic(0, [150, 300, 450, 600], [1.0, 2.0, 3.0, 4.0]), synthetic(1, [200, 400, 600], [1.0, 2.0, 5.0])]
    table = aggregate.build_table(runs)
    cell = table.cells[("sac", "Pendulum-v1")]
    assert cell.n == 2 and not cell.excluded and "seeds evaluated on different schedules" in cell.notes[0]
    assert tables.cell_text(table, "sac", "Pendulum-v1").endswith(tables.FLAG)
    assert any("different schedules" in note for note in tables.footnotes(table))
    fine = aggregate.build_table([synthetic(0, [200, 400, 600], [1.0, 2.0, 3.0]), synthetic(1, [200, 400, 600], [1.0, 2.0, 5.0])])
    assert not fine.cells[("sac", "Pendulum-v1")].notes


# -- a plug-in on the bare Algorithm (train_step alone, no update(batch)) in the timing paths ----------------------------
def _uniform_plugin():
    import importlib.util
    import sys
    from pathlib import Path


    path = Path(__file__).resolve().parent.parent / "examples" / "sombench-uniform" / "sombench_uniform.py"
    spec = importlib.util.spec_from_file_location("sombench_uniform_in_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the config's annotations through sys.modules
    spec.loader.exec_module(module)
    return module.UniformRandom


@pytest.fixture
def uniform_plugin():
    """The README's plug-in registered for one test, then removed (other tests enumerate the registry)."""
    import algorithms

    had = algorithms.REGISTRY.get("uniform-random")
    if had is None:
        algorithms.register(_uniform_plugin())
    yield
    if had is None:
        algorithms.REGISTRY.pop("uniform-random", None)


def test_the_readme_plugin_is_projected_and_timed_without_an_update_method(cli, tmp_path, uniform_plugin):
    """The README's plug-in (examples/sombench-uniform) trains through train_step alone: the cost projection that
    `run` consults from ~1,000 steps, `sweep --dry-run` and `latency` must not call update(batch) on it."""
    import math

    from sombench.measure import cost
    from sombench.runs.spec import RunSpec

    spec = RunSpec("uniform-random", "Pendulum-v1", 0, 2_000_000)
    p = cost.project([spec], "cpu", None, measure_env=False)
    assert math.isnan(p.rows[0]["update_ms"]) and math.isnan(p.total_s) and math.isnan(p.paper_total_s)
    assert cost.run_hint([spec], 1, tmp_path / "r") is None
    code, out, err = cli(["latency", "--algos", "uniform-random", "--repeats", "2", "--threads", "1", "--device", "cpu",
                          "--results", str(tmp_path / "r"), "--format", "json"])
    assert code == 0, err
    import json

    row = json.loads(out)["rows"][0]
    assert row["train_ms_mean"] is None and row["infer_ms_mean"] > 0
    code, out, err = cli(["sweep", "--algos", "uniform-random", "--envs", "Pendulum-v1", "--steps", "3000", "--dry-run",
                          "--results", str(tmp_path / "r")])
    assert code == 0, err
    flat = " ".join(out.split())  # the caption wraps at the terminal width
    assert "n/a" in flat and "none of these algorithms is in its Table 2" in flat
