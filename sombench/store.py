"""The results store: one folder per run, written only by atomic replacement.

    <store>/.sombench-store                 marker: this folder is a sombench store (format version)
    <store>/<env>/<algo>/seed_<k>/
        config.json     resolved config, command line, versions, git commit, hardware
        eval.csv        env_step, return_mean, return_std, episodes, wall_s
        train.csv       env_step and the algorithm's metrics (averaged over each logging window)
        checkpoint.pt   networks, optimizers, replay buffer, RNG states, counters
        state.json      running | done | failed | interrupted, progress, last return, reason
        lock            pid and host of the process running this seed, while it runs

Every file is written to a temporary sibling and renamed over the target, so a reader (or a run
killed at any instant) sees either the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sombench.errors import UserError

MARKER = ".sombench-store"
FORMAT = "sombench-results"
VERSION = 1
EVAL_COLUMNS = ["env_step", "return_mean", "return_std", "episodes", "wall_s"]


# -- atomic writes ------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary sibling, fsync it, and rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp creates 0600; results are meant to be shared like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def atomic_write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    frame = pd.DataFrame(rows, columns=columns)
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def atomic_torch_save(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# -- the store ----------------------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def check_store(root: Path) -> None:
    """Raise UserError unless `root` is a sombench store, an empty folder, or can be created."""
    root = Path(root)
    if root.exists():
        if not root.is_dir():
            raise UserError(f"results path {root} is a file, not a folder; pass --results DIR")
        marker = root / MARKER
        if marker.exists():
            try:
                info = read_json(marker)
                ok = isinstance(info, dict) and info.get("format") == FORMAT
            except (OSError, ValueError):
                ok = False
            if not ok:
                raise UserError(f"{marker} is corrupt; restore it or choose another --results folder")
            if info.get("version", 0) > VERSION:
                raise UserError(f"{root} was written by a newer sombench (store version {info['version']}); upgrade sombench")
        elif any(root.iterdir()):
            raise UserError(f"{root} is not a sombench results store (no {MARKER}); choose an empty or new --results folder")
        target = root
    else:
        target = _nearest_existing(root)
        if not target.is_dir():
            raise UserError(f"cannot create results folder {root}: {target} is not a folder")
    try:  # a real probe: permission bits say nothing to root, nor of read-only or special filesystems
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError:
        raise UserError(f"results folder {root} is not writable; choose another with --results DIR") from None


def init_store(root: Path) -> None:
    """Create the store and its marker (after `check_store` passed)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / MARKER).exists():
        atomic_write_json(root / MARKER, {"format": FORMAT, "version": VERSION})


def run_dir(root: Path, env_id: str, algo: str, seed: int) -> Path:
    return Path(root) / env_id / algo / f"seed_{seed}"


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every run folder in the store, sorted. Env ids may hold a namespace (`sombench/EightGaussians-v0`),
    so a run folder sits two or more levels deep: <env, possibly with slashes>/<algo>/seed_<k>."""
    yield from sorted(p for p in Path(root).glob("**/seed_*") if p.is_dir() and len(p.relative_to(root).parts) >= 3)


def run_key(root: Path, run: Path) -> tuple[str, str, str]:
    """(env id, algorithm, seed folder name) of a run folder: the inverse of `run_dir`."""
    parts = run.relative_to(root).parts
    return "/".join(parts[:-2]), parts[-2], parts[-1]


# -- locks --------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(run: Path) -> dict[str, Any] | None:
    """The live owner of `run`'s lock, or None if unlocked or the owner is dead (stale lock)."""
    try:
        info = read_json(run / "lock")
    except (OSError, ValueError):
        return None
    if info.get("host") != socket.gethostname():
        return info  # cannot check a process on another host: assume it lives
    return info if _pid_alive(int(info.get("pid", -1))) else None


class RunLocked(Exception):
    """Another live process runs this seed."""


def acquire_lock(run: Path) -> None:
    """Take `run`'s lock for this process, taking over a stale one; RunLocked if it is held."""
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = run / "lock"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return
    except FileExistsError:
        pass
    holder = lock_holder(run)
    if holder is not None and holder.get("pid") != os.getpid():
        raise RunLocked(f"{run} is being run by pid {holder.get('pid')} on {holder.get('host')}; wait for it or stop it")
    atomic_write_json(path, me)  # stale: its process is gone


def remove_stale_temps(run: Path) -> None:
    """Delete temporary files left by a writer killed mid-write (their targets are intact)."""
    for tmp in run.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def release_lock(run: Path) -> None:
    try:
        if read_json(run / "lock").get("pid") == os.getpid():
            os.unlink(run / "lock")
    except (OSError, ValueError):
        pass


# -- run state ----------------------------------------------------------------------------------
def write_state(run: Path, **fields: Any) -> None:
    fields["updated"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(run / "state.json", fields)


def read_state(run: Path) -> dict[str, Any] | None:
    try:
        return read_json(run / "state.json")
    except (OSError, ValueError):
        return None


def effective_state(run: Path) -> dict[str, Any]:
    """state.json, with 'running' turned into 'interrupted' when no live process holds the lock."""
    state = read_state(run)
    if state is None:
        return {"state": "unknown", "reason": "state.json missing or unreadable"}
    if state.get("state") == "running" and lock_holder(run) is None:
        state = {**state, "state": "interrupted"}
    return state
