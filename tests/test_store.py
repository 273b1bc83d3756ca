import json
import os
import subprocess
import sys

import pytest

from sombench.runs import store
from sombench.errors import UserError


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "f.json"
    store.atomic_write_json(path, {"a": 1})
    store.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_failed_atomic_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "f.csv"
    store.atomic_write_csv(path, [{"env_step": 1, "x": 0.5}])
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError):
        store.atomic_write_csv(path, [{"env_step": 1, "x": 0.5}, {"env_step": 2, "x": 0.7}])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.csv"]


def test_check_store_accepts_new_empty_and_marked(tmp_path):
    store.check_store(tmp_path / "new" / "deeper")
    store.check_store(tmp_path)
    store.init_store(tmp_path / "s")
    store.check_store(tmp_path / "s")


def test_check_store_refuses_foreign_and_corrupt(tmp_path):
    (tmp_path / "thesis.tex").write_text("x")
    with pytest.raises(UserError, match="not a sombench results store"):
        store.check_store(tmp_path)
    s = tmp_path / "s"
    s.mkdir()
    (s / store.MARKER).write_text("{ not json")
    with pytest.raises(UserError, match="corrupt"):
        store.check_store(s)
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(UserError, match="is a file"):
        store.check_store(f)


def test_lock_refuses_live_holder_and_takes_over_stale(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        store.atomic_write_json(run / "lock", {"pid": child.pid, "host": os.uname().nodename})
        assert store.lock_holder(run)["pid"] == child.pid
        with pytest.raises(store.RunLocked, match=str(child.pid)):
            store.acquire_lock(run)
    finally:
        child.kill()
        child.wait()
    assert store.lock_holder(run) is None  # its process is gone: stale
    store.acquire_lock(run)
    assert store.read_json(run / "lock")["pid"] == os.getpid()
    store.release_lock(run)
    assert not (run / "lock").exists()


def test_effective_state_reports_interrupted_without_a_live_lock(tmp_path):
    store.write_state(tmp_path, state="running", env_step=5, total_steps=10)
    assert store.effective_state(tmp_path)["state"] == "interrupted"
    store.acquire_lock(tmp_path)
    assert store.effective_state(tmp_path)["state"] == "running"
    store.release_lock(tmp_path)


def test_run_folders_of_namespaced_env_ids_are_found(tmp_path):
    """Env ids may hold a namespace (`sombench/EightGaussians-v0`): their runs sit one level deeper."""
    for env, algo, seed in [("Hopper-v4", "sac", 0), ("sombench/EightGaussians-v0", "som", 2)]:
        store.run_dir(tmp_path, env, algo, seed).mkdir(parents=True)
    (tmp_path / "seed_9").mkdir()  # not a run folder: no env and algorithm above it
    keys = [store.run_key(tmp_path, p) for p in store.iter_run_dirs(tmp_path)]
    assert keys == [("Hopper-v4", "sac", "seed_0"), ("sombench/EightGaussians-v0", "som", "seed_2")]
