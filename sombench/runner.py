"""Train one seed of one algorithm on one environment, resumably.

Semantics (Gymnasium): the critic bootstraps through time-limit truncation and stops only at true
termination, so the buffer stores `terminated`, never `truncated`. The first `warmup_steps` env
steps use uniform random actions in [-1, 1]^d; from then on the algorithm acts and trains once
per env step. Every `eval_every` steps (and at the last step) the algorithm's evaluation mode runs
`eval_episodes` episodes on a separate env instance, each reset with a seed derived from
(run seed, env step, episode), so evaluation never disturbs training and is itself reproducible.

Checkpoints are taken at the first episode boundary at or after every `checkpoint_every` steps.
At a boundary the only env state left is its RNG (the next `reset` draws from it), so a checkpoint
holding the networks, optimizers, buffer, every RNG state and the counters lets a resumed run
continue exactly as if it had never stopped: same seed, same machine, same numbers. CSV rows are
kept in memory and the CSVs rewritten atomically; on resume, rows past the checkpoint are dropped
(they are recomputed), so no step is ever duplicated or lost.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import algorithms
from algorithms.common.spaces import ActionScaler
from sombench import store
from sombench.envs import describe_env, make_env
from sombench.overrides import apply_overrides
from sombench.provenance import provenance

CHECKPOINT_FORMAT = 1
Report = Callable[[dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines one seed's run. Picklable, so worker processes can take it."""

    algo: str
    env_id: str
    seed: int
    total_steps: int
    eval_every: int = 5_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    log_every: int = 1_000
    device: str = "cpu"
    threads: int = 1
    set_pairs: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    """The command line that started this run (recorded, not part of its identity)."""

    def config(self):
        return apply_overrides(algorithms.get(self.algo).Config, list(self.set_pairs))[0]

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun to resume this run (not device, threads or checkpointing)."""
        return {
            "algo": self.algo,
            "env": self.env_id,
            "seed": self.seed,
            "total_steps": self.total_steps,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "log_every": self.log_every,
            "algo_config": json_ready(dataclasses.asdict(self.config())),
        }


def json_ready(obj: Any) -> Any:
    """Tuples become lists, as JSON will make them, so identities compare equal after a round trip."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


class NonFiniteLoss(Exception):
    pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluation_seed(seed: int, env_step: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, env_step, episode]).generate_state(1)[0])


def flat(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def evaluate(algo, env, scaler: ActionScaler, episodes: int, seed: int, env_step: int) -> np.ndarray:
    """Undiscounted returns of `episodes` episodes in the algorithm's evaluation mode."""
    returns = np.zeros(episodes)
    for ep in range(episodes):
        obs, _ = env.reset(seed=evaluation_seed(seed, env_step, ep))
        done = False
        while not done:
            action = algo.act(flat(obs), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
            returns[ep] += float(reward)
            done = terminated or truncated
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
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = state["count"]


def _read_rows(path: Path, upto: int) -> list[dict[str, Any]]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    frame = pd.read_csv(path)
    return frame[frame["env_step"] <= upto].to_dict("records")


def run_seed(spec: RunSpec, root: Path, report: Report | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) one seed; returns an outcome dict. Never raises for a failed run."""
    run = store.run_dir(root, spec.env_id, spec.algo, spec.seed)
    outcome = {"seed": spec.seed, "run": str(run)}
    state = store.read_state(run)
    if state and state.get("state") == "done":
        return {**outcome, "status": "skipped", "steps": state.get("env_step"), "final_return": state.get("last_return")}
    run.mkdir(parents=True, exist_ok=True)
    try:
        store.acquire_lock(run)
    except store.RunLocked as exc:
        return {**outcome, "status": "refused", "reason": str(exc)}
    store.remove_stale_temps(run)  # we hold the lock: any temp file is a dead writer's
    try:
        return {**outcome, **_train(spec, run, report or (lambda event: None))}
    finally:
        store.release_lock(run)


def _train(spec: RunSpec, run: Path, report: Report) -> dict[str, Any]:
    torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    cls = algorithms.get(spec.algo)
    config = spec.config()
    info = describe_env(spec.env_id)
    env, eval_env = make_env(spec.env_id), make_env(spec.env_id)
    scaler = ActionScaler(info.act_low, info.act_high)
    seed_everything(spec.seed)
    algo = cls(info.obs_dim, info.act_dim, config, device)
    action_rng = np.random.default_rng(spec.seed)
    window = MetricWindow()
    eval_rows: list[dict[str, Any]] = []
    train_rows: list[dict[str, Any]] = []
    step, episodes, wall_before = 0, 0, 0.0
    first_reset_seed: int | None = spec.seed
    last_return = math.nan
    ckpt_path = run / "checkpoint.pt"

    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
            algo.load_state_dict(ckpt["algo"])
        except Exception as exc:
            reason = f"checkpoint unreadable ({type(exc).__name__}); delete {ckpt_path} to restart this seed"
            store.write_state(run, state="failed", env_step=0, total_steps=spec.total_steps, reason=reason)
            return {"status": "failed", "reason": reason}
        step, episodes, wall_before = ckpt["step"], ckpt["episodes"], ckpt["wall_s"]
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        action_rng.bit_generator.state = rng["actions"]
        env_rng = np.random.Generator(np.random.PCG64())
        env_rng.bit_generator.state = rng["env"]
        env.unwrapped.np_random = env_rng
        window.load_state_dict(ckpt["metrics"], device)
        eval_rows = _read_rows(run / "eval.csv", step)
        train_rows = _read_rows(run / "train.csv", step)
        if eval_rows:
            last_return = eval_rows[-1]["return_mean"]
        first_reset_seed = None
    else:
        store.atomic_write_json(run / "config.json", {"run": spec.identity(), "device": spec.device, "threads": spec.threads,
                                                     "checkpoint_every": spec.checkpoint_every, "provenance": provenance(device, spec.command)})

    start_step, t_start = step, time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - t_start

    def save_tables() -> None:
        store.atomic_write_csv(run / "eval.csv", eval_rows, store.EVAL_COLUMNS)
        store.atomic_write_csv(run / "train.csv", train_rows)

    def save_state(state: str, **extra: Any) -> None:
        store.write_state(run, state=state, env_step=step, total_steps=spec.total_steps, episodes=episodes,
                          last_return=None if math.isnan(last_return) else last_return, **extra)

    def save_checkpoint() -> None:
        store.atomic_torch_save(ckpt_path, {
            "format": CHECKPOINT_FORMAT,
            "identity": spec.identity(),
            "step": step,
            "episodes": episodes,
            "wall_s": wall(),
            "algo": algo.state_dict(),
            "metrics": window.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "actions": action_rng.bit_generator.state,
                "env": env.unwrapped.np_random.bit_generator.state,
            },
        })

    save_state("running")
    report({"kind": "start", "seed": spec.seed, "step": step, "total": spec.total_steps, "last_return": last_return})
    next_checkpoint = step + spec.checkpoint_every
    obs = None
    last_report_t = time.perf_counter()
    try:
        while step < spec.total_steps:
            if obs is None:
                raw_obs, _ = env.reset(seed=first_reset_seed)
                obs, first_reset_seed = flat(raw_obs), None
            if step < algo.warmup_steps:
                action = action_rng.uniform(-1.0, 1.0, info.act_dim).astype(np.float32)
            else:
                action = np.clip(algo.act(obs, deterministic=False), -1.0, 1.0)
            raw_next, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
            next_obs = flat(raw_next)
            algo.observe(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
            obs = None if (terminated or truncated) else next_obs
            episodes += obs is None
            step += 1

            if step >= algo.warmup_steps:
                metrics = algo.train_step()
                if metrics:
                    window.add(metrics)
            if step % spec.log_every == 0 or step == spec.total_steps:
                means = window.flush()
                if means:
                    bad = [k for k, v in means.items() if not math.isfinite(v)]
                    if bad:
                        raise NonFiniteLoss(f"non-finite {', '.join(bad)} by env step {step}")
                    train_rows.append({"env_step": step, **means, "wall_s": round(wall(), 3)})
            if step % spec.eval_every == 0 or step == spec.total_steps:
                returns = evaluate(algo, eval_env, scaler, spec.eval_episodes, spec.seed, step)
                last_return = float(returns.mean())
                eval_rows.append({"env_step": step, "return_mean": last_return, "return_std": float(returns.std()),
                                  "episodes": spec.eval_episodes, "wall_s": round(wall(), 3)})
                save_tables()
                save_state("running")
            if obs is None and step >= next_checkpoint and step < spec.total_steps:
                save_tables()
                save_checkpoint()
                next_checkpoint = step + spec.checkpoint_every
            now = time.perf_counter()
            if now - last_report_t > 0.5 or step == spec.total_steps:
                report({"kind": "progress", "seed": spec.seed, "step": step, "total": spec.total_steps,
                        "sps": (step - start_step) / max(now - t_start, 1e-9), "last_return": last_return})
                last_report_t = now
    except KeyboardInterrupt:
        save_state("interrupted", reason="interrupted by the user")
        raise
    except NonFiniteLoss as exc:
        save_tables()
        save_state("failed", reason=str(exc))
        report({"kind": "end", "seed": spec.seed, "status": "failed"})
        return {"status": "failed", "reason": str(exc), "steps": step}
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        store.atomic_write_bytes(run / "error.log", traceback.format_exc().encode())
        save_tables()
        save_state("failed", reason=reason + " (traceback in error.log)")
        report({"kind": "end", "seed": spec.seed, "status": "failed"})
        return {"status": "failed", "reason": reason, "steps": step}
    finally:
        env.close()
        eval_env.close()

    save_tables()
    save_checkpoint()
    save_state("done", sps=round((step - start_step) / max(time.perf_counter() - t_start, 1e-9), 2))
    report({"kind": "end", "seed": spec.seed, "status": "done"})
    return {"status": "done", "steps": step, "final_return": last_return}
