"""`sombench evaluate`: a stored policy replays the run's own evaluation, runs from any state, records
videos (classic control through pygame, MuJoCo through its headless EGL backend), and bad input is one line."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import assert_one_line_error, invoke, run_path, tiny_run_args
from sombench.runs import store


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    assert invoke(tiny_run_args(root, steps=400, extra=("--eval-episodes", "3"))) == 0
    return run_path(root, "Pendulum-v1", "sac")


def test_the_runs_own_seed_and_episodes_repeat_its_last_evaluation(cli, done_run):
    """The checkpoint of a finished run is the policy its last evaluation scored, on the same episode seeds."""
    code, out, err = cli(["evaluate", str(done_run), "--episodes", "3", "--device", "cpu"])
    assert code == 0, err
    last = pd.read_csv(done_run / "eval.csv").iloc[-1]
    assert f"{last['return_mean']:.1f}" in out and "checkpoint at step 400 (run done)" in " ".join(out.split())


def test_an_interrupted_run_evaluates_and_stochastic_differs(cli, done_run, tmp_path):
    state = store.read_state(done_run)
    store.write_state(done_run, **{**state, "state": "interrupted"})
    try:
        code, out, err = cli(["evaluate", str(done_run), "--episodes", "2", "--stochastic", "--seed", "7", "--device", "cpu"])
    finally:
        store.write_state(done_run, **state)
    assert code == 0, err
    assert "(run interrupted), stochastic, seed 7" in " ".join(out.split())


@pytest.mark.parametrize("args, needle", [
    (["evaluate", "{missing}"], "is not a folder"),
    (["evaluate", "{empty}"], "holds no readable config.json"),
    (["evaluate", "{run}", "--episodes", "0"], "--episodes must be a positive integer"),
    (["evaluate", "{run}", "--video", "{file}"], "--video {file} is a file"),
    (["evaluate", "{run}", "--video", "{under_file}"], "cannot create the video folder {under_file}"),
])
def test_bad_evaluate_input_is_one_line(cli, done_run, tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "f.txt").write_text("x")
    where = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "run": done_run, "file": tmp_path / "f.txt",
             "under_file": tmp_path / "f.txt" / "videos"}  # a folder inside a file cannot be made, even by root
    code, out, err = cli([a.format(**where) for a in args])
    assert_one_line_error(code, out, err, needle.format(**where))


def test_a_run_without_a_checkpoint_is_one_line(cli, done_run, tmp_path):
    bare = tmp_path / "seed_0"
    bare.mkdir()
    (bare / "config.json").write_bytes((done_run / "config.json").read_bytes())
    code, out, err = cli(["evaluate", str(bare)])
    assert_one_line_error(code, out, err, "has no checkpoint yet")


@pytest.mark.slow
@pytest.mark.parametrize("env", ["Pendulum-v1", "Hopper-v4"])
def test_videos_are_recorded_one_per_episode(cli, tmp_path, env):
    import imageio.v3 as iio

    results = tmp_path / "r"
    assert invoke(tiny_run_args(results, steps=100, env=env, extra=("--eval-every", "100", "--set", "warmup_steps=50"))) == 0
    run = run_path(results, env, "sac")
    code, out, err = cli(["evaluate", str(run), "--episodes", "2", "--video", str(tmp_path / "v"), "--device", "cpu"])
    assert code == 0, err
    videos = sorted((tmp_path / "v").glob("*.mp4"))
    label = run.parent.name  # sac@<the tiny config's variant>
    assert [v.name for v in videos] == [f"{env}-{label}-seed0-step100-episode-{i}.mp4" for i in range(2)]
    frame = iio.imread(videos[0], index=1)
    assert frame.ndim == 3 and frame.std() > 10  # a drawn scene, not a blank frame
