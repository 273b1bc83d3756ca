"""`--num-envs N` and `--vector-mode` (issue 26): N training envs stepped together, with budgets, warm-up and the
update ratio in env steps; each env's transitions are its own (no autoreset step stored); PPO's rollout runs GAE per
env; a run killed mid-episode resumes to the uninterrupted numbers; sync and async give the same numbers; bad values
are one line. One env is the single-env run (scripts/identical_outputs.sh: hashes equal to 7db9141's)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_one_line_error, invoke, run_path
from killable_env import ENV_ID
from sombench.envs import PAPER_TASKS, make_training_env, vector_seeds
from sombench.runs import checkpoint, store
from sombench.runs.spec import RunSpec
from sombench.train.trainer import Trainer, run_seed

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ("hidden_sizes=32,32", "batch_size=32", "buffer_size=5000")


# -- env snapshots -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["Pendulum-v1", *PAPER_TASKS])
def test_a_snapshot_taken_mid_episode_continues_the_env_exactly(env_id):
    """Snapshot an env mid-episode (pickled, as a checkpoint and an async worker's pipe carry it), restore it into
    another instance that has lived a different life, and both continue identically through resets."""
    probe = make_training_env(env_id)
    rng = np.random.default_rng(0)
    actions = rng.uniform(probe.action_space.low, probe.action_space.high, (400, *probe.action_space.shape)).astype(np.float32)

    def play(env, start):
        out = []
        for t in range(start, len(actions)):
            obs, reward, terminated, truncated, _ = env.step(actions[t])
            out.append((obs.tobytes(), float(reward), terminated, truncated))
            if terminated or truncated:
                out.append((env.reset()[0].tobytes(),))
        return out

    a = make_training_env(env_id)
    a.reset(seed=3)
    for t in range(37):
        a.step(actions[t])
    snap = pickle.loads(pickle.dumps(a.snapshot))
    b = make_training_env(env_id)
    b.reset(seed=11)
    for t in range(5):
        b.step(actions[t])
    b.snapshot = snap
    assert play(b, 37) == play(a, 37)


def test_env_seeds_are_the_run_seed_then_distinct_streams():
    assert vector_seeds(7, 1) == [7]
    seeds = vector_seeds(0, 4)
    assert seeds[0] == 0 and len(set(seeds)) == 4
    assert vector_seeds(1, 2)[0] not in seeds  # not Gymnasium's seed + k: seed 1's env 0 is no env of seed 0
    assert vector_seeds(2**70, 3)[0] == 2**70  # a big seed reaches env 0 unchanged


# -- the loop, in process --------------------------------------------------------------------------------------
def _spec(algo="sac", env="Hopper-v4", steps=300, sets=(), **kw) -> RunSpec:
    return RunSpec(algo, env, 0, steps, eval_every=steps, eval_episodes=1, checkpoint_every=10**9, log_every=steps,
                   threads=1, set_pairs=tuple(sets), **kw)


def test_warm_up_and_updates_count_env_steps_whatever_the_number_of_envs(tmp_path, monkeypatch):
    """N = 3, warm-up 7, 30 env steps: env steps 1-7 act uniformly (vector steps 1-2 whole, env 0 of step 3), the
    policy acts on 23 observations, and env steps 7..30 (the 1st..24th past warm-up) make floor(R x 24) updates."""
    import algorithms

    seen: list[int] = []
    cls = algorithms.get("sac")
    real = cls.explore_batch
    monkeypatch.setattr(cls, "explore_batch", lambda self, obs: seen.append(len(obs)) or real(self, obs))
    for ratio, updates in (("1", 24), ("0.5", 12)):
        seen.clear()
        spec = _spec(steps=30, sets=(*TINY, "warmup_steps=7", "num_envs=3", f"updates_per_step={ratio}"))
        assert run_seed(spec, tmp_path / ratio)["status"] == "done"
        assert seen == [2] + [3] * 7  # 2 + 21 = 23 observations explored
        ckpt = checkpoint.load(store.Store(tmp_path / ratio).run_dir(spec.key) / "checkpoint.pt")
        assert {int(s["step"]) for s in ckpt["algo"]["critic_opt"]["state"].values()} == {updates}
        assert ckpt["step"] == 30 and len(ckpt["envs"]["snapshots"]) == 3


def test_each_env_stores_its_own_transitions_and_no_autoreset_step(tmp_path):
    """Hopper's episodes end at different steps in different envs: in the replay buffer, row i + N continues env
    (i mod N)'s trajectory from row i exactly when row i did not end it; the buffer holds one row per env step."""
    n, steps = 3, 900
    spec = _spec(steps=steps, sets=(*TINY, "warmup_steps=900", f"num_envs={n}"))
    trainer = Trainer(spec, store.Store(tmp_path).run_dir(spec.key), lambda e: None)
    store.make_run_dir(trainer.run)
    ended_at = []
    real = trainer.vector_step

    def step():
        real()
        ended_at.append(trainer.ended.copy())

    trainer.vector_step = step
    trainer.train()
    buf = trainer.algo.buffer
    assert len(buf) == steps
    obs, next_obs = buf.storage["obs"][:steps].numpy(), buf.storage["next_obs"][:steps].numpy()
    ended = np.concatenate(ended_at)  # per row: the env's episode ended there (terminated, or cut at 1,000 steps)
    terminated = buf.storage["terminated"][:steps].numpy() > 0
    assert ended.sum() >= 6 and len({tuple(e) for e in ended_at if e.any()}) > 1  # episodes ended, not in step
    np.testing.assert_array_equal(terminated, ended)  # Hopper ends by termination within 300 steps here
    for i in range(steps - n):
        continues = np.array_equal(next_obs[i], obs[i + n])
        assert continues == (not ended[i]), i
    # episodes.csv: one row per finished episode, its return the sum of that env's rewards since its last end
    episodes = store.read_episodes(trainer.run)
    rewards = buf.storage["reward"][:steps].numpy().astype(np.float64)
    rows = []
    for k in range(n):
        start = 0
        for j, i in enumerate(range(k, steps, n)):
            if ended[i]:
                rows.append((i - i % n + n, k, rewards[k::n][start:j + 1].sum(), j + 1 - start))
                start = j + 1
    got = sorted(zip(episodes["env_step"], episodes["env"], episodes["return"], episodes["length"]))
    assert [r[:2] + (r[3],) for r in got] == [r[:2] + (r[3],) for r in sorted(rows)]
    np.testing.assert_allclose([r[2] for r in got], [r[2] for r in sorted(rows)], rtol=1e-5)


@pytest.mark.slow
def test_sync_and_async_envs_give_identical_numbers(tmp_path):
    frames = []
    for mode in ("sync", "async"):
        spec = _spec(steps=600, sets=(*TINY, "warmup_steps=200", "num_envs=4", "updates_per_step=0.5"), vector_mode=mode)
        assert run_seed(spec, tmp_path / mode)["status"] == "done"
        run = store.Store(tmp_path / mode).run_dir(spec.key)
        frames.append((pd.read_csv(run / "eval.csv"), pd.read_csv(run / "train.csv")))
        assert store.read_json(run / "config.json")["vector_mode"] == mode
    for a, b in zip(*frames):
        pd.testing.assert_frame_equal(a.drop(columns="wall_s"), b.drop(columns="wall_s"))


@pytest.mark.parametrize("resume_mode", ["sync", "async"])
def test_an_interrupted_hopper_run_with_three_envs_resumes_mid_episode_exactly(tmp_path, monkeypatch, resume_mode):
    """Interrupt (Ctrl-C) a Hopper run of 3 envs after a checkpoint taken where some envs' episodes had just ended and
    the others were mid-episode (checkpoints of N > 1 envs fall anywhere), rerun it (in either vector mode), and
    compare with an uninterrupted run."""
    sets = (*TINY, "warmup_steps=150", "num_envs=3", "updates_per_step=0.5")
    make = lambda every: RunSpec("sac", "Hopper-v4", 0, 900, eval_every=300, eval_episodes=1,  # noqa: E731
                                 checkpoint_every=every, log_every=150, threads=1, set_pairs=sets)
    real = Trainer.vector_step
    seen = []

    def watched(self):
        real(self)
        seen.append((self.step, self.ended.copy()))

    monkeypatch.setattr(Trainer, "vector_step", watched)
    assert run_seed(make(10**9), tmp_path / "clean")["status"] == "done"
    cut = next(step for step, ended in seen if step >= 300 and 0 < ended.sum() < 3)  # the checkpoint's step

    def dying(self):
        if self.step >= cut + 150:
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(Trainer, "vector_step", dying)
    spec = make(cut)
    with pytest.raises(KeyboardInterrupt):
        run_seed(spec, tmp_path / "killed")
    run = store.Store(tmp_path / "killed").run_dir(spec.key)
    ckpt = checkpoint.load(run / "checkpoint.pt")
    assert ckpt["step"] == cut and 0 < ckpt["envs"]["ended"].sum() < 3
    monkeypatch.setattr(Trainer, "vector_step", real)
    assert run_seed(dataclasses.replace(spec, vector_mode=resume_mode), tmp_path / "killed")["status"] == "done"
    clean = store.Store(tmp_path / "clean").run_dir(spec.key)
    for name in ("eval.csv", "train.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(run / name).drop(columns="wall_s"), pd.read_csv(clean / name).drop(columns="wall_s"))
    pd.testing.assert_frame_equal(store.read_episodes(run), store.read_episodes(clean))  # episodes across the cut too


# -- killed at many moments, three envs at ratio 0.5 (as tests/test_reliability.py with one env) ---------------
KILL_ARGS = ["--steps", "1200", "--eval-every", "300", "--eval-episodes", "1", "--checkpoint-every", "200", "--log-every", "600",
             "--threads", "1", "--device", "cpu", "--set", "hidden_sizes=32,32", "--set", "batch_size=32", "--set", "warmup_steps=600",
             "--num-envs", "3", "--updates-per-step", "0.5"]
# The killable env counts every env step of the process: with 3 envs, training env steps 1-300 are process steps
# 1-300, the evaluation at 300 is 301-500, env steps 301-600 are 501-800, evaluation 801-1000, 601-900 are 1001-1300.
MOMENTS = {
    "warm-up, after the checkpoint at 201 (mid-episode)": {"kill_after": 250},
    "warm-up, after the checkpoint at 402, before the evaluation at 600": {"kill_after": 700},
    "training, after the checkpoint at 603": {"kill_after": 1150},
    "during the second checkpoint write": {"kill_in_checkpoint": 2},
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("clean")
    assert invoke(["run", "--algo", "sac", "--env", ENV_ID, "--results", str(results), *KILL_ARGS]) == 0
    return run_path(results, ENV_ID, "sac")


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_killed_with_three_envs_at_ratio_half_a_rerun_completes_with_identical_numbers(moment, uninterrupted, tmp_path):
    from test_reliability import _cli_process, kill_env

    killed = _cli_process(tmp_path, kill_env(MOMENTS[moment]), KILL_ARGS)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    run = run_path(tmp_path, ENV_ID, "sac")
    assert store.effective_state(run)["state"] == "interrupted"
    rerun = _cli_process(tmp_path, {}, KILL_ARGS)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    for name in ("eval.csv", "train.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(run / name).drop(columns="wall_s"),
                                      pd.read_csv(uninterrupted / name).drop(columns="wall_s"))
    assert list(pd.read_csv(run / "eval.csv")["env_step"]) == [300, 600, 900, 1200]


# -- PPO over N envs ----------------------------------------------------------------------------------------------
def test_ppo_runs_gae_per_env_over_a_rollout_of_n_envs():
    """Two envs, rollout 8 (4 vector steps): the update sees each env's 4 steps in order, cut (bootstrapped) at the
    rollout's end per env, so its advantages are those of each env's piece computed alone."""
    import algorithms
    from algorithms.common.base import Choice
    from algorithms.ppo import gae
    from sombench.runs.spec import resolve_config

    cfg = resolve_config("ppo", None, ["num_envs=2", "batch_size=8", "hidden_sizes=8", "normalize_advantages=false"])
    algo = algorithms.get("ppo")(3, 1, cfg, torch.device("cpu"))
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(5, 2, 3)).astype(np.float32)  # 4 steps x 2 envs, and the last next obs
    rewards = rng.normal(size=(4, 2))
    terminated = np.zeros((4, 2), dtype=bool)
    terminated[1, 1] = True  # env 1's episode ends at its 2nd step; its 3rd step starts a new one
    obs[2, 1] = rng.normal(size=3)  # (a reset observation)
    captured = {}
    real_update = algo.update
    algo.update = lambda batch, truncated: captured.update(batch=batch, truncated=truncated) or real_update(batch, truncated)
    for t in range(4):
        algo.observe_batch(obs[t], [Choice(np.zeros(1, np.float32)), Choice(np.zeros(1, np.float32))], rewards[t],
                           obs[t + 1], terminated[t], np.zeros(2, dtype=bool))
        for _ in range(2):
            algo.train_step()
    batch, truncated = captured["batch"], captured["truncated"]
    np.testing.assert_array_equal(batch.obs.numpy(), np.concatenate([obs[:4, 0], obs[:4, 1]]))
    np.testing.assert_array_equal(truncated.numpy(), [0, 0, 0, 1, 0, 0, 0, 1])
    adv, _ = algo.advantages_and_returns(batch, truncated)
    v = lambda x: algo.critic(torch.as_tensor(x)).squeeze(-1).detach().double().numpy()  # noqa: E731
    for k in range(2):
        ends = terminated[:, k].astype(float)
        ends[-1] = 1.0
        alone = gae(cfg.reward_scale * rewards[:, k], v(obs[:4, k]), v(obs[1:, k]), terminated[:, k].astype(float), ends,
                    cfg.gamma, cfg.gae_lambda)
        np.testing.assert_allclose(adv.numpy()[4 * k:4 * k + 4], alone, rtol=1e-5, atol=1e-6)


# -- options and errors ---------------------------------------------------------------------------------------
def test_num_envs_names_the_variant_and_relax_presets_declare_five_envs_at_ratio_0_2():
    import algorithms

    assert RunSpec("sac", "Hopper-v4", 0, 100, set_pairs=("num_envs=1",)).variant is None
    assert RunSpec("sac", "Hopper-v4", 0, 100, set_pairs=("num_envs=5",)).variant == "num_envs=5"
    for name in ("sdac", "dpmd"):
        config = RunSpec(name, "Hopper-v4", 0, 100, preset="relax").config()
        assert (config.num_envs, config.updates_per_step) == (5, 0.2), name
        assert "relax" in algorithms.get(name).presets


@pytest.mark.parametrize("args, needle", [
    (["--num-envs", "0"], "whole number of envs"),
    (["--num-envs", "1e3"], "whole number of envs"),
    (["--num-envs", "3"], "budget of 999 or 1002 env steps"),  # 1,000 steps
    (["--num-envs", "2", "--set", "num_envs=4"], "both set num_envs"),
    (["--updates-per-step", "0.5", "--set", "updates_per_step=2"], "both set updates_per_step"),
    (["--vector-mode", "threads"], "vector-mode"),
])
def test_bad_vector_options_are_one_line_and_write_nothing(cli, tmp_path, args, needle):
    code, out, err = cli(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "1000", "--results", str(tmp_path / "r"), *args])
    assert_one_line_error(code, out, err, needle)
    assert not (tmp_path / "r").exists()


def test_ppo_refuses_envs_that_do_not_divide_its_rollout(cli, tmp_path):
    code, out, err = cli(["run", "--algo", "ppo", "--env", "Pendulum-v1", "--steps", "1200", "--results", str(tmp_path / "r"),
                          "--num-envs", "3"])
    assert_one_line_error(code, out, err, "multiple of num_envs")
    assert not (tmp_path / "r").exists()


def test_a_checkpoint_written_before_vector_envs_still_resumes_exactly(tmp_path, monkeypatch):
    """One env, checkpointed at an episode end in the earlier format (the env's RNG in rng["env"], no env
    snapshots): the resumed run equals an uninterrupted one."""
    import torch as _torch

    spec = RunSpec("sac", "Pendulum-v1", 0, 800, eval_every=400, eval_episodes=1, checkpoint_every=200, log_every=200,
                   threads=1, set_pairs=(*TINY, "warmup_steps=300"))
    assert run_seed(spec, tmp_path / "clean")["status"] == "done"
    real = Trainer.vector_step

    def dying(self):
        if self.step >= 500:
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(Trainer, "vector_step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_seed(spec, tmp_path / "old")
    run = store.Store(tmp_path / "old").run_dir(spec.key)
    ckpt = _torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 400 and ckpt["envs"]["ended"].all()
    ckpt["rng"]["env"] = ckpt["envs"].pop("snapshots")[0]["np_random"]  # what the earlier trainer stored
    del ckpt["envs"]
    _torch.save(ckpt, run / "checkpoint.pt")
    monkeypatch.setattr(Trainer, "vector_step", real)
    assert run_seed(spec, tmp_path / "old")["status"] == "done"
    clean = store.Store(tmp_path / "clean").run_dir(spec.key)
    for name in ("eval.csv", "train.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(run / name).drop(columns="wall_s"), pd.read_csv(clean / name).drop(columns="wall_s"))


@pytest.mark.slow
def test_ctrl_c_stops_an_async_run_and_its_workers_quietly(tmp_path):
    """Ctrl-C reaches the terminal's whole process group: the trainer stops with the resume line (exit 130), the env
    workers (which ignore SIGINT and leave the stopping to it) end without a traceback, and none is left behind.
    Before, Gymnasium's dummy env, built in the trainer's process, made the trainer itself ignore SIGINT."""
    import time

    proc = subprocess.Popen([sys.executable, "-m", "sombench", "run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "60000",
                             "--results", str(tmp_path), "--threads", "1", "--set", "warmup_steps=100", "--set", "hidden_sizes=8",
                             "--num-envs", "3", "--vector-mode", "async"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob("Pendulum-v1/*/seed_0/state.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err.decode()
    assert "interrupted; rerun the same command to resume" in err.decode() and "Traceback" not in err.decode()
    assert store.read_state(run_path(tmp_path, "Pendulum-v1", "sac"))["state"] == "interrupted"
    time.sleep(1.0)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no process of the group (the env workers) is left
