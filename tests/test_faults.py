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
