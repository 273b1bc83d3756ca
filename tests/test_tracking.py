"""`--track tensorboard|wandb`: what the trackers receive equals the CSVs, step for step, across SIGKILLs and
resumes; a missing package, W&B online without a key, or regress without --results is one line, exit 2.

The logs are read back with the trackers' own readers: TensorBoard's EventAccumulator (which applies the
purge of a resumed writer, as TensorBoard's UI does) and W&B's offline run files (`run-<id>.wandb`: W&B's
records, protobuf `wandb.proto.wandb_internal_pb2.Record`, in LevelDB's log framing, which `_wandb_records`
undoes).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_path, tiny_run_args
from killable_env import ENV_ID
from sombench.runs import store

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

ROOT = Path(__file__).resolve().parent.parent
TRACK = ["--track", "tensorboard", "--track", "wandb", "--wandb-mode", "offline", "--wandb-project", "tracking-test"]


def _cli(args: list[str], kill_after: int | None = None, extra_env: dict[str, str] | None = None,
         block: str = "", sigint_after: int | None = None) -> subprocess.CompletedProcess:
    code = f"{block}import killable_env; from sombench.cli.main import main; main({args!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "WANDB_SILENT": "true", **(extra_env or {})}
    env.pop("SOMBENCH_KILL_AFTER_STEPS", None)
    env.pop("SOMBENCH_SIGINT_AFTER_STEPS", None)
    if kill_after is not None:
        env["SOMBENCH_KILL_AFTER_STEPS"] = str(kill_after)
    if sigint_after is not None:
        env["SOMBENCH_SIGINT_AFTER_STEPS"] = str(sigint_after)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=600)


def _wandb_records(path: Path):
    """The W&B records of one offline run file: a 7-byte W&B header, then LevelDB log blocks of 32 KiB whose
    records (7-byte header: crc, length, type FULL/FIRST/MIDDLE/LAST) carry one protobuf Record each."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, partial = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        partial = chunk if kind in (1, 2) else partial + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(partial)
            yield record


def _wandb_history(run: Path) -> tuple[list[dict], list[dict]]:
    """(history rows with their step, run records) over every session's offline run folder, in order."""
    rows, runs = [], []
    for folder in sorted((run / "wandb").glob("offline-run-*")):
        for record in _wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                values = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                rows.append({"_step": record.history.step.num, **values})
            elif kind == "run":
                runs.append(record.run)
    return rows, runs


def _tensorboard(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return acc


def test_trackers_hold_each_csv_row_once_across_kills_and_a_resume_that_starts_tracking(tmp_path):
    """Four sessions of one run: the first without --track, SIGKILLed near step 650 (checkpoint 600); the second
    with both trackers, SIGKILLed near step 1150 (checkpoint 1000, rows up to 1100 already sent); the third
    stopped by SIGINT near step 1250 (checkpoint 1200); the fourth finishes. Every train.csv and eval.csv row
    must be in TensorBoard and in W&B exactly once, with its value."""
    steps = 1400
    args = tiny_run_args(tmp_path, steps=steps, env=ENV_ID)
    # process steps count evaluation episodes too (1 of 200 steps every 200 training steps); see test_runner
    proc = _cli(args, kill_after=1250)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    run = run_path(tmp_path, ENV_ID, "sac", 0)
    assert not (run / "tensorboard").exists() and not store.RunFiles(run).tracked.exists()
    proc = _cli(args + TRACK, kill_after=950)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    marker = json.loads(store.RunFiles(run).tracked.read_text())
    # TensorBoard's rows are on disk row by row; W&B's only once a session ends cleanly (see train/tracking.py)
    assert marker["sent"]["tensorboard"]["train"] == 1100 and marker["sent"]["wandb"]["train"] == -1, marker
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    proc = _cli(args + TRACK, sigint_after=450)
    assert proc.returncode == 130, proc.stderr.decode()[-2000:]
    marker = json.loads(store.RunFiles(run).tracked.read_text())
    assert marker["sent"]["wandb"]["eval"] == 1200 and len(marker["wandb_sessions"]) == 1, marker
    proc = _cli(args + TRACK)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]

    train, evals = pd.read_csv(run / "train.csv"), pd.read_csv(run / "eval.csv")
    assert list(train["env_step"]) == list(range(200, steps + 1, 100))
    metrics = [c for c in train.columns if c not in ("env_step", "wall_s")]
    assert "critic_loss" in metrics

    acc = _tensorboard(run)
    for metric in metrics:
        events = acc.Scalars(f"train/{metric}")
        assert [e.step for e in events] == list(train["env_step"]), metric
        assert [e.value for e in events] == pytest.approx(list(train[metric]), rel=1e-5, abs=1e-6), metric
    events = acc.Scalars("eval/return_mean")
    assert [e.step for e in events] == list(evals["env_step"])
    assert [e.value for e in events] == pytest.approx(list(evals["return_mean"]), rel=1e-6)
    assert len(acc.Scalars("charts/SPS")) == len(train) - 1 and all(e.value > 0 for e in acc.Scalars("charts/SPS"))

    rows, runs = _wandb_history(run)
    # the SIGKILLed session's folder was removed (its rows sent again); the SIGINTed one and the last remain
    assert len(runs) == 2 and len({r.run_id for r in runs}) == 1
    label = run.parent.name  # sac@<the tiny config's variant>
    assert runs[0].project == "tracking-test" and runs[0].run_group == f"{ENV_ID}/{label}"
    assert runs[0].display_name == f"{ENV_ID}/{label}/seed_0" and runs[0].job_type == "train"
    config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert config["run"]["algo_config"]["batch_size"] == json.loads((run / "config.json").read_text())["run"]["algo_config"]["batch_size"]
    steps_logged = [r["_step"] for r in rows]
    assert steps_logged == sorted(set(steps_logged)), "a step was sent twice"
    by_step = {r["_step"]: r for r in rows}
    assert sorted(by_step) == sorted(set(train["env_step"]) | set(evals["env_step"]))
    for _, row in train.iterrows():
        assert by_step[row["env_step"]]["train/critic_loss"] == pytest.approx(row["critic_loss"], rel=1e-9)
        assert by_step[row["env_step"]]["env_step"] == row["env_step"]
    for _, row in evals.iterrows():
        assert by_step[row["env_step"]]["eval/return_mean"] == pytest.approx(row["return_mean"], rel=1e-12)


def test_a_missing_tracker_package_is_one_line_and_writes_nothing(tmp_path):
    results = tmp_path / "r"
    proc = _cli(tiny_run_args(results, steps=200) + ["--track", "wandb", "--wandb-mode", "offline"],
                block="import sys; sys.modules['wandb'] = None; ")  # Python's documented way to make a package unimportable
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "wandb" in err and "pip install" in err, err
    assert not results.exists()


def test_wandb_online_without_an_api_key_is_one_line_and_writes_nothing(tmp_path):
    results = tmp_path / "r"
    env = {"HOME": str(tmp_path), "NETRC": str(tmp_path / "no-netrc"), "WANDB_API_KEY": "", "WANDB_MODE": "online"}
    proc = _cli(tiny_run_args(results, steps=200) + ["--track", "wandb"], extra_env=env)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "wandb login" in err and "--wandb-mode offline" in err, err
    assert not results.exists()


def test_an_empty_wandb_project_is_one_line(cli, tmp_path):
    code, _, err = cli(tiny_run_args(tmp_path / "r", steps=200) + ["--track", "wandb", "--wandb-mode", "offline", "--wandb-project", " "])
    assert code == 2 and "--wandb-project is empty" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_regress_with_track_needs_results(cli):
    code, _, err = cli(["regress", "--algos", "sac", "--track", "tensorboard"])
    assert code == 2 and "--results" in err and len(err.strip().splitlines()) == 1, err


def test_tensorboard_gets_the_config_as_hparams_and_text(tmp_path):
    proc = _cli(tiny_run_args(tmp_path, steps=200) + ["--track", "tensorboard"])
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    acc = _tensorboard(run_path(tmp_path, "Pendulum-v1", "sac", 0))
    assert "config/text_summary" in acc.Tags()["tensors"]  # add_text's summary
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"algo": "sac"' in text and '"batch_size"' in text
    assert "_hparams_/session_start_info" in acc.summary_metadata


def test_track_on_a_finished_run_sends_its_stored_rows_once(tmp_path):
    """A rerun with --track of a run that is already done trains nothing but sends its history; a second rerun
    sends nothing more."""
    args = tiny_run_args(tmp_path, steps=400)
    assert _cli(args).returncode == 0
    run = run_path(tmp_path, "Pendulum-v1", "sac", 0)
    before = (run / "eval.csv").read_bytes()
    for _ in range(2):
        proc = _cli(args + ["--track", "tensorboard"])
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (run / "eval.csv").read_bytes() == before  # nothing retrained
    train, evals = pd.read_csv(run / "train.csv"), pd.read_csv(run / "eval.csv")
    acc = _tensorboard(run)
    assert [e.step for e in acc.Scalars("train/critic_loss")] == list(train["env_step"])
    assert [e.step for e in acc.Scalars("eval/return_mean")] == list(evals["env_step"])
