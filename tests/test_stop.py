"""Stopping (issue 24): SIGTERM and SIGHUP stop a command that runs seeds as Ctrl-C does (workers stop,
runs marked `interrupted`, locks released, the rerun line printed); a worker whose parent dies stops too;
SIGINT stops a run even in a process that inherited it ignored (what a shell does to a background job,
the cause of the lost Ctrl-C in a loaded CI run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sombench.runs import store

pytestmark = pytest.mark.slow  # each test trains real seeds in subprocesses for several seconds

ROOT = Path(__file__).resolve().parent.parent
RERUN = "interrupted; rerun the same command to resume"


def run_cmd(results: Path, seeds: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "sombench", "run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200000",
            "--seeds", str(seeds), "--workers", str(workers), "--results", str(results), "--threads", "1",
            "--eval-every", "1000", "--eval-episodes", "1", "--set", "warmup_steps=100", "--set", "hidden_sizes=8"]


def sweep_cmd(results: Path) -> list[str]:
    return [sys.executable, "-m", "sombench", "sweep", "--algos", "sac", "--envs", "Pendulum-v1", "--seeds", "2",
            "--workers", "2", "--steps", "200000", "--results", str(results), "--threads", "1",
            "--set", "warmup_steps=100", "--set", "hidden_sizes=8"]


def start(cmd: list[str], results: Path, seeds: int, preexec=None) -> tuple[subprocess.Popen, list[int]]:
    """Start `cmd` and wait until each seed is training (state.json running, its lock taken); the lock pids."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)
    deadline = time.time() + 180
    while time.time() < deadline:
        locks = sorted(results.glob("Pendulum-v1/*/seed_*/lock"))
        states = [store.read_state(lock.parent) or {} for lock in locks]
        if len(locks) == seeds and all(s.get("state") == "running" for s in states):
            return proc, [json.loads(lock.read_text())["pid"] for lock in locks]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the seeds did not start within 180 s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), f"still running: {[p for p in pids if alive(p)]}"


def assert_interrupted_and_unlocked(results: Path, seeds: int) -> None:
    runs = sorted(results.glob("Pendulum-v1/*/seed_*"))
    assert len(runs) == seeds
    for run in runs:
        assert (store.read_state(run) or {}).get("state") == "interrupted", run
        assert not (run / "lock").exists(), run


def kill_leftovers(proc: subprocess.Popen, pids: list[int]) -> None:
    """After a failed stop test: kill the command and its workers, so that they do not train on (200,000
    steps) beside the tests that follow."""
    for pid in [proc.pid, *pids]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_every_worker_and_print_the_rerun_line(tmp_path, sig, code):
    # The command starts with `sig` at its default disposition: a test suite started under `nohup` passes SIGHUP
    # on ignored, and sombench then keeps it ignored on purpose (a command started under nohup survives a hangup).
    proc, pids = start(run_cmd(tmp_path, 2, 2), tmp_path, 2, preexec=lambda: signal.signal(sig, signal.SIG_DFL))
    try:
        assert os.getpid() not in pids and proc.pid not in pids  # the seeds run in worker processes
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == code, err.decode()
        assert RERUN in err.decode()
        wait_gone(pids)
    except BaseException:
        kill_leftovers(proc, pids)
        raise
    assert_interrupted_and_unlocked(tmp_path, 2)


def test_sigterm_to_a_sweep_stops_its_pool(tmp_path):
    proc, pids = start(sweep_cmd(tmp_path), tmp_path, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143, err.decode()
    wait_gone(pids)
    assert_interrupted_and_unlocked(tmp_path, 2)


def test_workers_stop_when_their_parent_is_killed(tmp_path):
    """SIGKILL cannot be caught: the workers notice that their parent is gone, save and leave."""
    proc, pids = start(run_cmd(tmp_path, 2, 2), tmp_path, 2)
    proc.kill()
    wait_gone(pids)
    proc.communicate(timeout=60)  # the workers held its pipes open
    assert_interrupted_and_unlocked(tmp_path, 2)


def test_sigint_stops_a_run_that_inherited_sigint_ignored(tmp_path):
    """A shell without job control starts `cmd &` with SIGINT ignored; Python then installs no handler, and
    the CI run's Ctrl-C test (SIGINT to such a child) saw its interrupt lost and the run go on to finish."""
    proc, _ = start(run_cmd(tmp_path, 1, 1), tmp_path, 1, preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err.decode()
    assert RERUN in err.decode()
    assert_interrupted_and_unlocked(tmp_path, 1)
