"""The results store: one folder per run, written only by atomic replacement.

    <store>/.sombench-store                 marker: this folder is a sombench store (format version)
    <store>/<env>/<algo>[@<variant>]/seed_<k>/
        config.json     resolved config, command line, versions, git commit, hardware
        eval.csv        env_step, return_mean, return_std, episodes, wall_s
        train.csv       env_step and the algorithm's metrics (averaged over each logging window)
        episodes.csv    env_step, env, return, length: one row per finished training episode (exploring policy)
        checkpoint.pt   networks, optimizers, replay buffer, RNG states, counters
        state.json      running | done | failed | interrupted (runs.outcome.RunState), progress, last return, reason
        lock            pid and host of the process running this seed, while it runs
        tensorboard/    TensorBoard event files (`--track tensorboard`)
        wandb/          W&B's run folders (`--track wandb`; offline runs stay here until `wandb sync`)
        tracked.json    the last env step each tracker was sent, and the W&B run id (`--track`)

Every file is written to a temporary sibling and renamed over the target, so a reader (or a run
killed at any instant) sees either the old or the new file, never half of one.

A run is identified by env, algorithm, variant and seed. The variant names a config other than the
algorithm's defaults (`som@score_scale=10`, or a `--tag`); no variant means the defaults (or the
preset its command applies, e.g. `sombench bandit`'s). `Store` owns the layout, the iteration over
runs (typed `RunRecord`s), the checks that a folder is a store and a run is readable, and locking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from sombench.errors import InvalidValue, UserError
from sombench.runs.outcome import RunState

MARKER = ".sombench-store"
FORMAT = "sombench-results"
VERSION = 1
EVAL_COLUMNS = ["env_step", "return_mean", "return_std", "episodes", "wall_s"]
EPISODE_COLUMNS = ["env_step", "env", "return", "length"]
"""episodes.csv: the env step (of the run, 1-based) at which a training env's episode ended, which of the N envs
(0-based), its undiscounted return and its length in env steps."""


# -- atomic writes ------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""The mode every result file gets (what the umask allows of rw-rw-rw-), so results are shared like any file."""


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temporary sibling (`.<name>.*.tmp`, mode FILE_MODE), flushed,
    fsynced and renamed over `path` when the block ends; removed, leaving `path` as it was, if the block
    raises (KeyboardInterrupt included). A reader sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp creates 0600; results are meant to be shared like any file
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def atomic_write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    frame = pd.DataFrame(rows, columns=columns)
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# -- the store ----------------------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _read_marker(marker: Path) -> dict[str, Any] | None:
    try:
        info = read_json(marker)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("format") == FORMAT else None


def _foreign_entries(root: Path) -> list[Path]:
    """Entries that no sombench process writes: anything but the marker and our temporary files. A
    second process starting beside the first may see the first's marker still as a temporary file."""
    return [p for p in root.iterdir() if p.name != MARKER and not (p.name.startswith(f".{MARKER}.") and p.name.endswith(".tmp"))]


def check_store(root: Path, writable: bool = True) -> None:
    """Raise InvalidValue (field `results`) unless `root` is a sombench store, an empty folder, or can be
    created; with `writable`, unless this process can also write there."""
    root = Path(root)
    if root.exists():
        if not root.is_dir():
            raise InvalidValue("results", f"{root} is a file, not a folder; give a folder")
        marker = root / MARKER
        if marker.exists():
            info = _read_marker(marker)
            if info is None:
                raise InvalidValue("results", f"{root}: its {MARKER} is corrupt; restore it or choose another folder")
            if info.get("version", 0) > VERSION:
                raise UserError(f"{root} was written by a newer sombench (store version {info['version']}); upgrade sombench")
        elif _foreign_entries(root):
            raise InvalidValue("results", f"{root} is not a sombench results store (no {MARKER}); choose an empty or new folder")
        target = root
    else:
        target = _nearest_existing(root)
        if not target.is_dir():
            raise InvalidValue("results", f"{root} cannot be created: {target} is not a folder")
    if writable and not _writable(target):
        raise InvalidValue("results", f"{root} is not writable; choose another folder")


def _writable(folder: Path) -> bool:
    try:  # a real probe: permission bits say nothing to root, nor of read-only or special filesystems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def init_store(root: Path) -> None:
    """Create the store and its marker (after `check_store` passed)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / MARKER).exists():
        atomic_write_json(root / MARKER, {"format": FORMAT, "version": VERSION})


def algo_folder(algo: str, variant: str | None = None) -> str:
    """The folder of an algorithm's runs: `algo`, or `algo@variant`."""
    return f"{algo}@{variant}" if variant else algo


def run_dir(root: Path, env_id: str, algo: str, seed: int, variant: str | None = None) -> Path:
    return Path(root) / env_id / algo_folder(algo, variant) / f"seed_{seed}"


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every run folder in the store, sorted. Env ids may hold a namespace (`sombench/EightGaussians-v0`),
    so a run folder sits two or more levels deep: <env, possibly with slashes>/<algo>/seed_<k>."""
    yield from sorted(p for p in Path(root).glob("**/seed_*") if p.is_dir() and len(p.relative_to(root).parts) >= 3)


def run_key(root: Path, run: Path) -> tuple[str, str, str]:
    """(env id, algorithm folder, seed folder name) of a run folder: the inverse of `run_dir`."""
    parts = run.relative_to(root).parts
    return "/".join(parts[:-2]), parts[-2], parts[-1]


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The files of one run folder (see the module docstring): the only place their names are spelled."""

    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def eval(self) -> Path:
        return self.dir / "eval.csv"

    @property
    def train(self) -> Path:
        return self.dir / "train.csv"

    @property
    def episodes(self) -> Path:
        return self.dir / "episodes.csv"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"

    @property
    def lock(self) -> Path:
        return self.dir / "lock"

    # what `--track` adds (sombench/train/tracking.py)
    @property
    def tensorboard(self) -> Path:
        return self.dir / "tensorboard"

    @property
    def wandb(self) -> Path:
        """W&B's folder (wandb.init(dir=<run folder>) writes it): one `offline-run-*` or `run-*` folder per session."""
        return self.dir / "wandb"

    @property
    def tracked(self) -> Path:
        return self.dir / "tracked.json"

    # what `sombench analyze` writes into its output folder (sombench/app/analyze.py); `dir` is that folder here
    @property
    def analysis_box(self) -> Path:
        return self.dir / "fig3_q_boxplot.png"

    @property
    def analysis_tsne(self) -> Path:
        return self.dir / "tsne_q_landscape.png"

    @property
    def analysis_data(self) -> Path:
        return self.dir / "policy_analysis.json"

    # what `sombench bandit` adds to a run folder (sombench/app/bandit.py)
    @property
    def bandit_modes(self) -> Path:
        return self.dir / "bandit_modes.json"

    @property
    def bandit_arrows(self) -> Path:
        return self.dir / "bandit_arrows.png"

    @property
    def bandit_score_field(self) -> Path:
        return self.dir / "bandit_score_field.png"

    @property
    def bandit_perturbation(self) -> Path:
        return self.dir / "bandit_perturbation.png"


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


def make_run_dir(run: Path) -> Path | None:
    """Create `run` (and its missing parents); the topmost folder this call created, or None if `run`
    existed. `remove_new_run` takes exactly that much away again."""
    top = None
    for folder in reversed([run, *run.parents]):
        if not folder.exists():
            top = folder
            break
    run.mkdir(parents=True, exist_ok=True)
    return top


def remove_new_run(run: Path, top: Path | None) -> None:
    """Undo `make_run_dir` for a run whose set-up failed: delete `run`'s files (its lock and temps: nothing
    else is written before set-up ends) and the folders created for it, down from `top`."""
    if top is None:
        return
    shutil.rmtree(top, ignore_errors=True)


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
        return {"state": RunState.UNKNOWN, "reason": "state.json missing or unreadable"}
    if state.get("state") == RunState.RUNNING and lock_holder(run) is None:
        state = {**state, "state": RunState.INTERRUPTED}
    return state


# -- reading runs -------------------------------------------------------------------------------
class DamagedRun(Exception):
    """A run file that exists but cannot be read as sombench wrote it (the message says which and why)."""


def read_eval(run: Path) -> pd.DataFrame:
    """The run's eval.csv (empty frame if none yet); DamagedRun if its header or values are not ours."""
    return _read_table(run / "eval.csv", EVAL_COLUMNS)


def read_episodes(run: Path) -> pd.DataFrame:
    """The run's episodes.csv (empty frame if none: runs stored before it existed have none); DamagedRun if not ours."""
    return _read_table(RunFiles(run).episodes, EPISODE_COLUMNS)


def read_train(run: Path) -> pd.DataFrame:
    """The run's train.csv (empty frame if none yet); DamagedRun if it is not a table with env_step."""
    return _read_table(run / "train.csv", ["env_step"])


def _read_table(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.exists() or not path.read_bytes().strip():
        return pd.DataFrame(columns=required)  # not written yet (or, before this fix, a lone newline)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DamagedRun(f"{path.name} is unreadable ({type(exc).__name__})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DamagedRun(f"{path.name} lacks column(s) {', '.join(missing)}")
    for column in frame.columns if len(frame) else ():  # a header alone reads as text columns
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DamagedRun(f"{path.name} has non-numeric values in column {column}")
    if len(frame) and not frame["env_step"].is_monotonic_increasing:
        raise DamagedRun(f"{path.name} has env_step values out of order")
    return frame


@dataclasses.dataclass(frozen=True)
class RunKey:
    """What identifies a run in the store."""

    env: str
    algo: str
    variant: str | None
    seed: int

    @property
    def label(self) -> str:
        """`algo` or `algo@variant`: the row name in tables and plots."""
        return algo_folder(self.algo, self.variant)


@dataclasses.dataclass
class RunRecord:
    """One run folder as the readers see it: its key, effective state and config, and whether it is damaged."""

    key: RunKey
    path: Path
    state: dict[str, Any]
    config: dict[str, Any] | None
    damage: str | None = None
    """Why this run cannot be read (it is then listed and flagged, never averaged in)."""
    _evals: pd.DataFrame | None = dataclasses.field(default=None, repr=False)

    @property
    def status(self) -> RunState | str:
        """The run's RunState (`damaged` when a file is unreadable); a state.json word sombench does not
        write is passed through as its string."""
        if self.damage:
            return RunState.DAMAGED
        word = str(self.state.get("state", RunState.UNKNOWN))
        try:
            return RunState(word)
        except ValueError:
            return word

    @property
    def budget_factor(self) -> int | None:
        """The multiple of its env's budget the run was made at (config.json's `budget_factor`, written
        by the trainer since it records it; PPO trains 5x longer on three tasks), None where the record
        predates the field or has no config.json."""
        value = (self.config or {}).get("budget_factor")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None

    @property
    def total_steps(self) -> int | None:
        value = self.state.get("total_steps")
        if value is None and self.config:
            value = self.config.get("run", {}).get("total_steps")
        return int(value) if isinstance(value, (int, float)) else None

    def evals(self) -> pd.DataFrame:
        """eval.csv (read once); a damaged file marks the record damaged and gives an empty frame."""
        if self._evals is None:
            try:
                self._evals = read_eval(self.path)
            except DamagedRun as exc:
                self.damage = self.damage or str(exc)
                self._evals = pd.DataFrame(columns=EVAL_COLUMNS)
        return self._evals


class Store:
    """A results store folder: its layout, checks, iteration over runs and their locks."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def check(self, writable: bool = True) -> None:
        check_store(self.root, writable)

    def check_readable(self) -> None:
        """For readers: UserError unless the folder exists and is a sombench store."""
        if not self.root.exists():
            raise InvalidValue("results", f"{self.root} holds no results store; run `sombench run` first or give the store's folder")
        check_store(self.root, writable=False)

    def init(self) -> None:
        init_store(self.root)

    def run_dir(self, key: RunKey) -> Path:
        return run_dir(self.root, key.env, key.algo, key.seed, key.variant)

    def files(self, key: RunKey) -> RunFiles:
        """The named files of a run folder."""
        return RunFiles(self.run_dir(key))

    def variant_modes(self, key: RunKey) -> Path:
        """`sombench bandit`'s per-variant report: <store>/<env>/<algo>[@<variant>]/bandit_modes.json."""
        return self.run_dir(key).parent / "bandit_modes.json"

    def analysis_dir(self, env: str, labels: list[str], seed: int) -> Path:
        """`sombench analyze`'s default output: <store>/analysis/<env>/<label>-vs-<label>..._seed<N>/ (never a
        `seed_*` folder, so no listing of runs takes it for one)."""
        return self.root / "analysis" / env / f"{'-vs-'.join(labels)}_seed{seed}"

    def latency_dir(self) -> Path:
        """Where `sombench latency` writes its CSVs: <store>/latency/<env>_<device>_<UTC time>.csv."""
        return self.root / "latency"

    def launcher_dir(self, name: str) -> Path:
        """A launcher's own files (job logs, pickles): <store>/.<name>/."""
        return self.root / f".{name}"

    def key_of(self, path: Path) -> RunKey | None:
        env, folder, seed_dir = run_key(self.root, path)
        algo, _, variant = folder.partition("@")
        seed_text = seed_dir.removeprefix("seed_")
        if not seed_text.isdigit():
            return None
        return RunKey(env, algo, variant or None, int(seed_text))

    def _record(self, key: RunKey, path: Path) -> RunRecord:
        damage = None
        config = None
        if (path / "config.json").exists():
            try:
                config = read_json(path / "config.json")
                if not isinstance(config, dict) or not isinstance(config.get("run"), dict):
                    raise ValueError
            except (OSError, ValueError):
                config, damage = None, "config.json is corrupt"
        state = effective_state(path)
        if state.get("state") == RunState.UNKNOWN and damage is None and config is None:
            damage = "no config.json or state.json (not a run sombench finished setting up)"
        record = RunRecord(key, path, state, config, damage)
        record.evals()  # a damaged eval.csv marks the record damaged
        return record

    def runs(self, envs: list[str] | None = None, algos: list[str] | None = None) -> list[RunRecord]:
        """Every run, sorted; `algos` matches an algorithm name (all its variants) or an exact `algo@variant`."""
        out = []
        for path in iter_run_dirs(self.root):
            key = self.key_of(path)
            if key is None:
                continue
            if envs and key.env not in envs:
                continue
            if algos and key.algo not in algos and key.label not in algos:
                continue
            out.append(self._record(key, path))
        return out

    def stored_identity(self, key: RunKey) -> dict[str, Any] | None:
        """The identity recorded in a run's config.json, None if the run has none yet; UserError if corrupt."""
        path = self.run_dir(key)
        record = self._record(key, path)
        if record.config is None and (path / "config.json").exists():
            raise UserError(f"{path / 'config.json'} is corrupt; delete {path} to restart seed {key.seed}")
        return record.config["run"] if record.config else None

    def check_resumable(self, key: RunKey) -> None:
        """UserError (one line, with the remedy) if an existing run cannot be resumed or written to."""
        path = self.run_dir(key)
        if not path.exists():
            return
        for reader in (read_eval, read_train):
            try:
                reader(path)
            except DamagedRun as exc:
                raise UserError(f"{path}: {exc}; restore the file or delete {path} to restart seed {key.seed}") from None
        if not _writable(path):
            raise UserError(f"run folder {path} is not writable; fix its permissions or use another results folder")
        holder = lock_holder(path)
        if holder is not None:
            raise UserError(f"{path} is being run by pid {holder.get('pid')} on {holder.get('host')}; wait for it to finish or stop it")
