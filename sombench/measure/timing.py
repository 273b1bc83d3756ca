"""Timing one training update and one acting call of an algorithm: the one path `sombench latency`
(Table 2, sombench/measure/latency.py) and the cost projection (sombench/measure/cost.py) both take.

- Training: `algo.update(batch)` at the config's batch size on a random batch with the env's shapes,
  built once on the device, so the time is the update alone and not replay sampling. Algorithms whose
  work differs from update to update declare an `update_cycle`; each timed repeat runs that many
  consecutive updates and reports the mean per update.
- Acting: the whole path the runner takes per env step, from a numpy observation (batch 1) to the
  action the env receives: `scaler.to_env(algo.act(obs, deterministic=False))`.
- Warm-up calls are not timed; torch is seeded before the algorithm is built; on CUDA the device is
  synchronised before starting and before stopping every timed region; Python's garbage collector is
  off while timing, as `timeit` does.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from algorithms.common.buffer import Batch
from algorithms.common.spaces import ActionScaler
from sombench.analysis.stats import mean_ci
from sombench.envs import EnvInfo

WARMUP = 5
"""Untimed warm-up repeats before the timed ones (allocator, kernel selection, lazy initialisation)."""


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = WARMUP, sync: Callable[[], None] | None = None,
               calls_per_repeat: int = 1) -> np.ndarray:
    """Seconds per call of `fn`, one value per timed repeat.

    First `warmup * calls_per_repeat` untimed calls; then `repeats` timed regions, each running `fn`
    `calls_per_repeat` times and reporting the mean per call. `sync` (e.g. torch.cuda.synchronize)
    is called right before starting and right before stopping the clock of every region, so work
    still queued on a device is neither charged to the next region nor left out of this one.
    """
    if repeats <= 0 or calls_per_repeat <= 0 or warmup < 0:
        raise ValueError("repeats and calls_per_repeat must be positive and warmup >= 0")
    sync = sync or (lambda: None)
    for _ in range(warmup * calls_per_repeat):
        fn()
    seconds = np.empty(repeats, dtype=np.float64)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            sync()
            start = time.perf_counter()
            for _ in range(calls_per_repeat):
                fn()
            sync()
            seconds[i] = (time.perf_counter() - start) / calls_per_repeat
    finally:
        if gc_was_enabled:
            gc.enable()
    return seconds


@dataclasses.dataclass(frozen=True)
class Timing:
    """Summary of one measurement, in milliseconds."""

    mean_ms: float
    ci_ms: float
    """Half-width of the 95% Student-t CI of the mean (NaN with a single repeat)."""
    median_ms: float
    n: int


def timing_stats(seconds: Sequence[float]) -> Timing:
    """Mean, 95% CI half-width and median in ms of timings given in seconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    mean, half = mean_ci(ms)
    return Timing(mean, half, float(np.median(ms)) if ms.size else math.nan, int(ms.size))


def random_batch(obs_dim: int, act_dim: int, batch_size: int, device: torch.device, seed: int = 0) -> Batch:
    """A batch of random transitions (actions in [-1, 1], none terminal) on `device`."""
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device)

    action = (torch.rand(batch_size, act_dim, generator=gen) * 2 - 1).to(device)
    return Batch(obs=normal(batch_size, obs_dim), action=action, reward=normal(batch_size),
                 next_obs=normal(batch_size, obs_dim), terminated=torch.zeros(batch_size, device=device))


def device_sync(device: torch.device) -> Callable[[], None] | None:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None


def update_cycle(cls: type) -> int:
    """Consecutive updates that make one full cycle of the algorithm's schedule (1 for most)."""
    return max(1, int(getattr(cls, "update_cycle", 1)))


def batch_size(config: Any) -> int:
    return int(getattr(config, "batch_size", 256))


@dataclasses.dataclass
class UpdateActTimes:
    """Seconds per update and per acting call, one value per timed repeat, and the algorithm timed."""

    train: np.ndarray
    infer: np.ndarray
    algo: Any
    compiled_methods: list[str]
    """The methods torch.compile built (empty when not compiled or when it fell back to eager)."""


def time_update_and_act(cls: type, config: Any, info: EnvInfo, device: torch.device, repeats: int, warmup: int = WARMUP,
                        seed: int = 0, compiled: bool = False, warn: Callable[[str], None] | None = None) -> UpdateActTimes:
    """Build `cls` with `config` at `info`'s shapes (torch seeded with `seed`), optionally compile it, and time
    one update (its whole update cycle per repeat, mean per update) and one acting call (module docstring). An
    algorithm without `update(batch)` (the bare `Algorithm` of a plug-in trains through `train_step` alone) gets
    NaN update times: unknown, shown as n/a, and left out of projections."""
    torch.manual_seed(seed)
    algo = cls(info.obs_dim, info.act_dim, config, device)
    names = algo.compile(warn=warn) if compiled else []
    batch = random_batch(info.obs_dim, info.act_dim, batch_size(algo.config), device, seed)
    scaler = ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype)
    obs = np.random.default_rng(seed).standard_normal(info.obs_dim).astype(np.float32)
    sync = device_sync(device)
    # the warm-up runs every schedule phase of the cycle at least once, so compilation is never timed
    if callable(getattr(algo, "update", None)):
        train = time_calls(lambda: algo.update(batch), repeats, warmup, sync, calls_per_repeat=update_cycle(cls))
    else:  # an algorithm with `train_step` alone (a plug-in on the bare Algorithm): no update on a given batch to time
        train = np.full(repeats, np.nan)
    infer = time_calls(lambda: scaler.to_env(algo.act(obs, deterministic=False)), repeats, warmup, sync)
    return UpdateActTimes(train, infer, algo, list(names))
