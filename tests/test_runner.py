"""Runner semantics: determinism, crash-resume (SIGKILL), bootstrapping, non-finite losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from conftest import invoke, tiny_run_args, run_path
from killable_env import ENV_ID
from sombench.runs import checkpoint, store
from sombench.runs.spec import RunSpec
from sombench.train.trainer import run_seed

ROOT = Path(__file__).resolve().parent.parent


def read(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name)


def test_same_seed_same_numbers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke(tiny_run_args(a, steps=600)) == 0
    assert invoke(tiny_run_args(b, steps=600)) == 0
    ra, rb = run_path(a, "Pendulum-v1", "sac", 0), run_path(b, "Pendulum-v1", "sac", 0)
    pd.testing.assert_series_equal(read(ra, "eval.csv")["return_mean"], read(rb, "eval.csv")["return_mean"])
    ta, tb = read(ra, "train.csv").drop(columns="wall_s"), read(rb, "train.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(ta, tb)
    assert list(read(ra, "eval.csv")["env_step"]) == [200, 400, 600]


def test_different_seeds_differ(tmp_path):
    assert invoke(tiny_run_args(tmp_path, steps=400, seeds=2)) == 0
    r0 = read(run_path(tmp_path, "Pendulum-v1", "sac", 0), "eval.csv")["return_mean"]
    r1 = read(run_path(tmp_path, "Pendulum-v1", "sac", 1), "eval.csv")["return_mean"]
    assert not np.allclose(r0, r1)


def test_sigkill_resume_matches_uninterrupted_run(tmp_path):
    """SIGKILL a run twice mid-episode, rerun it to the end, and compare with an uninterrupted run.

    The env kills its own process after a set number of steps (tests/killable_env.py), so the
    crashes land at known steps: after the checkpoint at 600 (killed near step 650 of training)
    and, on resume, after the checkpoint at 1,000.
    """
    steps = 1400
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = tiny_run_args(killed, steps=steps, env=ENV_ID)
    code = f"import killable_env; from sombench.cli.main import main; main({args!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    checkpoints = []
    # Steps count evaluation too (1 episode of 200 every 200 training steps): 1,250 process steps end
    # at training step ~650, and 850 steps after resuming from 600 end at training step ~1,050.
    for kill_after in (1250, 850):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "SOMBENCH_KILL_AFTER_STEPS": str(kill_after)},
                              capture_output=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        run = run_path(killed, ENV_ID, "sac", 0)
        assert store.effective_state(run)["state"] == "interrupted"
        checkpoints.append(int(checkpoint.load(store.RunFiles(run).checkpoint)["step"]))
        for name in ("eval.csv", "train.csv"):  # rows past the checkpoint may be there; never a torn file
            assert read(run, name)["env_step"].is_unique
    assert checkpoints == [600, 1000]
    assert (run / "lock").exists()  # left behind by the killed process: stale, must be taken over
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert invoke(tiny_run_args(clean, steps=steps, env=ENV_ID)) == 0

    for name in ("eval.csv", "train.csv"):
        frame = read(run, name)
        assert frame["env_step"].is_monotonic_increasing and frame["env_step"].is_unique, name
    ev = read(run, "eval.csv")
    assert list(ev["env_step"]) == list(range(200, steps + 1, 200))
    assert list(read(run, "train.csv")["env_step"]) == list(range(200, steps + 1, 100))
    assert store.read_state(run)["state"] == "done"
    ref = read(run_path(clean, ENV_ID, "sac", 0), "eval.csv")
    pd.testing.assert_series_equal(ev["return_mean"], ref["return_mean"])
    assert not list(run.glob(".*tmp"))  # no temporary file survives


# Corridor (SombenchCorridor-v0) and the test-random algorithm live in conftest.py.


def test_buffer_flags_termination_not_truncation(tmp_path):
    spec = RunSpec(algo="test-random", env_id="SombenchCorridor-v0", seed=3, total_steps=400, eval_every=400, eval_episodes=1)
    assert run_seed(spec, tmp_path)["status"] == "done"
    buf = checkpoint.load(store.RunFiles(run_path(tmp_path, "SombenchCorridor-v0", "test-random", 3)).checkpoint
                          )["algo"]["buffer"]["storage"]
    x_next = buf["next_obs"][:, 0]
    expected = (x_next.abs() >= 1.0).float()
    torch.testing.assert_close(buf["terminated"], expected)
    assert 0 < expected.sum() < 400  # some episodes terminated, others were truncated at 8 steps
    # actions are stored in [-1, 1] (the env saw them scaled to its [-0.5, 0.5] box)
    torch.testing.assert_close(buf["next_obs"][:, 0] - buf["obs"][:, 0], 0.5 * buf["action"][:, 0], atol=1e-5, rtol=0)
    assert buf["action"].abs().max() <= 1.0 and buf["action"].abs().max() > 0.9


def test_nan_loss_fails_that_seed_and_others_go_on(cli, tmp_path):
    code, out, _ = cli(["run", "--algo", "test-random", "--env", "SombenchCorridor-v0", "--steps", "300", "--seeds", "3",
                        "--results", str(tmp_path), "--eval-every", "100", "--eval-episodes", "1", "--log-every", "50",
                        "--set", "warmup_steps=20", "--set", "nan_seed=1"])
    assert code == 1
    states = {s: store.read_state(run_path(tmp_path, "SombenchCorridor-v0", "test-random", s)) for s in range(3)}
    assert states[1]["state"] == "failed" and "non-finite loss by env step 50" in states[1]["reason"]
    assert states[0]["state"] == states[2]["state"] == "done"
    code, out, _ = cli(["status", "--results", str(tmp_path), "--format", "json"])
    failed = [r for r in json.loads(out) if r["state"] == "failed"]
    assert [(r["seed"], r["reason"]) for r in failed] == [(1, "non-finite loss by env step 50")]


def test_warmup_actions_are_uniform(tmp_path):
    spec = RunSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=2000, eval_every=2000, eval_episodes=1,
                   set_pairs=("hidden_sizes=8", "batch_size=8", "warmup_steps=2000"))
    assert run_seed(spec, tmp_path)["status"] == "done"
    actions = checkpoint.load(store.RunFiles(run_path(tmp_path, "Pendulum-v1", "sac", 0)).checkpoint
                              )["algo"]["buffer"]["storage"]["action"].numpy().ravel()
    counts, _ = np.histogram(actions, bins=4, range=(-1, 1))
    assert actions.min() >= -1 and actions.max() <= 1
    assert np.all(np.abs(counts - 500) < 100)


def test_config_records_provenance(tmp_path):
    assert invoke(tiny_run_args(tmp_path, steps=200)) == 0
    cfg = store.read_json(run_path(tmp_path, "Pendulum-v1", "sac", 0) / "config.json")
    assert cfg["run"]["algo_config"]["hidden_sizes"] == [32, 32]
    assert cfg["run"]["algo_config"]["actor_lr"] == 3e-4
    prov = cfg["provenance"]
    assert {"torch", "gymnasium", "mujoco", "numpy", "python"} <= set(prov["versions"])
    assert prov["versions"]["mujoco"].startswith("2.3")
    assert "commit" in prov["git"] and prov["hardware"]["cpu"] and prov["hardware"]["torch_threads"] == 1
    assert prov["command"][:4] == ["sombench", "run", "--algo", "sac"]
    assert cfg["budget_factor"] == 1


def test_config_records_the_budget_factor_of_the_run(tmp_path):
    """config.json holds the algorithm's budget factor for the env at the time of the run (PPO trains 5x on
    Reacher-v4), so readers of the store never import the algorithms to learn it."""
    spec = RunSpec(algo="ppo", env_id="Reacher-v4", seed=0, total_steps=50, eval_every=50, eval_episodes=1,
                   set_pairs=("hidden_sizes=8", "batch_size=50", "policy_iters=1", "value_iters=1"))
    assert run_seed(spec, tmp_path)["status"] == "done"
    assert store.read_json(store.RunFiles(run_path(tmp_path, "Reacher-v4", "ppo", 0)).config)["budget_factor"] == 5


def test_the_harness_gives_the_algorithm_the_runs_length(tmp_path):
    """Schedules that span a run (QVPO's entropy decay over the run, as its reference) read `run_steps`."""
    from sombench.train.trainer import Trainer

    spec = RunSpec(algo="qvpo", env_id="Pendulum-v1", seed=0, total_steps=1234, set_pairs=("hidden_sizes=8,8",))
    trainer = Trainer(spec, tmp_path, lambda event: None)
    try:
        assert trainer.algo.run_steps == 1234
        trainer.algo.updates = 617 - trainer.algo.config.warmup_steps  # half the run: the weight is halfway down
        assert abs(trainer.algo.current_entropy_weight() - 0.01) < 1e-9
    finally:
        trainer.close()
