"""Table 2 of the SOM paper: training and inference time per algorithm.

What is timed, and why this way:

- Training: one call of `algo.update(batch)` at the algorithm's own batch size (256, Table 3) on a
  random batch with the env's shapes, built once on the device, so the time is the update alone and
  not replay sampling. Algorithms whose work differs from update to update (a policy delay of 2
  means the actor trains every other update) declare an `update_cycle`; each timed repeat runs that
  many consecutive updates and reports the mean per update, so the delays are averaged in rather
  than a repeat landing on a cheap or an expensive update by chance.
- Inference: the whole path the runner takes per env step, from a numpy observation (batch 1) to
  the action the env receives: `scaler.to_env(algo.act(obs, deterministic=False))`, device
  round trip included, because that is what interleaving inference with data collection costs.
- Each measurement is preceded by untimed warm-up calls (allocator, kernel selection, lazy
  initialisation), torch is seeded before each algorithm is built, `time.perf_counter` is the clock,
  and on CUDA the device is synchronised before starting and before stopping every timed region,
  so asynchronous kernel launches are not mistaken for finished work. Python's garbage collector is
  off while timing, as `timeit` does, so a collection does not land in one repeat at random.
- Each algorithm is built with its paper defaults (`cls.Config()`); its replay buffer is allocated
  lazily (`torch.empty`), so building one is cheap even at 1e6 transitions.

Statistics: mean ± 95% CI half-width (Student t, n - 1 dof, `sombench.analysis.stats.mean_ci`) over
the repeats, as the paper reports over 30 runs, and the median, which a stray slow repeat cannot move.

The timer and the update/acting path are sombench/measure/timing.py's, shared with the cost projection;
this module measures every algorithm, stores the CSV and compares with the paper's Table 2. Rendering
is sombench/render/latency.py's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import algorithms
from algorithms.common.capabilities import Profiled
from sombench.envs import EnvInfo
from sombench.measure.paper import DEFAULT_REFERENCE, PAPER_ENV, paper_table2, reference_label
from sombench.measure.timing import (
    WARMUP,
    Timing,
    batch_size,
    device_sync,
    random_batch,
    time_calls,
    time_update_and_act,
    timing_stats,
    update_cycle,
)
from sombench.runs import store
from sombench.runs.provenance import cpu_model

DEFAULT_ENV = "HalfCheetah-v4"
DEFAULT_REPEATS = 30  # the paper's "30 runs"
CSV_COLUMNS = ["algo", "env", "T_d", "N", "batch_size", "update_cycle", "repeats", "warmup",
               "train_ms_mean", "train_ms_ci95", "train_ms_median", "infer_ms_mean", "infer_ms_ci95", "infer_ms_median",
               "train_compiled_ms_mean", "train_compiled_ms_ci95", "train_compiled_ms_median",
               "infer_compiled_ms_mean", "infer_compiled_ms_ci95", "infer_compiled_ms_median", "compiled_methods",
               "bare_forwards", "bare_forwards_ms_median", "infer_batched_ms_per_env_step", "device", "gpu", "cpu", "torch_threads", "torch_version", "compiled", "timestamp"]


# -- measuring algorithms -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AlgoLatency:
    algo: str
    generation_steps: int | None
    """T_d; None for a policy that is not generative."""
    particles: int
    """N (best-of-N candidates per action)."""
    batch_size: int
    update_cycle: int
    train: Timing
    infer: Timing
    train_compiled: Timing | None = None
    """The same measurements with `--compile` (None: not measured)."""
    infer_compiled: Timing | None = None
    compiled_methods: tuple[str, ...] = ()
    """The methods torch.compile built ([] with --compile means it fell back to eager)."""
    bare: dict[str, Timing] = dataclasses.field(default_factory=dict)
    """The bare network calls of one acting call at the acting batch (algorithms that are `Profiled`)."""
    infer_batched: dict[int, Timing] = dataclasses.field(default_factory=dict)
    """N -> one acting call on N observations at once (`act_batch`, `--act-batch N`): what acting costs N
    vector envs per step; divide by N for the time per env step."""


@dataclasses.dataclass
class LatencyReport:
    env: str
    rows: list[AlgoLatency]
    started: dt.datetime
    meta: dict[str, Any]
    """device, gpu, cpu, torch_threads, torch_version, compiled, repeats, warmup, timestamp."""


def select_algorithms(classes: dict[str, type] | None) -> dict[str, type]:
    """The given classes (name -> class, in order), or every registered algorithm by name."""
    return dict(classes) if classes else dict(sorted(algorithms.load_all().items()))


def time_batched_acting(algo: Any, info: EnvInfo, device: torch.device, batches: tuple[int, ...], repeats: int,
                        warmup: int = WARMUP, seed: int = 0) -> dict[int, Timing]:
    """N -> seconds of one `act_batch` call (exploring, as the training loop acts) on N random observations: the
    acting cost of one step of N vector envs, host round trip included."""
    sync = device_sync(device)
    out = {}
    for n in batches:
        obs = np.random.default_rng(seed).standard_normal((n, info.obs_dim)).astype(np.float32)
        out[n] = timing_stats(time_calls(lambda obs=obs: algo.act_batch(obs, deterministic=False), repeats, warmup, sync))
    return out


def measure(cls: type, info: EnvInfo, device: torch.device, repeats: int, warmup: int = WARMUP, seed: int = 0,
            compiled: bool = False, warn: Callable[[str], None] | None = None, act_batches: tuple[int, ...] = ()) -> AlgoLatency:
    """Time one training update and one acting call of `cls` built with its paper defaults; with `compiled`,
    time a second instance again after `algo.compile()` (the same seed, batch and observation: eager and
    compiled are treated alike). `Profiled` algorithms also get their bare acting forwards timed, and each N of
    `act_batches` one eager acting call on N observations at once."""
    eager = time_update_and_act(cls, cls.Config(), info, device, repeats, warmup, seed, False, warn)
    algo = eager.algo
    batched = time_batched_acting(algo, info, device, tuple(act_batches), repeats, warmup, seed)
    bare = {}
    if isinstance(algo, Profiled):
        sync = device_sync(device)
        with torch.no_grad():
            for name, call in algo.bare_forwards(int(algo.particles)).items():
                bare[name] = timing_stats(time_calls(call, repeats, warmup, sync))
    row = AlgoLatency(cls.name, cls.generation_steps, int(algo.particles), batch_size(algo.config), update_cycle(cls),
                      timing_stats(eager.train), timing_stats(eager.infer), bare=bare, infer_batched=batched)
    if not compiled:
        return row
    del algo, eager
    gc.collect()
    done = time_update_and_act(cls, cls.Config(), info, device, repeats, warmup, seed, True, warn)
    return dataclasses.replace(row, train_compiled=timing_stats(done.train), infer_compiled=timing_stats(done.infer),
                               compiled_methods=tuple(done.compiled_methods))


@dataclasses.dataclass
class PhaseTiming:
    name: str
    parent: str | None
    per_update: float
    measured: Timing
    products: Timing | None
    """The phase's network evaluations as bare matrix products (None: it has none)."""


def time_products(shapes: list[tuple[int, int, int, int]], device: torch.device, repeats: int, warmup: int = WARMUP,
                  seed: int = 0) -> Timing | None:
    """Time the matrix products `shapes` ((groups, M, K, N): bmm of [g, M, K] by [g, K, N]) run back to back
    on random operands allocated beforehand: the cost of the network evaluations with nothing around them."""
    if not shapes:
        return None
    gen = torch.Generator().manual_seed(seed)
    operands = [(torch.randn(g, m, k, generator=gen).to(device), torch.randn(g, k, n, generator=gen).to(device))
                for g, m, k, n in shapes]

    def run() -> None:
        for a, b in operands:
            torch.bmm(a, b)

    return timing_stats(time_calls(run, repeats, warmup, device_sync(device)))


def measure_breakdown(cls: type, info: EnvInfo, device: torch.device, repeats: int, warmup: int = WARMUP,
                      seed: int = 0) -> list[PhaseTiming] | None:
    """Each part of one update of a `Profiled` algorithm (None for others) timed alone, beside its network
    evaluations as bare matrix products; the whole update is the first row."""
    torch.manual_seed(seed)
    algo = cls(info.obs_dim, info.act_dim, cls.Config(), device)
    if not isinstance(algo, Profiled):
        return None
    batch = random_batch(info.obs_dim, info.act_dim, batch_size(algo.config), device, seed)
    sync = device_sync(device)
    whole = timing_stats(time_calls(lambda: algo.update(batch), repeats, warmup, sync, calls_per_repeat=update_cycle(cls)))
    phases = algo.update_breakdown(batch)
    rows = [PhaseTiming("whole update", None, 1.0, whole,
                        time_products([p for ph in phases if ph.parent is None for p in ph.products], device, repeats, warmup))]
    for ph in phases:
        rows.append(PhaseTiming(ph.name, ph.parent, ph.per_update, timing_stats(time_calls(ph.run, repeats, warmup, sync)),
                                time_products(ph.products, device, repeats, warmup)))
    return rows


def machine_info(device: torch.device, compiled: bool = False) -> dict[str, Any]:
    return {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "compiled": bool(compiled),  # whether compiled columns were measured as well (--compile)
    }


def measure_all(classes: dict[str, type], info: EnvInfo, device: torch.device, repeats: int, warmup: int | None = None,
                on_start: Callable[[str], None] | None = None, compiled: bool = False,
                warn: Callable[[str], None] | None = None, act_batches: tuple[int, ...] = ()) -> LatencyReport:
    """Measure every class in turn (default warm-up: WARMUP repeats), eager and, with `compiled`, compiled."""
    warmup = WARMUP if warmup is None else warmup
    started = dt.datetime.now(dt.timezone.utc)
    rows = []
    for name, cls in classes.items():
        if on_start:
            on_start(name)
        rows.append(measure(cls, info, device, repeats, warmup, compiled=compiled, warn=warn, act_batches=act_batches))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    meta = {**machine_info(device, compiled), "repeats": repeats, "warmup": warmup, "timestamp": started.isoformat(timespec="seconds")}
    return LatencyReport(info.env_id, rows, started, meta)


# -- the results store --------------------------------------------------------------------------
def csv_rows(report: LatencyReport) -> list[dict[str, Any]]:
    """One row per algorithm: every number and the machine metadata (CSV_COLUMNS)."""
    m = report.meta
    return [{"algo": r.algo, "env": report.env, "T_d": r.generation_steps, "N": r.particles, "batch_size": r.batch_size,
             "update_cycle": r.update_cycle, "repeats": m["repeats"], "warmup": m["warmup"],
             "train_ms_mean": r.train.mean_ms, "train_ms_ci95": r.train.ci_ms, "train_ms_median": r.train.median_ms,
             "infer_ms_mean": r.infer.mean_ms, "infer_ms_ci95": r.infer.ci_ms, "infer_ms_median": r.infer.median_ms,
             **_compiled_cells(r), "bare_forwards": "+".join(r.bare) or None,
             "bare_forwards_ms_median": sum(t.median_ms for t in r.bare.values()) if r.bare else math.nan,
             "infer_batched_ms_per_env_step": ";".join(f"{n}={t.mean_ms / n:.6g}" for n, t in r.infer_batched.items()) or None,
             "device": m["device"], "gpu": m["gpu"], "cpu": m["cpu"], "torch_threads": m["torch_threads"],
             "torch_version": m["torch_version"], "compiled": m["compiled"], "timestamp": m["timestamp"]}
            for r in report.rows]


def _compiled_cells(r: AlgoLatency) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for kind, t in (("train", r.train_compiled), ("infer", r.infer_compiled)):
        cells[f"{kind}_compiled_ms_mean"] = t.mean_ms if t else math.nan
        cells[f"{kind}_compiled_ms_ci95"] = t.ci_ms if t else math.nan
        cells[f"{kind}_compiled_ms_median"] = t.median_ms if t else math.nan
    cells["compiled_methods"] = "+".join(r.compiled_methods) if r.train_compiled else None
    return cells


def store_path(results: Path, report: LatencyReport) -> Path:
    """<results>/latency/<env>_<device>_<UTC timestamp>.csv"""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text)

    stamp = report.started.strftime("%Y%m%dT%H%M%SZ")
    return store.Store(results).latency_dir() / f"{safe(report.env)}_{safe(report.meta['device'].replace(':', ''))}_{stamp}.csv"


def write_csv(results: Path, report: LatencyReport) -> Path:
    """Write the report into the store (which `store.init_store` has created) and return its path."""
    path = store_path(results, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 2
    while path.exists():  # two measurements started in the same second: keep both
        path = store_path(results, report).with_stem(f"{store_path(results, report).stem}-{n}")
        n += 1
    store.atomic_write_csv(path, csv_rows(report), CSV_COLUMNS)
    return path


# -- the paper's Table 2 and the comparison -----------------------------------------------------
def ratios_to(values: dict[str, float], reference: str = DEFAULT_REFERENCE) -> dict[str, float] | None:
    """Each value divided by the reference's (name matched case-insensitively); None if it is absent."""
    ref = next((v for k, v in values.items() if k.lower() == reference.lower()), None)
    if ref is None or not math.isfinite(ref) or ref <= 0:
        return None
    return {k: v / ref for k, v in values.items()}


@dataclasses.dataclass
class Comparison:
    """Ratio columns for our rows and the paper's, and notes on whether the paper's ordering holds."""

    train_ratio: dict[str, float] | None
    infer_ratio: dict[str, float] | None
    paper: pd.DataFrame
    """The paper's rows with train_ratio, infer_ratio and `ours` (the matching registered name or None)."""
    notes: list[str]
    reference: str = DEFAULT_REFERENCE
    """The algorithm every ratio divides by."""
    reference_label: str = "SOM"
    """Its name in column headers (`Train × SOM`)."""


def _order(names: list[str], key: dict[str, float]) -> str:
    return " < ".join(sorted(names, key=lambda n: key[n]))


def _paper_ratio(paper: pd.DataFrame, column: str, reference: str) -> pd.Series:
    ref = paper.loc[paper["algo"].str.lower() == reference.lower(), column]
    return paper[column] / ref.iloc[0] if len(ref) else pd.Series(math.nan, index=paper.index)


def compare(report: LatencyReport, reference: str = DEFAULT_REFERENCE) -> Comparison:
    """Our times and the paper's Table 2 as ratios to `reference` (default: SOM, as the paper), and notes
    on whether the paper's orderings hold here."""
    label = reference_label(reference)
    ours_train = {r.algo: r.train.mean_ms for r in report.rows}
    ours_infer = {r.algo: r.infer.mean_ms for r in report.rows}
    paper = paper_table2()
    paper["train_ratio"] = _paper_ratio(paper, "train_ms", reference)
    paper["infer_ratio"] = _paper_ratio(paper, "infer_ms", reference)
    by_lower = {a.lower(): a for a in ours_train}
    paper["ours"] = [by_lower.get(a.lower()) for a in paper["algo"]]

    notes = []
    train_ratio, infer_ratio = ratios_to(ours_train, reference), ratios_to(ours_infer, reference)
    if train_ratio is None:
        registered = reference in algorithms.load_all()
        how = "add it with --algos" if registered else "it is not a registered algorithm"
        notes.append(f"Our × {label} columns are n/a: {reference} was not measured ({how}).")
    else:
        notes.append(f"× {label}: each algorithm's mean time / {label}'s mean time, ours on this machine, the paper's on its.")
    if paper["train_ratio"].isna().all():
        notes.append(f"The paper's × {label} columns are n/a: its Table 2 has no {reference}.")
    if report.env != PAPER_ENV:
        notes.append(f"The paper measured on {PAPER_ENV}; these measurements use {report.env}'s shapes.")
    common = paper[paper["ours"].notna()]
    if len(common) >= 2:
        names = list(common["ours"])
        for what, ours, column in (("Training", ours_train, "train_ms"), ("Inference", ours_infer, "infer_ms")):
            theirs = dict(zip(common["ours"], common[column]))
            a, b = _order(names, ours), _order(names, theirs)
            verdict = "same order" if a == b else "order differs"
            notes.append(f"{what} time, fastest first: ours {a}; paper {b} ({verdict}).")
    elif len(common) == 1:
        notes.append(f"Only {common['ours'].iloc[0]} is both measured here and in the paper's Table 2: no ordering to compare.")
    else:
        notes.append("None of the measured algorithms is in the paper's Table 2: no ordering to compare.")
    return Comparison(train_ratio, infer_ratio, paper, notes, reference, label)
