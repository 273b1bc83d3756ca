"""Train one seed of one algorithm on one environment, resumably.

Semantics (Gymnasium): the critic bootstraps through time-limit truncation and stops only at true
termination, so the buffer stores `terminated`, never `truncated`. The algorithm's `num_envs` training envs
(N, 1 by default) step together as one Gymnasium vector env (`--vector-mode` sync or async); a vector step
is N env steps, and every count below is in env steps. The first `warmup_steps` env steps use uniform
random actions in [-1, 1]^d (env k of a vector step at env steps t+1..t+N acts uniformly while t+k+1 <=
warmup_steps); from then on the algorithm acts on the N observations in one call (`explore_batch`), records
the N transitions (`observe_batch`, each env's own final observation when its episode ended: an env that
ended is reset before the next vector step, so no autoreset step is ever a transition) and trains
`algo.updates_after(t)` times for each env step t past warm-up in the vector step (once per env step,
unless its `updates_per_step` says otherwise). Evaluation (every `eval_every` steps, at the first vector
step reaching each multiple, and at the last step) runs the algorithm's evaluation mode for
`eval_episodes` episodes on a separate env instance, each reset with a seed derived from (run seed, env
step, episode), so evaluation never disturbs training and is itself reproducible.

Checkpoints are taken at the first vector step at or after every `checkpoint_every` steps, and with one
env only at an episode boundary: there the only env state left is its RNG (the next `reset` draws from
it), which holds for any env. With N envs their episodes never end together, so the checkpoint holds each
env's state (sombench.envs.env_snapshot: plain attributes, RNG, MuJoCo's mjData) and observation. With the
networks, optimizers, buffer, every RNG state and the counters, a resumed run continues exactly as if it
had never stopped: same seed, same machine, same numbers. CSV rows are kept in memory and the CSVs
rewritten atomically; on resume, rows past the checkpoint are dropped (they are recomputed), so no step is
ever duplicated or lost.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import algorithms
from algorithms.common.base import Choice
from algorithms.common.spaces import ActionScaler
from sombench.envs import describe_env, make_env, make_vector_env, vector_seeds
from sombench.errors import UserError
from sombench.runs import checkpoint, store
from sombench.runs.provenance import provenance
from sombench.runs.spec import RunSpec

Report = Callable[[dict[str, Any]], None]


class NonFiniteLoss(Exception):
    pass


def torch_seed(seed: int) -> int:
    """A run seed (any non-negative int, numpy SeedSequence's range) as a seed torch accepts (< 2**64):
    itself below 2**32 (the seeds runs always had), else 64 bits of SeedSequence(seed), so no seed is
    reduced modulo a power of two and two seeds agreeing modulo 2**32 still differ."""
    return seed if seed < 2**32 else int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy global and torch's generators from a run seed (any non-negative int):
    directly below 2**32, through SeedSequence(seed) above (numpy's legacy seed takes < 2**32 only)."""
    random.seed(seed)
    np.random.seed(seed if seed < 2**32 else np.random.SeedSequence(seed).generate_state(4))
    torch.manual_seed(torch_seed(seed))


def evaluation_seed(seed: int, env_step: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, env_step, episode]).generate_state(1)[0])


def flat(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)


@contextlib.contextmanager
def private_rng(seed: int):
    """Run the block on random streams of its own: torch's (CPU and every CUDA device), numpy's legacy
    global and Python's are seeded with `seed` on entry and put back as they were on exit, so whatever
    the block draws (an algorithm's best-of-N candidates, reverse-process noise, ...) changes nothing
    that training draws afterwards, and the block draws the same numbers whatever ran before it."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            seed_everything(seed)
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def evaluate(algo, env, scaler: ActionScaler, episodes: int, seed: int, env_step: int, deterministic: bool = True,
             lengths: list[int] | None = None) -> np.ndarray:
    """Undiscounted returns (shape (episodes,)) of `episodes` episodes in the algorithm's evaluation mode.

    Episode `ep` resets the env with evaluation_seed(seed, env_step, ep), and the policy draws any noise
    from `private_rng` seeded by evaluation_seed(seed, env_step, episodes) (an index no episode uses): the evaluation at a step is the same
    whatever the evaluation schedule, and training never sees that an evaluation ran. `deterministic` False
    evaluates the exploring policy instead; `lengths`, if given, receives each episode's length in env steps."""
    returns = np.zeros(episodes)
    with private_rng(evaluation_seed(seed, env_step, episodes)):
        for ep in range(episodes):
            obs, _ = env.reset(seed=evaluation_seed(seed, env_step, ep))
            done, steps = False, 0
            while not done:
                action = algo.act(flat(obs), deterministic=deterministic)
                obs, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
                returns[ep] += float(reward)
                steps += 1
                done = terminated or truncated
            if lengths is not None:
                lengths.append(steps)
    return returns


class MetricWindow:
    """Sums the algorithm's metric tensors on the device; one host sync per logging window."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.detach().float().clone()
        self.count += 1

    def non_finite(self) -> list[str]:
        """Metrics whose window sum is NaN or inf (one host sync)."""
        if not self.count:
            return []
        finite = torch.isfinite(torch.stack(list(self.sums.values()))).cpu().tolist()
        return [k for k, ok in zip(self.sums, finite) if not ok]

    def flush(self) -> dict[str, float]:
        if not self.count:
            return {}
        values = torch.stack(list(self.sums.values())).cpu().tolist()
        means = {k: v / self.count for k, v in zip(self.sums, values)}
        self.sums, self.count = {}, 0
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device, copy=True) for k, v in state["sums"].items()}  # owned, not views of the file
        self.count = state["count"]


def run_seed(spec: RunSpec, root: Path, report: Report | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) one seed; returns an outcome dict. Never raises for a failed run."""
    run = store.Store(root).run_dir(spec.key)
    outcome = {"seed": spec.seed, "run": str(run)}
    report = report or (lambda event: None)
    state = store.read_state(run)
    if state and state.get("state") == "done":
        if spec.track.backends:
            track_finished_run(spec, run)
        report({"kind": "end", "seed": spec.seed, "status": "skipped", "step": state.get("env_step"),
                "total": spec.total_steps, "last_return": state.get("last_return")})
        return {**outcome, "status": "skipped", "steps": state.get("env_step"), "final_return": state.get("last_return")}
    created = store.make_run_dir(run)
    try:
        store.acquire_lock(run)
    except store.RunLocked as exc:
        return {**outcome, "status": "refused", "reason": str(exc)}
    store.remove_stale_temps(run)  # we hold the lock: any temp file is a dead writer's
    try:
        try:
            trainer = Trainer(spec, run, report)
        except Exception as exc:  # set-up (env, seeding, networks) failed before anything was written
            store.release_lock(run)
            store.remove_new_run(run, created)
            first = (str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}").strip().splitlines()[0]
            return {**outcome, "status": "refused", "setup_error": True,
                    "reason": f"seed {spec.seed} could not be set up ({first}); nothing was written for it"}
        return {**outcome, **trainer.train()}
    finally:
        store.release_lock(run)


def track_finished_run(spec: RunSpec, run: Path) -> None:
    """Send a finished run's stored rows to the trackers that have not had them (`--track` given on a rerun of a
    run that is already done: it trains nothing, but its history reaches the trackers, each row once). A run
    another process holds, or a tracker that fails, is one warning line; nothing else changes."""
    from sombench.train.tracking import Tracker

    files = store.RunFiles(run)
    try:
        store.acquire_lock(run)
    except store.RunLocked:
        return
    try:
        try:
            record, train, evals = store.read_json(files.config), store.read_train(run), store.read_eval(run)
        except (OSError, ValueError) as exc:
            _warn_line(f"--track could not read seed {spec.seed}'s stored rows ({type(exc).__name__}: {exc})")
            return
        tracker = Tracker.start(spec, files, record, _rows_upto(train, spec.total_steps), _rows_upto(evals, spec.total_steps))
        if tracker:
            tracker.close()
    finally:
        store.release_lock(run)


def _warn_line(message: str) -> None:
    """One warning line on stderr (torch.compile's fallback to eager; algorithms/common/compile.py)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Trainer:
    """One seed's training loop, in named steps: restore, step, evaluate, checkpoint, finish."""

    def __init__(self, spec: RunSpec, run: Path, report: Report):
        torch.set_num_threads(spec.threads)
        self.spec, self.run, self.report = spec, run, report
        self.files = store.RunFiles(run)
        self.device = torch.device(spec.device)
        self.info = describe_env(spec.env_id)
        self.num_envs = spec.config().num_envs
        self.envs = make_vector_env(spec.env_id, self.num_envs, spec.vector_mode)
        self.eval_env = make_env(spec.env_id)
        self.scaler = ActionScaler(self.info.act_low, self.info.act_high, self.info.act_shape, self.info.act_dtype)
        seed_everything(spec.seed)
        self.algo = algorithms.get(spec.algo)(self.info.obs_dim, self.info.act_dim, spec.config(), self.device)
        self.algo.run_steps = spec.total_steps  # schedules that span the run (QVPO's entropy decay) read it
        self.compiled = self.algo.compile(warn=_warn_line) if spec.compile else []
        self.action_rng = np.random.default_rng(spec.seed)
        self.window = MetricWindow()
        self.eval_rows: list[dict[str, Any]] = []
        self.train_rows: list[dict[str, Any]] = []
        self.step, self.episodes, self.wall_before = 0, 0, 0.0
        self.obs = np.zeros((self.num_envs, self.info.obs_dim), dtype=np.float32)
        """The N envs' current observations, flat [N, o] (a row is stale while its env awaits its reset)."""
        self.ended = np.ones(self.num_envs, dtype=bool)
        """Envs whose episode ended (or has not begun): reset before the next vector step."""
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        """Each env's current episode so far: undiscounted return and length (episodes.csv gets them at its end)."""
        self.episode_rows: list[dict[str, Any]] = []
        self.first_reset = True
        self.last_return = math.nan
        self.t_start = time.perf_counter()
        self.start_step = 0
        self.sps = RecentRate()
        self.tracker = None

    # -- restore --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Continue from the checkpoint if there is one (rows past it are dropped: they are recomputed);
        else record the run's config."""
        spec = self.spec
        if not self.files.checkpoint.exists():
            store.atomic_write_json(self.files.config, {
                "run": spec.identity(), "variant": spec.variant, "preset": spec.preset, "tag": spec.tag,
                "budget_factor": type(self.algo).budget_factor.get(spec.env_id, 1),
                "device": spec.device, "threads": spec.threads, "checkpoint_every": spec.checkpoint_every,
                "vector_mode": spec.vector_mode,
                "compiled": self.segment(0), "provenance": provenance(self.device, spec.command)})
            return
        ckpt = checkpoint.load(self.files.checkpoint, self.device)
        if not checkpoint.matches(spec, ckpt.get("identity")):
            raise CheckpointMismatch(f"{self.files.checkpoint} belongs to another config; delete {self.run} to restart seed {spec.seed}")
        self.algo.load_state_dict(ckpt["algo"])
        self.step, self.episodes, self.wall_before = ckpt["step"], ckpt["episodes"], ckpt["wall_s"]
        rng = ckpt["rng"]
        # RNG states are CPU byte tensors whatever the run's device (load mapped them onto it): set_rng_state
        # refuses any other
        torch.set_rng_state(rng["torch"].cpu())
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in rng["cuda"]])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.action_rng.bit_generator.state = rng["actions"]
        # A vector env must be reset whole once before it resets some of its envs (Gymnasium's SyncVectorEnv holds
        # no observation of an env never reset): reset it with the run's seeds, then overwrite every env's state
        self.envs.reset(seed=vector_seeds(spec.seed, self.num_envs))
        envs = ckpt.get("envs")
        if envs is None:  # one env at an episode boundary, checkpointed before vector envs: its RNG alone
            env_rng = np.random.Generator(np.random.PCG64())
            env_rng.bit_generator.state = rng["env"]
            self.envs.set_attr("np_random", [env_rng])
        else:
            self.envs.set_attr("snapshot", list(envs["snapshots"]))
            self.obs = np.array(envs["obs"], dtype=np.float32)
            self.ended = np.array(envs["ended"], dtype=bool)
            self.episode_return = np.array(envs["episode_return"], dtype=np.float64)
            self.episode_length = np.array(envs["episode_length"], dtype=np.int64)
        self.window.load_state_dict(ckpt["metrics"], self.device)
        self.eval_rows = _rows_upto(store.read_eval(self.run), self.step)
        self.train_rows = _rows_upto(store.read_train(self.run), self.step)
        self.episode_rows = _rows_upto(store.read_episodes(self.run), self.step)
        if self.eval_rows:
            self.last_return = self.eval_rows[-1]["return_mean"]
        self.first_reset = False
        self.record_segment()

    def segment(self, step: int) -> list[dict[str, Any]]:
        return [{"from_step": step, "compile": self.spec.compile, "methods": self.compiled}]

    def record_segment(self) -> None:
        """Append this resumed segment's compile setting to config.json's `compiled` list when it differs
        from the last one (a run resumed with or without --compile)."""
        path = self.files.config
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # the store's checks report a missing or damaged config.json; nothing to add here
        segments = config.get("compiled") or [{"from_step": 0, "compile": False, "methods": []}]
        last = segments[-1]
        if (last.get("compile"), last.get("methods")) != (self.spec.compile, self.compiled):
            config["compiled"] = segments + self.segment(self.step)
            store.atomic_write_json(path, config)

    # -- files ----------------------------------------------------------------------------------
    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t_start

    def save_tables(self) -> None:
        store.atomic_write_csv(self.files.eval, self.eval_rows, store.EVAL_COLUMNS)
        columns = list(dict.fromkeys(["env_step", *(k for row in self.train_rows for k in row)]))
        store.atomic_write_csv(self.files.train, self.train_rows, columns)  # a header even with no rows
        store.atomic_write_csv(self.files.episodes, self.episode_rows, store.EPISODE_COLUMNS)

    def save_state(self, state: str, **extra: Any) -> None:
        store.write_state(self.run, state=state, env_step=self.step, total_steps=self.spec.total_steps, episodes=self.episodes,
                          last_return=self.last_return if math.isfinite(self.last_return) else None, **extra)

    def checkpoint(self) -> None:
        self.check_finite()
        self.save_tables()
        checkpoint.save(self.files.checkpoint, {
            "identity": self.spec.identity(),
            "step": self.step,
            "episodes": self.episodes,
            "wall_s": self.wall(),
            "algo": self.algo.state_dict(),
            "metrics": self.window.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "actions": self.action_rng.bit_generator.state,
            },
            "envs": {"snapshots": list(self.envs.get_attr("snapshot")), "obs": self.obs.copy(), "ended": self.ended.copy(),
                     "episode_return": self.episode_return.copy(), "episode_length": self.episode_length.copy()},
        })

    # -- the loop -------------------------------------------------------------------------------
    def check_finite(self) -> None:
        """NonFiniteLoss if a metric of the current window is NaN/inf: one host sync, taken before every
        evaluation, checkpoint and log row, so no evaluation or checkpoint follows a diverged update."""
        bad = self.window.non_finite()
        if bad:
            raise NonFiniteLoss(f"non-finite {', '.join(bad)} by env step {self.step}")

    def reset_ended(self) -> None:
        """Reset the envs whose episode ended; the first reset seeds env k with vector_seeds(seed, N)[k]."""
        if not self.ended.any():
            return
        if self.first_reset:
            raw, _ = self.envs.reset(seed=vector_seeds(self.spec.seed, self.num_envs))
            self.first_reset = False
        else:
            raw, _ = self.envs.reset(options={"reset_mask": self.ended.copy()})
        obs = self.obs.copy()  # the last vector step's next_obs: an algorithm may hold it
        obs[self.ended] = np.asarray(raw, dtype=np.float32).reshape(self.num_envs, -1)[self.ended]
        self.obs, self.ended = obs, np.zeros(self.num_envs, dtype=bool)

    def vector_step(self) -> None:
        """One step of the N envs (N env steps) and the updates that follow it."""
        algo, n = self.algo, self.num_envs
        self.reset_ended()
        uniform = min(max(algo.warmup_steps - self.step, 0), n)  # envs still in the warm-up, in env order
        choices = [Choice(a) for a in self.action_rng.uniform(-1.0, 1.0, (uniform, self.info.act_dim)).astype(np.float32)]
        if uniform < n:
            choices += [c._replace(action=np.clip(c.action, -1.0, 1.0)) for c in algo.explore_batch(self.obs[uniform:])]
        actions = np.stack([self.scaler.to_env(c.action) for c in choices])
        raw_next, rewards, terminated, truncated, _ = self.envs.step(actions)
        next_obs = np.asarray(raw_next, dtype=np.float32).reshape(n, -1)
        terminated, truncated = np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool)
        algo.observe_batch(self.obs, choices, np.asarray(rewards, dtype=np.float64), next_obs, terminated, truncated)
        before, self.step = self.step, self.step + n
        self.ended = terminated | truncated
        self.episodes += int(self.ended.sum())
        self.obs = next_obs
        self.episode_return += rewards
        self.episode_length += 1
        for k in np.flatnonzero(self.ended):
            self.episode_rows.append({"env_step": self.step, "env": int(k), "return": float(self.episode_return[k]),
                                      "length": int(self.episode_length[k])})
        self.episode_return[self.ended], self.episode_length[self.ended] = 0.0, 0
        warmup = algo.warmup_steps
        for t in range(max(before + 1, warmup), self.step + 1):  # the env steps past warm-up, t-th 1-based
            for _ in range(algo.updates_after(t - warmup + 1)):
                metrics = algo.train_step()
                if metrics:
                    self.window.add(metrics)

    def log(self) -> None:
        self.check_finite()
        means = self.window.flush()
        if means:
            self.train_rows.append({"env_step": self.step, **means, "wall_s": round(self.wall(), 3)})
            if self.tracker:
                self.tracker.train_row(self.train_rows[-1])

    def evaluate(self) -> None:
        self.check_finite()
        spec = self.spec
        returns = evaluate(self.algo, self.eval_env, self.scaler, spec.eval_episodes, spec.seed, self.step)
        self.last_return = float(returns.mean())
        self.eval_rows.append({"env_step": self.step, "return_mean": self.last_return, "return_std": float(returns.std()),
                               "episodes": spec.eval_episodes, "wall_s": round(self.wall(), 3)})
        self.save_tables()
        self.save_state("running")
        if self.tracker:
            self.tracker.eval_row(self.eval_rows[-1])

    def progress(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or self.sps.due(now):
            self.sps.update(now, self.step)
            self.report({"kind": "progress", "seed": self.spec.seed, "step": self.step, "total": self.spec.total_steps,
                         "sps": self.sps.rate, "warmup": self.algo.warmup_steps, "last_return": self.last_return})

    def train(self) -> dict[str, Any]:
        spec = self.spec
        try:
            self.restore()
        except CheckpointMismatch as exc:
            self.close()
            return {"status": "refused", "reason": str(exc)}
        except Exception as exc:
            self.close()
            reason = f"checkpoint unreadable ({type(exc).__name__}); delete {self.files.checkpoint} to restart this seed"
            self.save_state("failed", reason=reason)
            return {"status": "failed", "reason": reason}
        self.open_tracker()
        self.start_step, self.t_start = self.step, time.perf_counter()
        self.sps.update(self.t_start, self.step)
        self.save_state("running")
        self.report({"kind": "start", "seed": spec.seed, "step": self.step, "total": spec.total_steps, "last_return": self.last_return,
                     "warmup": self.algo.warmup_steps})
        next_checkpoint = self.step + spec.checkpoint_every
        try:
            while self.step < spec.total_steps:
                before = self.step
                self.vector_step()
                last = self.step >= spec.total_steps
                if self.step // spec.log_every > before // spec.log_every or last:
                    self.log()
                if self.step // spec.eval_every > before // spec.eval_every or last:
                    self.evaluate()
                boundary = self.num_envs > 1 or self.ended.all()  # one env: at an episode end (module docstring)
                if boundary and self.step >= next_checkpoint and not last:
                    self.checkpoint()
                    next_checkpoint = self.step + spec.checkpoint_every
                self.progress(force=last)
            return self.finish()  # before close: the last checkpoint reads the envs' state
        except KeyboardInterrupt:
            self.save_state("interrupted", reason="interrupted by the user; rerun the same command to resume")
            raise
        except NonFiniteLoss as exc:
            return self.fail(str(exc))
        except Exception as exc:
            store.atomic_write_bytes(self.files.error_log, traceback.format_exc().encode())
            return self.fail(f"{type(exc).__name__}: {exc}".splitlines()[0] + f" (traceback in {self.files.error_log.name})")
        finally:
            self.close()

    def fail(self, reason: str) -> dict[str, Any]:
        self.save_tables()
        self.save_state("failed", reason=reason)
        self.report({"kind": "end", "seed": self.spec.seed, "status": "failed"})
        return {"status": "failed", "reason": reason, "steps": self.step}

    def finish(self) -> dict[str, Any]:
        self.checkpoint()
        sps = round((self.step - self.start_step) / max(time.perf_counter() - self.t_start, 1e-9), 2)
        with contextlib.suppress(FileNotFoundError):
            self.files.error_log.unlink()  # a failure this run has now recovered from
        self.save_state("done", sps=sps)
        self.report({"kind": "end", "seed": self.spec.seed, "status": "done", "step": self.step, "total": self.spec.total_steps,
                     "last_return": self.last_return})
        return {"status": "done", "steps": self.step, "final_return": self.last_return}

    def open_tracker(self) -> None:
        """Start the run's trackers (`--track`) and send them the stored rows they have not had; a tracker
        that cannot start is one warning line, and the run trains without it (train/tracking.py)."""
        if not self.spec.track.backends:
            return
        from sombench.train.tracking import Tracker

        try:
            record = store.read_json(self.files.config)
        except (OSError, ValueError):
            record = {"run": self.spec.identity(), "variant": self.spec.variant}
        self.tracker = Tracker.start(self.spec, self.files, record, self.train_rows, self.eval_rows)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # an async worker already gone (Ctrl-C reaches it too) is not an error
            self.envs.close(terminate=True)
        self.eval_env.close()
        if self.tracker:
            self.tracker.close()
            self.tracker = None


class CheckpointMismatch(Exception):
    """The checkpoint was written by a run with another identity."""


class RecentRate:
    """Env steps per second over the last ~10 s (an exponential average of per-interval rates), so the
    progress bar's speed and ETA follow the current phase rather than the run's average."""

    def __init__(self, every: float = 0.5, horizon: float = 10.0):
        self.every, self.horizon = every, horizon
        self.t = self.step = None
        self.rate: float | None = None

    def due(self, now: float) -> bool:
        return self.t is None or now - self.t >= self.every

    def update(self, now: float, step: int) -> None:
        if self.t is not None and now > self.t and step > self.step:
            inst = (step - self.step) / (now - self.t)
            w = min(1.0, (now - self.t) / self.horizon)
            self.rate = inst if self.rate is None else (1 - w) * self.rate + w * inst
        self.t, self.step = now, step


def _rows_upto(frame: pd.DataFrame, upto: int) -> list[dict[str, Any]]:
    return frame[frame["env_step"] <= upto].to_dict("records") if len(frame) else []
