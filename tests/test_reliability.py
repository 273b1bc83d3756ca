"""Reliability: a run killed at any moment resumes to the same numbers; every bad config value is one
line and exit 2; damaged result files are named, never crash the readers; plot and table agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import algorithms
from algorithms.common.config import field_domain
from conftest import assert_one_line_error, invoke, run_path, tree
from killable_env import ENV_ID
from sombench.runs import store

ROOT = Path(__file__).resolve().parent.parent
ALGOS = sorted(algorithms.load_all())


# -- killed at many moments ---------------------------------------------------------------------
# SAC with a warm-up (600) half the run (1,200) and longer than the first checkpoints (every 200
# steps, at episode ends), the first train.csv row at 1,000 (past the first checkpoints: the bug where
# a resume found a lone-newline train.csv), evaluations every 300 (so kills land between a checkpoint
# and an evaluation). The killable env counts every env step of its process, evaluation included
# (1 episode of 200 steps per evaluation): process steps 1-300 train, 301-500 evaluate at 300,
# 501-800 train to 600, 801-1000 evaluate at 600, then train again.
KILL_ARGS = ["--steps", "1200", "--eval-every", "300", "--eval-episodes", "1", "--checkpoint-every", "200", "--log-every", "1000",
             "--threads", "1", "--device", "cpu", "--set", "hidden_sizes=32,32", "--set", "batch_size=32", "--set", "warmup_steps=600"]
MOMENTS = {
    "warm-up, before the first train.csv row (after the checkpoint at 200)": {"kill_after": 250},
    "during an evaluation (at 300, after the checkpoint at 200)": {"kill_after": 400},
    "between the checkpoint at 400 and the evaluation at 600": {"kill_after": 650},
    "training, past the warm-up (after the checkpoint at 600)": {"kill_after": 1150},
    "during the second checkpoint write (a half-written temporary file)": {"kill_in_checkpoint": 2},
}
KILL_CODE = """
import io, os, signal, sys
import torch
import killable_env
n = int(os.environ.get("KILL_IN_CHECKPOINT", "0"))
if n:
    real = torch.save
    seen = []
    def dying(obj, f, *args, **kwargs):  # sombench.runs.checkpoint.save streams torch.save into its temporary sibling
        seen.append(f)
        if len(seen) == n:  # half the checkpoint written into that temporary file, then a real SIGKILL
            whole = io.BytesIO()
            real(obj, whole, *args, **kwargs)
            f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real(obj, f, *args, **kwargs)
    torch.save = dying
from sombench.cli.main import main
main(sys.argv[1:])
"""


def _cli_process(results: Path, extra_env: dict[str, str], kill_args: list[str] = KILL_ARGS) -> subprocess.CompletedProcess:
    """`sombench run` of SAC on the killable env under KILL_CODE, in its own process (also tests/test_vector_envs.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]), **extra_env}
    args = ["run", "--algo", "sac", "--env", ENV_ID, "--results", str(results), *kill_args]
    return subprocess.run([sys.executable, "-c", KILL_CODE, *args], cwd=ROOT, env=env, capture_output=True)


def kill_env(how: dict[str, int]) -> dict[str, str]:
    """The environment variables that make `_cli_process` die at a MOMENTS entry."""
    return ({"SOMBENCH_KILL_AFTER_STEPS": str(how["kill_after"])} if "kill_after" in how
            else {"KILL_IN_CHECKPOINT": str(how["kill_in_checkpoint"])})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    results = tmp_path_factory.mktemp("clean")
    assert invoke(["run", "--algo", "sac", "--env", ENV_ID, "--results", str(results), *KILL_ARGS]) == 0
    return pd.read_csv(run_path(results, ENV_ID, "sac") / "eval.csv")


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_killed_at_any_moment_a_rerun_completes_with_identical_evaluations(moment, uninterrupted, tmp_path):
    killed = _cli_process(tmp_path, kill_env(MOMENTS[moment]))
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    run = run_path(tmp_path, ENV_ID, "sac")
    assert store.effective_state(run)["state"] == "interrupted"
    rerun = _cli_process(tmp_path, {})
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    ev = pd.read_csv(run / "eval.csv")
    assert list(ev["env_step"]) == [300, 600, 900, 1200]
    pd.testing.assert_series_equal(ev["return_mean"], uninterrupted["return_mean"])
    assert list(pd.read_csv(run / "train.csv")["env_step"]) == [1000, 1200]
    assert store.read_state(run)["state"] == "done"
    assert not list(run.glob(".*tmp"))


def test_a_lone_newline_train_csv_from_an_older_version_resumes(tmp_path):
    """Runs killed before this fix left train.csv as a single newline; they must resume, not crash."""
    args = ["run", "--algo", "sac", "--env", "Pendulum-v1", "--results", str(tmp_path), *KILL_ARGS[:-6], "--steps", "400",
            "--set", "hidden_sizes=8", "--set", "batch_size=8", "--set", "warmup_steps=300"]
    assert invoke(args) == 0
    run = run_path(tmp_path, "Pendulum-v1", "sac")
    (run / "train.csv").write_text("\n")
    assert store.read_train(run).empty
    store.write_state(run, state="running", env_step=200, total_steps=400)
    assert invoke(args) == 0  # "done" was overwritten: it resumes from the checkpoint


# -- bad config values, every field of every algorithm -----------------------------------------
# Written independently of the domains in algorithms/common/config.py, so a domain that is too loose
# fails here: values no field of that name may take, whatever its algorithm (a learning rate below 0,
# a discount of 1, a network with a zero-width layer, ...). On top come the type-level bad values of
# every field (nan and inf for floats, fractions for integers, words for numbers) and the domain's own.
# A key (algo, field) holds values for one algorithm's field whose name means something else elsewhere.
MUST_REFUSE = {
    "actor_lr": ["-1", "-1e-4"], "critic_lr": ["-1"], "alpha_lr": ["-0.1"], "gamma": ["1", "-0.1", "1.5"],
    "tau": ["0", "-0.5", "1.5"], "batch_size": ["0", "-5"], "buffer_size": ["0", "-1"], "warmup_steps": ["-1"],
    "hidden_sizes": ["-3,0", "0", "", "256,-1"], "activation": ["xyz", "softmax"], "reward_scale": ["0", "-1"],
    "init_alpha": ["0", "-1"], "num_particles": ["0", "-2"], "eval_particles": ["0"], "diffusion_steps": ["0"],
    "beta_schedule": ["xyz"], "prior_std": ["0", "-1"], "time_dim": ["0", "3"], "noise_scale": ["0", "-0.1"],
    "alpha_delay": ["0"], "policy_delay": ["0"], "target_delay": ["0"], "sde": ["xyz", "VP"], "num_score_samples": ["0"],
    "score_scale": ["-1"], "sigma_min": ["0"], "sigma_max": ["0"], "beta_min": ["0", "-1"], "beta_max": ["0"],
    "r_equals_t_fraction": ["-0.1", "1.1"], "loss_weight_power": ["-1"], "score_dtype": ["float16"],
    ("dacer", "entropy_samples"): ["0", "1"], "gmm_components": ["0"], "vp_velocity": ["xyz"], "regression_target": ["xyz"],
    "ivc_weight": ["-1"], "score_eps": ["0"], "inverse_temperature": ["0", "-1"],
}


def _type_bad_values(annotation: str) -> list[str]:
    if "bool" in annotation:
        return ["maybe", "2"]
    if "float" in annotation:
        return ["nan", "inf", "-inf", "abc"]
    if "tuple" in annotation:
        return ["a,b"]
    if "int" in annotation:
        return ["1.5", "abc", "nan"]
    return []


def _bad_values() -> list[tuple[str, str, str]]:
    cases = []
    for name in ALGOS:
        cls = algorithms.get(name)
        for field, spec in cls.Config.__dataclass_fields__.items():
            values = (MUST_REFUSE.get(field, []) + MUST_REFUSE.get((name, field), []) + _type_bad_values(str(spec.type))
                      + field_domain(cls.Config, field).bad_examples())
            cases += [(name, field, bad) for bad in dict.fromkeys(values)]
    return cases


BAD_VALUES = _bad_values()


def test_every_config_field_declares_a_domain_with_refusable_values():
    for name in ALGOS:
        cfg = algorithms.get(name).Config
        for field in cfg.__dataclass_fields__:
            domain = field_domain(cfg, field)
            assert domain is not None, f"{name}.{field}"
            assert domain.problem(getattr(cfg(), field)) is None, f"{name}.{field}: the default is outside its domain"
            assert domain.bad_examples(), f"{name}.{field} names no value outside its domain"


def test_bad_config_values_are_one_line_exit_2_and_write_nothing(cli, tmp_path):
    """Each field's out-of-domain values, typed as a user would, through the real CLI (the store stays as it was)."""
    results = tmp_path / "store"
    per_algo: dict[str, int] = {}
    for name, field, bad in BAD_VALUES:
        code, out, err = cli(["run", "--algo", name, "--env", "Pendulum-v1", "--steps", "10", "--eval-episodes", "1",
                              "--results", str(results), "--set", f"{field}={bad}"])
        assert_one_line_error(code, out, err, field)
        per_algo[name] = per_algo.get(name, 0) + 1
    assert not results.exists()
    print("bad values tried per algorithm:", per_algo)
    assert all(per_algo.get(name, 0) >= 20 for name in ALGOS), per_algo


@pytest.mark.parametrize("pairs, needle", [
    (["sde=ve", "sigma_min=0.5", "sigma_max=0.4"], "sigma_max (0.4) must be > sigma_min (0.5)"),
    (["beta_min=30"], "beta_max (20) must be >= beta_min (30)"),
    (["hidden_sizes="], "hidden_sizes must be one or more positive integers"),
])
def test_rules_across_fields_are_checked(cli, tmp_path, pairs, needle):
    args = ["run", "--algo", "som", "--env", "Pendulum-v1", "--steps", "10", "--results", str(tmp_path / "s")]
    for pair in pairs:
        args += ["--set", pair]
    assert_one_line_error(*cli(args), needle)
    assert not (tmp_path / "s").exists()


def test_every_preset_builds_a_valid_config_and_a_bad_preset_is_an_error():
    from sombench.runs.spec import resolve_config
    from sombench.errors import UserError

    for name in ALGOS:
        for preset in algorithms.get(name).presets:
            resolve_config(name, preset, [])
    with pytest.raises(UserError, match="'nope': sac has no such preset"):
        resolve_config("sac", "nope", [])
    som = algorithms.get("som")
    original = som.presets
    try:
        som.presets = {"bandit": {**original["bandit"], "no_such_field": 1}}
        with pytest.raises(UserError, match="preset 'bandit' sets unknown config key"):
            resolve_config("som", "bandit", [])
        som.presets = {"bandit": {**original["bandit"], "score_scale": -1.0}}
        with pytest.raises(UserError, match="score_scale must be a number >= 0, got -1.0"):
            resolve_config("som", "bandit", [])
    finally:
        som.presets = original


# -- damaged result files -----------------------------------------------------------------------
def _two_seeds(results: Path, cli=None) -> list[Path]:
    run = cli or (lambda args: (invoke(args),))
    assert run(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--seeds", "2", "--results", str(results),
                   "--eval-every", "100", "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8",
                   "--set", "batch_size=8", "--set", "warmup_steps=100"])[0] == 0
    return [run_path(results, "Pendulum-v1", "sac", s) for s in (0, 1)]


@pytest.mark.parametrize("damage, reason", [
    ("step,ret\n100,1\n", "lacks column(s) env_step"),
    ("env_step,return_mean,return_std,episodes,wall_s\n100,abc,1,1,1\n", "non-numeric values in column return_mean"),
    (b"\x00\xff\xfe garbage", "eval.csv"),
])
def test_a_damaged_run_is_named_and_the_others_are_read(cli, tmp_path, damage, reason):
    runs = _two_seeds(tmp_path, cli)
    data = damage.encode() if isinstance(damage, str) else damage
    (runs[1] / "eval.csv").write_bytes(data)
    code, out, err = cli(["table", "--results", str(tmp_path), "--format", "json"])
    assert code == 0, err
    payload = json.loads(out)
    cell = payload["cells"][0]
    assert cell["n"] == 1 and any("seed 1 damaged" in e and reason in e for e in cell["excluded"]), payload
    code, out, err = cli(["plot", "--results", str(tmp_path), "--out", str(tmp_path / "fig.png")])
    assert code == 0 and (tmp_path / "fig.png").exists(), err
    code, out, err = cli(["status", "--results", str(tmp_path), "--format", "json"])
    assert code == 0 and [r["state"] for r in json.loads(out)] == ["done", "damaged"]
    # a rerun of that run says what is wrong and what to do, and changes nothing
    store.write_state(runs[1], state="interrupted", env_step=100, total_steps=200)
    before = {p: p.read_bytes() for p in runs[1].iterdir()}
    code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--seeds", "2", "--results", str(tmp_path),
                          "--eval-every", "100", "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8",
                          "--set", "batch_size=8", "--set", "warmup_steps=100"])
    assert_one_line_error(code, out, err, "eval.csv")
    assert "delete" in err
    assert {p: p.read_bytes() for p in runs[1].iterdir()} == before


def test_a_checkpoint_of_another_config_is_refused(cli, tmp_path):
    import torch

    runs = _two_seeds(tmp_path, cli)
    ckpt = torch.load(runs[0] / "checkpoint.pt", weights_only=False)
    ckpt["identity"]["algo_config"]["actor_lr"] = 1.0
    torch.save(ckpt, runs[0] / "checkpoint.pt")
    store.write_state(runs[0], state="interrupted", env_step=200, total_steps=200)
    code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(tmp_path),
                          "--eval-every", "100", "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8",
                          "--set", "batch_size=8", "--set", "warmup_steps=100"])
    assert_one_line_error(code, out, err, "was written by another config")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: permission bits cannot make one here")
def test_a_read_only_run_folder_with_a_stale_lock_is_one_line(cli, tmp_path):
    runs = _two_seeds(tmp_path)
    store.write_state(runs[0], state="running", env_step=100, total_steps=200)
    (runs[0] / "lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    runs[0].chmod(0o555)
    try:
        code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(tmp_path),
                              "--eval-every", "100", "--eval-episodes", "1", "--set", "hidden_sizes=8",
                              "--set", "batch_size=8", "--set", "warmup_steps=100"])
    finally:
        runs[0].chmod(0o755)
    assert_one_line_error(code, out, err, "is not writable")


@pytest.mark.parametrize("where, needle", [("dir", "is a folder"), ("proc", "is not writable"), ("txt", "use a .png, .pdf or .svg")])
def test_plot_out_must_be_a_writable_image_file(cli, tmp_path, where, needle):
    _two_seeds(tmp_path / "s", cli)
    out = {"dir": tmp_path, "proc": Path("/proc/sombench/figure.png"), "txt": tmp_path / "f.txt"}[where]
    before = tree(tmp_path)
    assert_one_line_error(*cli(["plot", "--results", str(tmp_path / "s"), "--out", str(out)]), needle)
    assert tree(tmp_path) == before


# -- the plot takes exactly the table's runs ------------------------------------------------------
def test_plot_and_table_average_the_same_runs(tmp_path):
    from sombench.analysis import aggregate
    from sombench.render import plots

    runs = _two_seeds(tmp_path)
    extra = runs[1].parent / "seed_2"  # an interrupted seed with a worse curve: the table leaves it out, so must the plot
    extra.mkdir()
    for name in ("config.json", "eval.csv"):
        (extra / name).write_bytes((runs[1] / name).read_bytes())
    frame = pd.read_csv(extra / "eval.csv")
    frame["return_mean"] -= 1e4
    frame.to_csv(extra / "eval.csv", index=False)
    store.write_state(extra, state="interrupted", env_step=200, total_steps=200)
    table = aggregate.build_table(aggregate.load_runs(tmp_path))
    cell = next(iter(table.cells.values()))
    assert cell.n == 2 and cell.excluded == ["seed 2 interrupted"]
    fig = plots.build_figure(table)
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert line.get_label().endswith("(n=2)")
    assert line.get_ydata().min() > -5000  # the -1e4 curve of seed 2 is not averaged in


# -- the CLI's own behaviour ----------------------------------------------------------------------
def test_ctrl_c_prints_how_to_resume(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sombench", "run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "50000",
                             "--results", str(tmp_path), "--threads", "1", "--set", "warmup_steps=100", "--set", "hidden_sizes=8"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(tmp_path.glob("Pendulum-v1/*/seed_0/state.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)  # a loaded CI machine may take a while to save and exit
    assert proc.returncode == 130, err.decode()
    assert "interrupted; rerun the same command to resume" in err.decode()
    state = store.read_state(run_path(tmp_path, "Pendulum-v1", "sac"))
    assert state["state"] == "interrupted"


def test_help_imports_neither_torch_nor_scipy():
    code = ("import sys; from sombench.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'scipy.stats', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-1500:]


def test_help_shows_no_python_types(cli):
    for command in ("run", "table", "plot", "latency", "bandit"):
        code, out, _ = cli([command, "--help"])
        assert code == 0 and "list[" not in out and "Optional" not in out and "NoneType" not in out, out


def test_a_store_being_created_by_another_process_is_not_foreign(tmp_path):
    (tmp_path / f".{store.MARKER}.abc123.tmp").write_text("{")  # the other process's marker, half-written
    store.check_store(tmp_path)
    (tmp_path / "somefile").write_text("x")
    with pytest.raises(Exception, match="is not a sombench results store"):
        store.check_store(tmp_path)


def test_steps_accept_scientific_notation_and_progress_labels_survive(cli, tmp_path):
    code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "2e2", "--results", str(tmp_path),
                          "--eval-every", "100", "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8",
                          "--set", "batch_size=8", "--set", "warmup_steps=100"])
    assert code == 0, err
    assert "[done]" in out and "200/200" in out and "ret nan" not in out
    code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(tmp_path),
                          "--eval-every", "100", "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8",
                          "--set", "batch_size=8", "--set", "warmup_steps=100"])
    assert code == 0 and "[skipped]" in out and "200/200" in out and " 0/200" not in out


def test_progress_text_helpers():
    from sombench.render.progress import compact, eta_text, fmt_return

    assert [compact(n) for n in (999, 1000, 12345, 120000, 5_000_000, 1_250_000)] == ["999", "1k", "12.3k", "120k", "5M", "1.25M"]
    assert fmt_return(float("nan")) == "-" and fmt_return(None) == "-" and fmt_return(-12.34) == "-12.3"
    # in warm-up: only the warm-up's remaining time (100 steps at 10/s), never an extrapolation to the end
    assert eta_text(900, 100_000, 1000, 10.0) == "warm-up 0:00:10 left"
    assert eta_text(2000, 3000, 1000, 10.0) == "ETA 0:01:40"
    assert eta_text(10, 100, 0, None) == "ETA ?"


def test_nan_is_caught_before_the_next_evaluation(cli, tmp_path):
    code, _, _ = cli(["run", "--algo", "test-random", "--env", "SombenchCorridor-v0", "--steps", "200", "--results", str(tmp_path),
                      "--eval-every", "50", "--eval-episodes", "1", "--log-every", "1000", "--set", "warmup_steps=20",
                      "--set", "nan_seed=0"])
    assert code == 1
    run = run_path(tmp_path, "SombenchCorridor-v0", "test-random")
    assert "non-finite loss by env step 50" in store.read_state(run)["reason"]
    assert pd.read_csv(run / "eval.csv").empty  # no evaluation row after the diverged update


def test_error_log_goes_when_a_rerun_succeeds(cli, tmp_path, monkeypatch):
    args = ["run", "--algo", "test-random", "--env", "SombenchCorridor-v0", "--steps", "100", "--results", str(tmp_path),
            "--eval-every", "50", "--eval-episodes", "1", "--set", "warmup_steps=20"]
    monkeypatch.setenv("SOMBENCH_TEST_RAISE", "1")
    code, _, err = cli(args)
    assert code == 1 and "state.json has the reason" in err
    run = run_path(tmp_path, "SombenchCorridor-v0", "test-random")
    assert "RuntimeError: raised on purpose" in store.read_state(run)["reason"] and (run / "error.log").exists()
    monkeypatch.delenv("SOMBENCH_TEST_RAISE")
    assert cli(args)[0] == 0
    assert store.read_state(run)["state"] == "done" and not (run / "error.log").exists()


# -- run variants in one store -------------------------------------------------------------------
def test_two_configs_of_one_algorithm_share_a_store(cli, tmp_path):
    base = ["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(tmp_path), "--eval-every", "100",
            "--eval-episodes", "1", "--threads", "1", "--set", "hidden_sizes=8", "--set", "batch_size=8", "--set", "warmup_steps=100"]
    assert cli(base)[0] == 0
    assert cli(base + ["--set", "actor_lr=1e-3"])[0] == 0
    assert cli(base + ["--set", "actor_lr=3e-4"])[0] == 0  # the default value: the first variant, skipped
    assert cli(base + ["--tag", "mine"])[0] == 0
    labels = sorted(p.parent.name for p in (tmp_path / "Pendulum-v1").glob("*/seed_0"))
    first = "sac@batch_size=8+hidden_sizes=8+warmup_steps=100"
    assert labels == sorted([first, "sac@actor_lr=0.001+batch_size=8+hidden_sizes=8+warmup_steps=100", "sac@mine"])
    code, out, _ = cli(["table", "--results", str(tmp_path), "--format", "json"])
    assert sorted(c["algo"] for c in json.loads(out)["cells"]) == sorted(labels)
    code, out, _ = cli(["table", "--results", str(tmp_path), "--format", "json", "--algos", first])
    assert [c["algo"] for c in json.loads(out)["cells"]] == [first]
    code, out, _ = cli(["status", "--results", str(tmp_path), "--format", "json"])
    assert sorted(r["algo"] for r in json.loads(out)) == sorted(labels)


def test_a_run_stored_before_a_config_field_existed_still_resumes(cli, tmp_path):
    """A field added to a config later (at a default that keeps the old behaviour) is absent from older runs'
    identities: such a run is the same config, so a rerun resumes it instead of refusing it."""
    import torch

    args = ["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--results", str(tmp_path), "--eval-every", "100",
            "--eval-episodes", "1", "--threads", "1", "--checkpoint-every", "100", "--set", "hidden_sizes=8", "--set", "batch_size=8",
            "--set", "warmup_steps=100"]
    assert cli(args)[0] == 0
    run = run_path(tmp_path, "Pendulum-v1", "sac")
    config = json.loads((run / "config.json").read_text())
    del config["run"]["algo_config"]["log_std_min"]
    (run / "config.json").write_text(json.dumps(config))
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    del ckpt["identity"]["algo_config"]["log_std_min"]
    torch.save(ckpt, run / "checkpoint.pt")
    store.write_state(run, state="interrupted", env_step=200, total_steps=200)
    code, out, err = cli(args)
    assert code == 0, err
    config["run"]["algo_config"]["log_std_min"] = -5.0  # but a stored value that differs is another config
    (run / "config.json").write_text(json.dumps(config))
    assert_one_line_error(*cli(args), "was run with other settings (algo_config.log_std_min -5.0 -> -20.0)")


@pytest.mark.parametrize("algo, refused", [("sac", False), ("sdac", True)])
def test_a_run_of_an_earlier_algorithm_revision_is_refused_not_resumed(cli, tmp_path, algo, refused):
    """SDAC's defaults changed (issue 25: revision 2): an interrupted run stored before (its identity without
    `algo_revision`) would otherwise resume with the new behaviour; SAC's did not change and still resumes."""
    args = ["run", "--algo", algo, "--env", "Pendulum-v1", "--steps", "40", "--results", str(tmp_path), "--eval-every", "20",
            "--eval-episodes", "1", "--checkpoint-every", "20", "--threads", "1", "--set", "hidden_sizes=8,8",
            "--set", "batch_size=8", "--set", "warmup_steps=10"] + (["--set", "diffusion_steps=3"] if algo == "sdac" else [])
    assert cli(args)[0] == 0
    run = run_path(tmp_path, "Pendulum-v1", algo)
    config = json.loads((run / "config.json").read_text())
    assert config["run"].pop("algo_revision") == (2 if refused else 1)
    (run / "config.json").write_text(json.dumps(config))
    store.write_state(run, state="interrupted", env_step=20, total_steps=40)
    code, out, err = cli(args)
    if refused:
        assert_one_line_error(code, out, err, f"was run by revision 1 of {algo}, whose defaults have since changed (now revision 2)")
    else:
        assert code == 0, err
