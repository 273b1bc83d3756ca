"""Bad input: one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_path, tiny_run_args, tree

TINY_LABEL = "sac@batch_size=32+hidden_sizes=32x32+warmup_steps=200"  # the variant derived from conftest.TINY_SAC


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "--algo", "nope", "--env", "Pendulum-v1", "--steps", "10"], "unknown algorithm 'nope'; choose one of: "),
        (["run", "--algo", "sac", "--env", "NoSuchEnv-v0", "--steps", "10"], "unknown environment 'NoSuchEnv-v0'"),
        (["run", "--algo", "sac", "--env", "CartPole-v1", "--steps", "10"], "Discrete action space"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--seeds", "0"], "--seeds must be a positive integer"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "-5"], "--steps expects a positive integer"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1"], "--steps N is required: Pendulum-v1 has no paper budget"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--set", "batchsize=3"], "unknown config key 'batchsize'"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--set", "batch_size=big"], "batch_size: expected int"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--device", "tpu"], "unknown device"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--seeds", "many"], "Invalid value for '--seeds'"),
        (["run", "--env", "Pendulum-v1"], "Missing option '--algo'"),
        (["status", "--format", "xml"], "'xml' is not one of"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "1e99"], "--steps expects a positive integer up to 1e12"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--preset", "nope"], "--preset 'nope': sac has no such preset"),
        (["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--set", "batch_size=0"], "--set batch_size must be"),
        (["latency", "--algos", "sac", "--paper", "--reference", "nope"], "unknown algorithm 'nope'"),
        (["regress", "--bands", "/"], "--bands / cannot be read"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(cli, tmp_path, args, needle):
    results = tmp_path / "results"
    code, out, err = cli(args + ["--results", str(results)])
    assert_one_line_error(code, out, err, needle)
    assert tree(tmp_path) == []


def test_a_norm_ref_with_a_non_number_is_one_line(cli, tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("env,min,max\nHopper-v4,low,3000\n")
    code, out, err = cli(["table", "--results", str(tmp_path / "none"), "--norm-ref", str(ref)])
    assert_one_line_error(code, out, err, "the min or max of Hopper-v4 is not a number")


def test_foreign_results_folder(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = cli(tiny_run_args(tmp_path))
    assert_one_line_error(code, out, err, "is not a sombench results store")
    assert tree(tmp_path) == ["notes.txt"]


def test_corrupt_results_folder(cli, tmp_path):
    (tmp_path / ".sombench-store").write_text("garbage")
    code, out, err = cli(tiny_run_args(tmp_path))
    assert_one_line_error(code, out, err, "corrupt")
    assert tree(tmp_path) == [".sombench-store"]


def test_status_on_missing_store(cli, tmp_path):
    code, out, err = cli(["status", "--results", str(tmp_path / "none")])
    assert_one_line_error(code, out, err, "no results store")


def test_unwritable_results_folder(cli, tmp_path):
    """A folder this process cannot create files in: a read-only one, or sysfs where even root cannot."""
    if os.geteuid() == 0:
        parent = Path("/sys")
    else:
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o555)
    before = tree(parent) if parent != Path("/sys") else None
    code, out, err = cli(tiny_run_args(parent / "results"))
    assert_one_line_error(code, out, err, "is not writable")
    assert not (parent / "results").exists()
    if before is not None:
        assert tree(parent) == before


def test_mismatched_rerun_is_refused(cli, tmp_path):
    """A tag names one config: the same tag with another config is refused (without a tag, another
    --set is another variant, see test_two_configs_of_one_algorithm_share_a_store)."""
    code, _, _ = cli(tiny_run_args(tmp_path, steps=200, extra=("--tag", "mine")))
    assert code == 0
    before = tree(tmp_path)
    code, out, err = cli(tiny_run_args(tmp_path, steps=200, extra=("--tag", "mine", "--set", "actor_lr=1e-3")))
    assert_one_line_error(code, out, err, "was run with other settings (algo_config.actor_lr 0.0003 -> 0.001)")
    assert tree(tmp_path) == before


def test_help_has_examples(cli):
    for command in ("run", "status", "algos", "envs"):
        code, out, _ = cli([command, "--help"])
        assert code == 0 and "Example: sombench " + command in out


def test_listings(cli):
    code, out, _ = cli(["algos"])
    assert code == 0 and "sac" in out and "Soft Actor-Critic" in out
    code, out, _ = cli(["envs"])
    assert code == 0 and "Hopper-v4" in out and "5,000,000" in out and "Reacher-v4" in out and "1,000,000" in out


def test_status_json_lists_runs(cli, tmp_path):
    assert cli(tiny_run_args(tmp_path, steps=200, seeds=2))[0] == 0
    code, out, _ = cli(["status", "--results", str(tmp_path), "--format", "json"])
    rows = json.loads(out)
    assert code == 0
    assert [(r["env"], r["algo"], r["seed"], r["steps_done"], r["steps_total"], r["state"]) for r in rows] == [
        ("Pendulum-v1", TINY_LABEL, 0, 200, 200, "done"), ("Pendulum-v1", TINY_LABEL, 1, 200, 200, "done")]
    assert all(isinstance(r["last_return"], float) for r in rows)


def test_finished_seeds_are_skipped(cli, tmp_path):
    assert cli(tiny_run_args(tmp_path, steps=200))[0] == 0
    run = run_path(tmp_path, "Pendulum-v1", "sac")
    eval_before = (run / "eval.csv").read_bytes()
    code, out, _ = cli(tiny_run_args(tmp_path, steps=200))
    assert code == 0 and "skipped" in out
    assert (run / "eval.csv").read_bytes() == eval_before
