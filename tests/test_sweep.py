"""`sombench sweep`: grid expansion into run variants, the three launchers for real (a local process pool,
a local Ray instance on 127.0.0.1, submitit's local executor), skipping finished runs, resuming killed
ones, the dry-run cost projection, and `sombench run`'s one-line projection for long runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import assert_one_line_error, tree

# A SAC so small that a 200-step Pendulum run takes a second or two.
TINY = ("hidden_sizes=8", "batch_size=8", "warmup_steps=50")
LABEL = "sac@batch_size=8+hidden_sizes=8+warmup_steps=50"


def sweep_args(results: Path, *extra: str, steps: int = 200, seeds: int = 2, algos: str = "sac") -> list[str]:
    args = ["sweep", "--algos", algos, "--envs", "Pendulum-v1", "--seeds", str(seeds), "--steps", str(steps),
            "--results", str(results), "--eval-every", "100", "--eval-episodes", "1", "--checkpoint-every", "100",
            "--log-every", "50", "--threads", "1", "--device", "cpu"]
    for pair in TINY:
        args += ["--set", pair]
    return args + list(extra)


def states(results: Path, env: str = "Pendulum-v1") -> dict[str, str]:
    return {f"{p.parent.name}/{p.name}": json.loads((p / "state.json").read_text())["state"]
            for p in sorted((results / env).glob("*/seed_*"))}


def finals(results: Path) -> dict[str, float]:
    return {f"{p.parent.name}/{p.name}": float(pd.read_csv(p / "eval.csv")["return_mean"].iloc[-1])
            for p in sorted((results / "Pendulum-v1").glob("*/seed_*"))}


def test_local_sweep_runs_the_grid_as_variants_and_a_rerun_skips_them(cli, tmp_path):
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, "--grid", "batch_size=8,16", "--workers", "2", seeds=1))
    assert code == 0, err
    assert states(results) == {f"{LABEL}/seed_0": "done",
                               "sac@batch_size=16+hidden_sizes=8+warmup_steps=50/seed_0": "done"}
    assert "2 done" in out
    before = {p: (p / "state.json").read_text() for p in (results / "Pendulum-v1").glob("*/seed_0")}
    code, out, err = cli(sweep_args(results, "--grid", "batch_size=8,16", "--workers", "2", seeds=1))
    assert code == 0 and "2 skipped" in out, out
    assert {p: (p / "state.json").read_text() for p in before} == before  # not even reopened


def test_sweep_and_run_share_runs(cli, tmp_path):
    """A sweep's run is the run `sombench run` makes with the same settings: the sweep skips it."""
    results = tmp_path / "r"
    args = ["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(results), "--eval-every", "100",
            "--eval-episodes", "1", "--checkpoint-every", "100", "--log-every", "50", "--threads", "1", "--device", "cpu"]
    for pair in TINY:
        args += ["--set", pair]
    assert cli(args)[0] == 0
    code, out, err = cli(sweep_args(results, seeds=1))
    assert code == 0 and "1 skipped" in out, out


@pytest.mark.parametrize("args, needle", [
    (["--launcher", "kubernetes"], "'kubernetes' is not one of"),
    (["--grid", "batch_size"], "--grid 'batch_size'"),
    (["--grid", "score_scale=5,10"], "no algorithm of the sweep has a config field 'score_scale'"),
    (["--grid", "batch_size=0,8"], "--grid sac: batch_size must be"),
    (["--grid", "batch_size=8,x"], "--grid sac: batch_size: expected int"),
    (["--time", "10"], "--time is for the slurm launcher"),
    (["--address", "auto"], "--address is for the ray launcher"),
    (["--set", "som:score_scale=5"], "som is not one of the sweep's algorithms"),
    (["--time", "soon", "--launcher", "slurm"], "--time 'soon'"),
])
def test_bad_sweep_input_is_one_line_and_writes_nothing(cli, tmp_path, args, needle):
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, *args))
    assert_one_line_error(code, out, err, needle)
    assert tree(results) == []


def test_an_empty_grid_is_refused(cli, tmp_path):
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, algos=""))
    assert_one_line_error(code, out, err, "--algos needs at least one algorithm name")
    assert tree(results) == []


def test_a_missing_extra_names_it(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    monkeypatch.setitem(sys.modules, "submitit", None)
    code, out, err = cli(sweep_args(tmp_path / "r", "--launcher", "ray"))
    assert_one_line_error(code, out, err, "pip install -e '.[ray]'")
    code, out, err = cli(sweep_args(tmp_path / "r", "--launcher", "slurm"))
    assert_one_line_error(code, out, err, "pip install -e '.[slurm]'")
    assert tree(tmp_path / "r") == []


def test_ray_sweep_on_a_local_instance(cli, tmp_path):
    """A real local Ray instance (127.0.0.1, no dashboard, 2 CPUs), one task per run; then a rerun skips both."""
    pytest.importorskip("ray")
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, "--launcher", "ray", "--workers", "2", "--cpus-per-run", "1"))
    assert code == 0, out + err
    assert states(results) == {f"{LABEL}/seed_0": "done", f"{LABEL}/seed_1": "done"}
    import ray

    assert not ray.is_initialized()  # the sweep shut its instance down
    local = tmp_path / "local"
    assert cli(sweep_args(local, "--workers", "1"))[0] == 0
    assert finals(results) == finals(local)  # same runner, same seeds: same numbers as the local pool
    code, out, err = cli(sweep_args(results, "--launcher", "ray", "--workers", "2"))
    assert code == 0 and "2 skipped" in out, out


def test_slurm_sweep_on_submitits_local_executor(cli, tmp_path):
    """No Slurm here: submitit's AutoExecutor falls back to its local executor, which runs each job as a process."""
    pytest.importorskip("submitit")
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, "--launcher", "slurm", "--workers", "2", "--time", "10"))
    assert code == 0, out + err
    assert "submitit's local executor" in out
    assert states(results) == {f"{LABEL}/seed_0": "done", f"{LABEL}/seed_1": "done"}
    assert list((results / ".submitit").glob("*/*_log.out"))  # the jobs' logs
    code, out, err = cli(["status", "--results", str(results), "--format", "json"])
    assert code == 0 and len(json.loads(out)) == 2  # the submitit folder is not mistaken for runs


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_a_killed_sweep_finishes_on_the_rerun(tmp_path, launcher):
    """SIGKILL the whole sweep (driver and workers, as a preemption would) once one run has finished and
    another has a checkpoint; the rerun skips the finished run, resumes the other and ends with the same
    returns as an uninterrupted sweep."""
    if launcher == "slurm":
        pytest.importorskip("submitit")
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "sombench", *sweep_args(results, "--launcher", launcher, "--workers", "1", steps=1500)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    first, second = results / "Pendulum-v1" / LABEL / "seed_0", results / "Pendulum-v1" / LABEL / "seed_1"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = (first / "state.json").exists() and json.loads((first / "state.json").read_text())["state"] == "done"
            if done and (second / "checkpoint.pt").exists():
                break
            assert proc.poll() is None, "the sweep ended before it was killed"
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint of the second run in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    from sombench.runs import store

    for _ in range(150):  # SIGKILLed workers linger as zombies until init reaps them: wait until the lock is stale
        holder = store.lock_holder(second)
        if holder is None:
            break
        if _ == 25:  # a job its executor started in a session of its own outlives killpg: a preemption kills it too
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(holder.get("pid", -1)), signal.SIGKILL)
        time.sleep(0.2)
    finished = (first / "state.json").read_text()
    assert json.loads((second / "state.json").read_text())["state"] == "running"
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 done, 1 skipped" in rerun.stdout, rerun.stdout
    assert (first / "state.json").read_text() == finished
    clean = tmp_path / "clean"
    assert subprocess.run([sys.executable, "-m", "sombench", *sweep_args(clean, "--workers", "1", steps=1500)],
                          capture_output=True, env=env, timeout=300).returncode == 0
    assert finals(results) == finals(clean)


def test_dry_run_prints_the_grid_and_a_projection_and_runs_nothing(cli, tmp_path):
    results = tmp_path / "r"
    code, out, err = cli(sweep_args(results, "--dry-run", "--grid", "batch_size=8,16", "--algos", "sac,mfp", steps=100_000))
    assert code == 0, err
    assert "sweep grid: 8 runs" in out and "cost projection on cpu" in out
    assert "mfp@batch_size=16+hidden_sizes=8+warmup_steps=50" in out.replace("\n", "").replace("│", "").replace(" ", "") or "mfp@" in out
    assert "Paper GPU (RTX 4090, Table 2)" in " ".join(out.split())
    assert tree(results) == []


def test_projection_uses_the_latest_latency_csv_and_paper_times(tmp_path):
    from sombench.measure import cost
    from sombench.app.common import Schedule, build_specs

    latency = tmp_path / "latency"
    latency.mkdir(parents=True)
    row = "algo,train_ms_mean,infer_ms_mean\nsom,{t},1.0\n"
    (latency / "HalfCheetah-v4_cpu_20250101T000000Z.csv").write_text(row.format(t=9999.0))
    (latency / "HalfCheetah-v4_cpu_20260101T000000Z.csv").write_text(row.format(t=599.0))  # the latest
    (latency / "HalfCheetah-v4_cuda_20270101T000000Z.csv").write_text(row.format(t=1.0))  # another device
    specs = build_specs("som", "Hopper-v4", [0, 1], 1_000_000, schedule=Schedule(), device="cpu", threads=1, sets=[], preset=None,
                        tag=None)
    p = cost.project(specs, "cpu", tmp_path)
    (r,) = p.rows
    assert r["update_ms"] == 599.0 and "20260101" in r["source"]
    learning = 1_000_000 - 100_000  # SOM's warm-up takes no update
    assert p.total_s == pytest.approx(2 * (learning * 0.6 + 1_000_000 * r["env_ms"] / 1e3))
    assert p.paper_total_s == pytest.approx(2 * (learning * (6.512 + 0.218) + 1_000_000 * r["env_ms"]) / 1e3)
    hint = cost.run_hint(specs, 1, tmp_path)
    assert hint.startswith("projected (updates and acting alone):") and "use a GPU" in hint
    small = build_specs("som", "Hopper-v4", [0], 1000, schedule=Schedule(500, 1, 500, 100), device="cpu", threads=1, sets=[],
                        preset=None, tag=None)
    assert cost.run_hint(small, 1, tmp_path) is None  # under the bound: nothing measured, nothing printed


def test_projection_measures_a_non_default_config_at_the_runs_own_env_shapes(tmp_path, monkeypatch):
    """Timing a non-default config on the spot builds the algorithm with the run's env's shapes: a
    Pendulum run must not need MuJoCo (HalfCheetah's shapes) just to print its projection."""
    from sombench import envs
    from sombench.measure import cost
    from sombench.app.common import Schedule, build_specs

    described = []
    real = envs.describe_env
    monkeypatch.setattr(envs, "describe_env", lambda env_id: described.append(env_id) or real(env_id))  # a spy
    specs = build_specs("sac", "Pendulum-v1", [0], 1_000_000, schedule=Schedule(), device="cpu", threads=1,
                        sets=["batch_size=32", "hidden_sizes=16,16"], preset=None, tag=None)
    p = cost.project(specs, "cpu", tmp_path, measure_env=False)
    (r,) = p.rows
    assert r["source"] == "measured now" and r["update_ms"] > 0
    assert described and set(described) == {"Pendulum-v1"}, described


def test_plot_by_draws_a_grid_keys_curves_side_by_side(cli, tmp_path):
    results = tmp_path / "r"
    assert cli(sweep_args(results, "--grid", "actor_lr=1e-3,3e-4", seeds=1))[0] == 0
    code, out, err = cli(["plot", "--results", str(results), "--by", "actor_lr", "--out", str(tmp_path / "by.png")])
    assert code == 0, err
    assert (tmp_path / "by.png").stat().st_size > 10_000
    code, out, err = cli(["plot", "--results", str(results), "--by", "score_scale", "--out", str(tmp_path / "x.png")])
    assert_one_line_error(code, out, err, "no run in")


def test_the_run_hint_times_updates_at_the_runs_own_thread_count(tmp_path, monkeypatch):
    """`sombench run` measures its cost hint (and `sombench sweep` its projection: measure/cost.py) with the runs' `--threads`, and
    leaves torch's thread count as it was. At torch's default (every core) on a busy 2-core machine one SOM
    update timed 1,327 ms against 45 ms at the run's 1 thread: a 20 h hint for a 1 h run."""
    import torch

    from sombench.app import run as run_app
    from sombench.measure import cost

    seen = []
    real = cost.measure_algo
    monkeypatch.setattr(cost, "measure_algo", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))  # a spy
    before = torch.get_num_threads()
    want = 2 if before == 1 else 1
    req = run_app.RunRequest("sac", "Pendulum-v1", steps=10_000_000, results=tmp_path / "r", device="cpu", threads=want,
                             sets=["batch_size=32", "hidden_sizes=16,16"])
    plan = run_app.prepare(req)
    assert plan.hint is not None and seen == [want]
    assert torch.get_num_threads() == before
