"""Experiment tracking (`--track tensorboard|wandb`): a run's metrics sent, as they are logged, to the
trackers researchers already read, beside the CSVs that remain the record.

What is sent, under the run's variant and seed (CleanRL's names where it has one):

    train/<metric>     each train.csv row (the algorithm's metrics averaged over the logging window)
    charts/SPS         env steps per second over that window (wall clock of this machine)
    eval/return_mean   each evaluation (eval.csv), with eval/return_std
    the config         config.json's record: the run's identity (algorithm config included), variant, preset,
                       provenance; TensorBoard: as HParams (scalar fields) and as a text summary (all of it);
                       W&B: as the run's config

The x-axis is the env step. A resumed run continues the same logs without a duplicated or missing step:
`tracked.json` (in the run folder) holds, per tracker, the last env step it holds for certain, the W&B run id
and the W&B sessions that ended cleanly. On start, the rows already stored (train.csv, eval.csv) past that
step are sent first, then live rows, so a run started without `--track` gets its history when resumed with
it. What "for certain" means differs:

- TensorBoard: the event file is flushed after every row, so the marker follows every row. The writer is
  reopened with `purge_step` just past the marker, so events an earlier, killed session wrote after its last
  marker are discarded by TensorBoard (the exact resume recomputes them identically).
- W&B: rows go to W&B's own service process, which loses what it had not written when the run is SIGKILLed;
  so the marker advances only when a session ends cleanly (finished, interrupted by Ctrl-C or SIGTERM, or
  failed), and a resumed run sends again everything after it. An offline session that did not end cleanly
  is removed first (its rows are sent again), so `wandb sync` uploads each step once. Online, W&B's client
  skips the steps its server already has (`run.step`).

A tracker that raises while the run trains is turned off for the rest of the session with one warning
line: tracking never fails a run.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
from pathlib import Path
from typing import Any

from sombench.runs import store
from sombench.runs.spec import RunSpec

Row = dict[str, Any]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _finite(row: Row) -> dict[str, float]:
    """The row's numbers as floats (non-numbers dropped; NaN kept: a tracker shows a diverged metric)."""
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _scalars(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested record flattened to `a/b` keys with scalar values (lists and tuples as text)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_scalars(value, f"{name}/"))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, default=str)
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = "none" if value is None else value
    return out


class TensorBoard:
    """Event files in the run folder's `tensorboard/` (torch.utils.tensorboard.SummaryWriter)."""

    name = "tensorboard"

    durable = True
    """Each sent row is on disk once `flush` returns."""

    def __init__(self, spec: RunSpec, files: store.RunFiles, record: dict[str, Any], after: int, run_id: str,
                 sessions: list[str]):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        fresh = after < 0
        # purge_step: TensorBoard discards what earlier sessions wrote at steps >= it (see the module docstring)
        self.writer = SummaryWriter(log_dir=str(files.tensorboard), purge_step=None if fresh else after + 1)
        if fresh:
            config = _scalars({"run": record.get("run", {}), "variant": record.get("variant"), "preset": record.get("preset")})
            for summary in hparams(config, {"eval/return_mean": math.nan}):
                self.writer.file_writer.add_summary(summary)
            self.writer.add_text("config", "```json\n" + json.dumps(record, indent=2, default=str) + "\n```", 0)

    def send(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandB:
    """A W&B run per seed (id kept in tracked.json), its files under the run folder's `wandb/`."""

    name = "wandb"
    durable = False
    """Rows are certain only once `close` (run.finish) returns."""

    def __init__(self, spec: RunSpec, files: store.RunFiles, record: dict[str, Any], after: int, run_id: str,
                 sessions: list[str]):
        import shutil

        import wandb

        for folder in files.wandb.glob(f"offline-run-*-{run_id}"):  # a killed session's: its rows are sent again
            if folder.name not in sessions:
                shutil.rmtree(folder, ignore_errors=True)

        label = spec.key.label
        track = spec.track
        self.run = wandb.init(
            project=track.project, entity=track.entity, group=track.group or f"{spec.env_id}/{label}",
            name=f"{spec.env_id}/{label}/seed_{spec.seed}", id=run_id, resume="allow", dir=str(files.wandb.parent),
            config=record, mode=track.wandb_mode, job_type="train", tags=[spec.algo, spec.env_id],
            settings=wandb.Settings(silent=True, console="off"), reinit="create_new")
        self.run.define_metric("env_step")
        self.run.define_metric("*", step_metric="env_step")
        self.session = Path(self.run.sync_dir).name
        self.server_has = self.run.step
        """Online, a resumed run's last step on W&B's server (W&B drops a step not past it); offline, 0."""

    def send(self, step: int, values: dict[str, float]) -> None:
        if step > self.server_has:
            self.run.log({**values, "env_step": step}, step=step)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.run.finish()


BACKENDS = {TensorBoard.name: TensorBoard, WandB.name: WandB}


KINDS = ("train", "eval")


class Tracker:
    """The run's trackers. `send_rows` before training (stored rows past each tracker's marker), then
    `train_row` / `eval_row` as the trainer logs, `close` at the end (whatever way the run ends)."""

    def __init__(self, spec: RunSpec, files: store.RunFiles, record: dict[str, Any]):
        self.files = files
        try:
            marker = store.read_json(files.tracked)
        except (OSError, ValueError):
            marker = {}
        self.run_id = marker.get("wandb_id") or secrets.token_hex(4)
        self.sessions: list[str] = list(marker.get("wandb_sessions", []))
        """W&B session folders that ended cleanly."""
        self.sent: dict[str, dict[str, int]] = {}
        """Per tracker and row kind, the last env step sent in this session or held before it (-1: none)."""
        self.saved: dict[str, dict[str, int]] = {}
        """Per tracker and row kind, the last env step the tracker holds for certain (what tracked.json says)."""
        self.backends = {}
        for name in spec.track.backends:
            sent = marker.get("sent", {}).get(name, {})
            self.sent[name] = {kind: int(sent.get(kind, -1)) if isinstance(sent, dict) else -1 for kind in KINDS}
            if name == TensorBoard.name:  # purge from the earliest marker: both kinds are sent again past it
                earliest = min(self.sent[name].values())
                self.sent[name] = dict.fromkeys(KINDS, earliest)
            self.saved[name] = dict(self.sent[name])
            try:
                self.backends[name] = BACKENDS[name](spec, files, record, min(self.sent[name].values()), self.run_id, self.sessions)
            except BaseException:
                self.close()
                raise
        self.last_train: tuple[int, float] | None = None
        self.save()

    @staticmethod
    def start(spec: RunSpec, files: store.RunFiles, record: dict[str, Any], train_rows: list[Row],
              eval_rows: list[Row]) -> Tracker | None:
        """The run's trackers, sent the stored rows they have not had; None (after one warning line) when they
        cannot start: tracking never fails a run."""
        tracker = None
        try:
            tracker = Tracker(spec, files, record)
            tracker.send_rows(train_rows, eval_rows)
            return tracker
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run
            _warn(f"--track could not start for seed {spec.seed} ({type(exc).__name__}: {exc}); going on without it")
            if tracker:
                tracker.close()
            return None

    def save(self) -> None:
        store.atomic_write_json(self.files.tracked, {"wandb_id": self.run_id, "sent": self.saved, "wandb_sessions": self.sessions})

    def send_rows(self, train_rows: list[Row], eval_rows: list[Row]) -> None:
        """Send the stored rows each tracker has not had yet (a resumed run, or one started without it), in
        env-step order."""
        rows = sorted([(int(r["env_step"]), 0, "train", r) for r in train_rows] + [(int(r["env_step"]), 1, "eval", r) for r in eval_rows],
                      key=lambda item: item[:2])
        for _, _, kind, row in rows:
            self._send(kind, row)

    def train_row(self, row: Row) -> None:
        self._send("train", row)

    def eval_row(self, row: Row) -> None:
        self._send("eval", row)

    def _values(self, kind: str, row: Row) -> dict[str, float]:
        values = _finite(row)
        step, wall = int(values.pop("env_step")), values.pop("wall_s", None)
        if kind == "eval":
            return {"eval/return_mean": values["return_mean"], "eval/return_std": values["return_std"]}
        out = {f"train/{k}": v for k, v in values.items()}
        if wall is not None:
            if self.last_train is not None and step > self.last_train[0] and wall > self.last_train[1]:
                out["charts/SPS"] = (step - self.last_train[0]) / (wall - self.last_train[1])
            self.last_train = (step, wall)
        return out

    def _send(self, kind: str, row: Row) -> None:
        step, values = int(row["env_step"]), self._values(kind, row)
        changed = False
        for name, backend in list(self.backends.items()):
            if step <= self.sent[name][kind] or not values:
                continue
            try:
                backend.send(step, values)
                backend.flush()
            except Exception as exc:  # noqa: BLE001 - tracking never fails a run
                first = str(exc).splitlines()[0] if str(exc) else ""
                _warn(f"--track {name} stopped for this session ({type(exc).__name__}: {first}); "
                      "the CSVs are complete, and a rerun sends what it missed")
                self.backends.pop(name)
                continue
            self.sent[name][kind] = step
            if backend.durable:
                self.saved[name][kind] = step
                changed = True
        if changed:
            self.save()

    def close(self) -> None:
        """Close every tracker; a W&B session that finished makes its rows certain (tracked.json)."""
        changed = False
        for name, backend in self.backends.items():
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001
                _warn(f"--track {name} did not close cleanly ({type(exc).__name__}: {exc})")
                continue
            if not backend.durable:
                self.saved[name] = dict(self.sent[name])
                self.sessions.append(getattr(backend, "session", ""))
                changed = True
        self.backends = {}
        if changed:
            self.save()


def missing_package(backend: str) -> str | None:
    """The package `backend` needs when it is not installed (one line for the user), else None."""
    import importlib.util

    package = {"tensorboard": "tensorboard", "wandb": "wandb"}[backend]
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a module blocked in sys.modules, or a broken install
        found = False
    if not found:
        return f"--track {backend} needs the {package} package: pip install 'sombench[track]' (or `make install`)"
    return None


def wandb_login_problem(mode: str | None) -> str | None:
    """One line when W&B would run online without an API key (it would stop to ask for one), else None."""
    import netrc
    import os

    mode = mode or os.environ.get("WANDB_MODE", "online")
    if mode in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
        return None
    try:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        hosts = netrc.netrc(path).hosts
    except (OSError, netrc.NetrcParseError):
        hosts = {}
    if any("wandb" in host for host in hosts):
        return None
    return "--track wandb runs online but finds no W&B API key: run `wandb login`, set WANDB_API_KEY, or add --wandb-mode offline"
