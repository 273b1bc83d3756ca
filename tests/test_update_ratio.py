"""`--updates-per-step R` (the update-to-data ratio, issue 26): the count of updates is exactly floor(R t) by the
t-th env step after warm-up, the runs say so in their identity and variant, a killed run resumes to the same
numbers, the cost projection scales the update time by R, and on-policy PPO refuses it in one line."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TINY_SAC, invoke, tiny_run_args
from killable_env import ENV_ID
from sombench.runs import checkpoint, store

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def _sac(ratio: str):
    import algorithms
    from sombench.runs.spec import resolve_config

    cls = algorithms.get("sac")
    return cls(3, 1, resolve_config("sac", None, [f"updates_per_step={ratio}", "hidden_sizes=8,8", "buffer_size=100"]),
               torch.device("cpu"))


@pytest.mark.parametrize("ratio, first_ten", [("1", [1] * 10), ("0.2", [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
                                              ("2", [2] * 10), ("0.3", [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]),
                                              ("1.5", [1, 2, 1, 2, 1, 2, 1, 2, 1, 2])])
def test_updates_after_each_env_step_add_up_to_floor_r_t(ratio, first_ten):
    algo = _sac(ratio)
    per_step = [algo.updates_after(t) for t in range(1, 1001)]
    assert per_step[:10] == first_ten  # by hand: floor(R t) - floor(R (t - 1))
    r = float(ratio)
    for t in (1, 7, 10, 333, 1000):
        assert sum(per_step[:t]) == math.floor(round(r * t, 9))


def test_a_run_at_ratio_0_2_makes_one_update_per_five_env_steps_and_names_it(tmp_path):
    code = invoke(tiny_run_args(tmp_path, steps=600, extra=("--updates-per-step", "0.2")))
    assert code == 0
    runs = list(tmp_path.glob("Pendulum-v1/*/seed_0"))
    assert len(runs) == 1
    ckpt = checkpoint.load(store.RunFiles(runs[0]).checkpoint)
    assert ckpt["identity"]["algo_config"]["updates_per_step"] == 0.2
    # warm-up 200 (the tiny config), so env steps 200..600 are the 1st..401st after it: floor(0.2 x 401) = 80 updates,
    # each one Adam step of the critic
    critic_opt = ckpt["algo"]["critic_opt"]
    steps = {int(s["step"]) for s in critic_opt["state"].values()}
    assert steps == {80}


def test_the_default_ratio_is_no_variant_and_ppo_refuses_a_ratio(cli, tmp_path):
    code, _, err = cli(["run", "--algo", "ppo", "--env", "Pendulum-v1", "--steps", "100", "--results", str(tmp_path / "r"),
                        "--updates-per-step", "0.2"])
    assert code == 2 and "on-policy" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
    code, _, err = cli(["sweep", "--algos", "ppo", "--envs", "Pendulum-v1", "--steps", "100", "--results", str(tmp_path / "r"),
                        "--updates-per-step", "0.2"])
    assert code == 2 and "is not for ppo" in err and not (tmp_path / "r").exists(), err
    code, _, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "100", "--results", str(tmp_path / "r"),
                        "--updates-per-step", "-1"])
    assert code == 2 and "positive" in err, err
    from sombench.runs.spec import RunSpec

    assert RunSpec("sac", "Pendulum-v1", 0, 100).variant is None
    assert RunSpec("sac", "Pendulum-v1", 0, 100, set_pairs=("updates_per_step=1",)).variant is None


def test_a_killed_run_at_ratio_0_5_resumes_to_the_uninterrupted_numbers(tmp_path):
    steps, extra = 1000, ("--updates-per-step", "0.5")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = tiny_run_args(killed, steps=steps, env=ENV_ID, extra=extra)
    code = f"import killable_env; from sombench.cli.main import main; main({args!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    # 1,250 process steps (evaluation episodes included) end near training step 650, after the checkpoint at 600
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "SOMBENCH_KILL_AFTER_STEPS": "1250"}, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert invoke(tiny_run_args(clean, steps=steps, env=ENV_ID, extra=extra)) == 0
    a = next(killed.glob(f"{ENV_ID}/*/seed_0"))
    b = next(clean.glob(f"{ENV_ID}/*/seed_0"))
    pd.testing.assert_frame_equal(pd.read_csv(a / "train.csv").drop(columns="wall_s"), pd.read_csv(b / "train.csv").drop(columns="wall_s"))
    pd.testing.assert_series_equal(pd.read_csv(a / "eval.csv")["return_mean"], pd.read_csv(b / "eval.csv")["return_mean"])


def test_the_cost_projection_scales_update_time_by_the_ratio():
    from sombench.measure.cost import AlgoTime, run_seconds
    from sombench.runs.spec import RunSpec

    t = AlgoTime(10.0, 1.0, "by hand")  # 10 ms per update, 1 ms per acting call
    for ratio, per_step_ms in (("1", 11.0), ("0.2", 3.0), ("2", 21.0)):
        spec = RunSpec("sac", "Hopper-v4", 0, 130_000, set_pairs=(f"updates_per_step={ratio}",))
        # 100,000 env steps after the 30,000 of warm-up, each with one acting call and R updates; env time 0
        assert run_seconds(spec, t, 0.0) == pytest.approx(100_000 * per_step_ms / 1e3)


def test_sweep_applies_the_ratio_to_the_replay_algorithms_and_notes_ppo():
    from sombench.app import sweep

    plan = sweep.prepare(sweep.SweepRequest(["sac", "ppo"], ["Pendulum-v1"], steps="1000", updates_per_step="0.2"), dry_run=True)
    by_algo = {s.algo: s for s in plan.specs}
    assert by_algo["sac"].config().updates_per_step == 0.2 and by_algo["sac"].variant == "updates_per_step=0.2"
    assert by_algo["ppo"].variant is None
    assert any("ppo" in note and "updates_per_step" in note for note in plan.notes)


def test_ratio_1_is_the_default_runs_folder():
    """R = 1 names no variant: a run given --updates-per-step 1 is the run given nothing (same key, same identity)."""
    from sombench.runs.spec import RunSpec

    plain = RunSpec("sac", "Pendulum-v1", 0, 600, set_pairs=TINY_SAC)
    one = RunSpec("sac", "Pendulum-v1", 0, 600, set_pairs=(*TINY_SAC, "updates_per_step=1"))
    fifth = RunSpec("sac", "Pendulum-v1", 0, 600, set_pairs=(*TINY_SAC, "updates_per_step=0.2"))
    assert plain.key == one.key and plain.identity() == one.identity()
    assert fifth.key != plain.key
