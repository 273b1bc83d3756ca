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

Statistics: mean ± 95% CI half-width (Student t, n - 1 dof, `sombench.stats.mean_ci`) over the
repeats, as the paper reports over 30 runs, and the median, which a stray slow repeat cannot move.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import io
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Group

import algorithms
from algorithms.common.buffer import Batch
from algorithms.common.capabilities import Profiled
from algorithms.common.spaces import ActionScaler
from sombench.render import grid as render
from sombench.runs import store
from sombench.render.grid import Grid
from sombench.envs import EnvInfo
from sombench.runs.provenance import cpu_model
from sombench.analysis.stats import mean_ci

FORMATS = ("rich", "md", "csv", "json")
DEFAULT_ENV = "HalfCheetah-v4"
DEFAULT_REPEATS = 30  # the paper's "30 runs"
WARMUP = 5
REFERENCE = "som"  # ratio columns are each algorithm / SOM, as the paper's claim is relative to SOM
PAPER_MACHINE = "NVIDIA RTX 4090, AMD Ryzen Threadripper PRO 5995WX"
PAPER_ENV = "HalfCheetah-v4"
CSV_COLUMNS = ["algo", "env", "T_d", "N", "batch_size", "update_cycle", "repeats", "warmup",
               "train_ms_mean", "train_ms_ci95", "train_ms_median", "infer_ms_mean", "infer_ms_ci95", "infer_ms_median",
               "train_compiled_ms_mean", "train_compiled_ms_ci95", "train_compiled_ms_median",
               "infer_compiled_ms_mean", "infer_compiled_ms_ci95", "infer_compiled_ms_median", "compiled_methods",
               "bare_forwards", "bare_forwards_ms_median", "device", "gpu", "cpu", "torch_threads", "torch_version", "compiled", "timestamp"]


# -- timing -------------------------------------------------------------------------------------
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


def _time_algorithm(cls: type, info: EnvInfo, device: torch.device, repeats: int, warmup: int, seed: int,
                    compiled: bool, warn: Callable[[str], None] | None) -> tuple[Timing, Timing, Any, list[str]]:
    torch.manual_seed(seed)
    algo = cls(info.obs_dim, info.act_dim, cls.Config(), device)
    names = algo.compile(warn=warn) if compiled else []
    batch = random_batch(info.obs_dim, info.act_dim, int(getattr(algo.config, "batch_size", 256)), device, seed)
    scaler = ActionScaler(info.act_low, info.act_high)
    obs = np.random.default_rng(seed).standard_normal(info.obs_dim).astype(np.float32)
    sync = device_sync(device)
    cycle = max(1, int(getattr(cls, "update_cycle", 1)))
    # the warm-up runs every schedule phase of the cycle at least once, so compilation is never timed
    train = time_calls(lambda: algo.update(batch), repeats, warmup, sync, calls_per_repeat=cycle)
    infer = time_calls(lambda: scaler.to_env(algo.act(obs, deterministic=False)), repeats, warmup, sync)
    return timing_stats(train), timing_stats(infer), algo, names


def measure(cls: type, info: EnvInfo, device: torch.device, repeats: int, warmup: int = WARMUP, seed: int = 0,
            compiled: bool = False, warn: Callable[[str], None] | None = None) -> AlgoLatency:
    """Time one training update and one acting call of `cls` built with its paper defaults; with `compiled`,
    time a second instance again after `algo.compile()` (the same seed, batch and observation: eager and
    compiled are treated alike). `Profiled` algorithms also get their bare acting forwards timed."""
    train, infer, algo, _ = _time_algorithm(cls, info, device, repeats, warmup, seed, False, warn)
    bare = {}
    if isinstance(algo, Profiled):
        sync = device_sync(device)
        with torch.no_grad():
            for name, call in algo.bare_forwards(int(algo.particles)).items():
                bare[name] = timing_stats(time_calls(call, repeats, warmup, sync))
    row = AlgoLatency(cls.name, cls.generation_steps, int(algo.particles), int(getattr(algo.config, "batch_size", 256)),
                      max(1, int(getattr(cls, "update_cycle", 1))), train, infer, bare=bare)
    if not compiled:
        return row
    del algo
    gc.collect()
    train_c, infer_c, _, names = _time_algorithm(cls, info, device, repeats, warmup, seed, True, warn)
    return dataclasses.replace(row, train_compiled=train_c, infer_compiled=infer_c, compiled_methods=tuple(names))


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
    batch = random_batch(info.obs_dim, info.act_dim, int(getattr(algo.config, "batch_size", 256)), device, seed)
    sync = device_sync(device)
    cycle = max(1, int(getattr(cls, "update_cycle", 1)))
    whole = timing_stats(time_calls(lambda: algo.update(batch), repeats, warmup, sync, calls_per_repeat=cycle))
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
                warn: Callable[[str], None] | None = None) -> LatencyReport:
    """Measure every class in turn (default warm-up: WARMUP repeats), eager and, with `compiled`, compiled."""
    warmup = WARMUP if warmup is None else warmup
    started = dt.datetime.now(dt.timezone.utc)
    rows = []
    for name, cls in classes.items():
        if on_start:
            on_start(name)
        rows.append(measure(cls, info, device, repeats, warmup, compiled=compiled, warn=warn))
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
    return Path(results) / "latency" / f"{safe(report.env)}_{safe(report.meta['device'].replace(':', ''))}_{stamp}.csv"


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
def paper_table2() -> pd.DataFrame:
    """The paper's Table 2: algo, T_d, N, train_ms, train_ci, infer_ms, infer_ci (names as printed)."""
    return pd.read_csv(Path(str(resources.files("sombench") / "data" / "paper_table2.csv")))


def ratios_to(values: dict[str, float], reference: str = REFERENCE) -> dict[str, float] | None:
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


def _order(names: list[str], key: dict[str, float]) -> str:
    return " < ".join(sorted(names, key=lambda n: key[n]))


def compare(report: LatencyReport) -> Comparison:
    ours_train = {r.algo: r.train.mean_ms for r in report.rows}
    ours_infer = {r.algo: r.infer.mean_ms for r in report.rows}
    paper = paper_table2()
    paper["train_ratio"] = paper["train_ms"] / paper.loc[paper["algo"].str.lower() == REFERENCE, "train_ms"].iloc[0]
    paper["infer_ratio"] = paper["infer_ms"] / paper.loc[paper["algo"].str.lower() == REFERENCE, "infer_ms"].iloc[0]
    by_lower = {a.lower(): a for a in ours_train}
    paper["ours"] = [by_lower.get(a.lower()) for a in paper["algo"]]

    notes = []
    train_ratio, infer_ratio = ratios_to(ours_train), ratios_to(ours_infer)
    if train_ratio is None:
        registered = REFERENCE in algorithms.load_all()
        how = "add it with --algos" if registered else "it is not a registered algorithm"
        notes.append(f"Our × SOM columns are n/a: {REFERENCE} was not measured ({how}).")
    else:
        notes.append("× SOM: each algorithm's mean time / SOM's mean time, ours on this machine, the paper's on its.")
    if report.env != PAPER_ENV:
        notes.append(f"The paper measured on {PAPER_ENV}; these measurements use {report.env}'s shapes.")
    common = paper[paper["ours"].notna()]
    if len(common) >= 2:
        names = list(common["ours"])
        for label, ours, column in (("Training", ours_train, "train_ms"), ("Inference", ours_infer, "infer_ms")):
            theirs = dict(zip(common["ours"], common[column]))
            a, b = _order(names, ours), _order(names, theirs)
            verdict = "same order" if a == b else "order differs"
            notes.append(f"{label} time, fastest first: ours {a}; paper {b} ({verdict}).")
    elif len(common) == 1:
        notes.append(f"Only {common['ours'].iloc[0]} is both measured here and in the paper's Table 2: no ordering to compare.")
    else:
        notes.append("None of the measured algorithms is in the paper's Table 2: no ordering to compare.")
    return Comparison(train_ratio, infer_ratio, paper, notes)


# -- rendering ----------------------------------------------------------------------------------
def _ms(mean: float, ci: float = math.nan) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {ci:.3f}" if math.isfinite(ci) else f"{mean:.3f}"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None and math.isfinite(value) else "n/a"


def _fastest(values: list[float]) -> dict[int, int]:
    """Row index -> 1 (fastest) or 2 (second fastest), as the paper marks its Table 2."""
    order = sorted((v, i) for i, v in enumerate(values) if math.isfinite(v))
    return {i: rank for rank, (_, i) in enumerate(order[:2], start=1)}


def _compiled_ratios(report: LatencyReport) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    nan = math.nan
    return (ratios_to({r.algo: r.train_compiled.mean_ms if r.train_compiled else nan for r in report.rows}),
            ratios_to({r.algo: r.infer_compiled.mean_ms if r.infer_compiled else nan for r in report.rows}))


def our_grid(report: LatencyReport, comparison: Comparison | None = None) -> Grid:
    compiled = bool(report.meta.get("compiled"))
    header = ["Algorithm", "T_d", "N", "Training (ms)", "median", "Inference (ms)", "median"]
    if compiled:
        header += ["Training compiled (ms)", "Inference compiled (ms)"]
    if comparison is not None:
        header += ["Train × SOM", "Infer × SOM"] + (["Train c. × SOM c.", "Infer c. × SOM c."] if compiled else [])
    train_rank = _fastest([r.train.mean_ms for r in report.rows])
    infer_rank = _fastest([r.infer.mean_ms for r in report.rows])
    train_c_ratio, infer_c_ratio = _compiled_ratios(report) if compiled else (None, None)
    rows, marks = [], []
    for i, r in enumerate(report.rows):
        row = [r.algo, "-" if r.generation_steps is None else str(r.generation_steps), str(r.particles),
               _ms(r.train.mean_ms, r.train.ci_ms), _ms(r.train.median_ms), _ms(r.infer.mean_ms, r.infer.ci_ms), _ms(r.infer.median_ms)]
        mark = [None, None, None, train_rank.get(i), None, infer_rank.get(i), None]
        if compiled:
            tc, ic = r.train_compiled, r.infer_compiled
            fell_back = " (eager)" if tc is not None and not r.compiled_methods else ""
            row += [_ms(tc.mean_ms, tc.ci_ms) + fell_back if tc else "n/a", _ms(ic.mean_ms, ic.ci_ms) + fell_back if ic else "n/a"]
            mark += [None, None]
        if comparison is not None:
            row += [_ratio((comparison.train_ratio or {}).get(r.algo)), _ratio((comparison.infer_ratio or {}).get(r.algo))]
            mark += [None, None]
            if compiled:
                row += [_ratio((train_c_ratio or {}).get(r.algo)), _ratio((infer_c_ratio or {}).get(r.algo))]
                mark += [None, None]
        rows.append(row)
        marks.append(mark)
    m = report.meta
    batches = sorted({r.batch_size for r in report.rows})
    cycles = [f"{r.algo} {r.update_cycle} consecutive updates" for r in report.rows if r.update_cycle > 1]
    cycle_note = (f"each timed repeat runs the algorithm's update cycle ({', '.join(cycles)}) and reports the "
                  "mean per update, so delayed updates are averaged in" if cycles else "each timed repeat is one update")
    machine = f"{m['device']}" + (f" ({m['gpu']})" if m["gpu"] else "")
    notes = [
        f"Training: one update at batch {', '.join(map(str, batches))} on a random batch with {report.env}'s shapes; {cycle_note}.",
        "Inference: one acting call at batch 1, from a numpy observation to the env action (stochastic mode).",
        f"Mean ± 95% CI (Student t, n-1 dof) over {m['repeats']} repeats after {m['warmup']} untimed warm-up repeats; "
        "fastest in bold, second underlined.",
        f"Device {machine}; CPU {m['cpu']}; torch {m['torch_version']}, {m['torch_threads']} thread(s); "
        f"compiled: {'eager and compiled columns (torch.compile, inductor default mode on CPU, CUDA graphs on CUDA)' if m['compiled'] else 'no'}; "
        f"{m['timestamp']}.",
    ]
    if compiled:
        notes.append("Compiled: a second instance built with the same seed, `algo.compile()` on its act and update paths, "
                     "timed after the same warm-up (which runs every schedule phase, so compilation is not timed); "
                     "'(eager)' marks a fallback.")
    if comparison is not None:
        notes += comparison.notes
    return Grid(f"Training and inference time on {report.env} ({machine})", header, rows, marks, notes)


def acting_grid(report: LatencyReport) -> Grid | None:
    """Acting against the bare network calls it is made of (medians), for algorithms that declare them."""
    rows = [r for r in report.rows if r.bare]
    if not rows:
        return None
    compiled = bool(report.meta.get("compiled"))
    names = sorted({n for r in rows for n in r.bare})
    header = ["Algorithm", "batch", *names, "bare sum", "act", "act / bare"] + (["act compiled", "compiled / bare"] if compiled else [])
    out = []
    for r in rows:
        bare = sum(t.median_ms for t in r.bare.values())
        row = [r.algo, str(r.particles), *[_ms(r.bare[n].median_ms) if n in r.bare else "-" for n in names], _ms(bare),
               _ms(r.infer.median_ms), _ratio(r.infer.median_ms / bare)]
        if compiled:
            ic = r.infer_compiled
            row += [_ms(ic.median_ms), _ratio(ic.median_ms / bare)] if ic else ["n/a", "n/a"]
        out.append(row)
    notes = ["Medians. Bare: each network call alone (eager, no_grad) on N random inputs at the acting batch N; "
             "act: the whole acting call at batch 1 as above (noise, N candidates, critic, argmax, exploration noise, "
             "numpy round trip)."]
    return Grid(f"Acting against its bare forwards ({report.env})", header, out, [[None] * len(header)] * len(out), notes)


def breakdown_grid(algo: str, env: str, phases: list[PhaseTiming]) -> Grid:
    """Each part of one update beside its network evaluations as bare matrix products (medians)."""
    header = ["part of the update", "per update", "measured (ms)", "bare products (ms)", "measured / bare", "share of update"]
    whole = phases[0].measured.median_ms
    rows = []
    top = 0.0
    for p in phases:
        label = p.name if p.parent is None or p.name == "whole update" else f"  of which {p.name}"
        share = p.measured.median_ms * p.per_update / whole if whole > 0 else math.nan
        bare = p.products.median_ms if p.products else math.nan
        if p.parent is None and p.name != "whole update":
            top += p.measured.median_ms * p.per_update
        rows.append([label, f"{p.per_update:g}", _ms(p.measured.median_ms), _ms(bare) if p.products else "-",
                     _ratio(p.measured.median_ms / bare) if p.products else "-", f"{100 * share:.0f}%"])
    rows.append(["sum of the parts", "", _ms(top), "", "", f"{100 * top / whole:.0f}%" if whole > 0 else "n/a"])
    notes = ["Medians. Each part runs alone on the algorithm (it steps optimizers as the update does); 'of which' rows are "
             "inside the part above them. Bare products: the part's network evaluations (forwards, input and weight "
             "gradients) as torch.bmm on random operands allocated beforehand, no biases, activations or anything else."]
    return Grid(f"{algo}: one update on {env}, part by part", header, rows, [[None] * len(header)] * len(rows), notes)


def paper_grid(comparison: Comparison) -> Grid:
    paper = comparison.paper
    header = ["Algorithm", "T_d", "N", "Training (ms)", "Inference (ms)", "Train × SOM", "Infer × SOM"]
    train_rank, infer_rank = _fastest(list(paper["train_ms"])), _fastest(list(paper["infer_ms"]))
    rows, marks = [], []
    for i, r in enumerate(paper.to_dict("records")):
        rows.append([r["algo"], str(r["T_d"]), str(r["N"]), _ms(r["train_ms"], r["train_ci"]), _ms(r["infer_ms"], r["infer_ci"]),
                     _ratio(r["train_ratio"]), _ratio(r["infer_ratio"])])
        marks.append([None, None, None, train_rank.get(i), infer_rank.get(i), None, None])
    notes = [f"As printed in the paper: {PAPER_ENV}, training at batch 256, inference at batch 1, mean ± 95% CI over 30 runs, "
             f"on {PAPER_MACHINE}."]
    return Grid(f"SOM paper, Table 2 ({PAPER_MACHINE.split(',')[0]})", header, rows, marks, notes)


def _grids(report: LatencyReport, comparison: Comparison | None, extra: list[Grid] | None) -> list[Grid]:
    grids = [our_grid(report, comparison)]
    acting = acting_grid(report)
    if acting is not None:
        grids.append(acting)
    grids += extra or []
    if comparison is not None:
        grids.append(paper_grid(comparison))
    return grids


def to_rich(report: LatencyReport, comparison: Comparison | None = None, extra: list[Grid] | None = None) -> Group:
    return Group(*[render.to_rich(g) for g in _grids(report, comparison, extra)])


def to_markdown(report: LatencyReport, comparison: Comparison | None = None, extra: list[Grid] | None = None) -> str:
    return "\n".join(render.to_markdown(g) for g in _grids(report, comparison, extra))


def _clean(value: Any) -> Any:
    """NaN becomes None (JSON null, an empty CSV cell); numpy scalars become Python ones."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _paper_records(comparison: Comparison) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in comparison.paper.to_dict("records")]


def to_csv(report: LatencyReport, comparison: Comparison | None = None) -> str:
    """Our rows (source=sombench, the stored columns); with a comparison, ratio columns and the paper's rows (source=paper)."""
    rows = [{"source": "sombench", **r} for r in csv_rows(report)]
    if comparison is not None:
        for row in rows:
            row["train_vs_som"] = (comparison.train_ratio or {}).get(row["algo"])
            row["infer_vs_som"] = (comparison.infer_ratio or {}).get(row["algo"])
        for r in _paper_records(comparison):
            rows.append({"source": "paper", "algo": r["algo"], "env": PAPER_ENV, "T_d": r["T_d"], "N": r["N"], "batch_size": 256,
                         "repeats": 30, "train_ms_mean": r["train_ms"], "train_ms_ci95": r["train_ci"],
                         "infer_ms_mean": r["infer_ms"], "infer_ms_ci95": r["infer_ci"], "device": "cuda", "gpu": "NVIDIA RTX 4090",
                         "cpu": "AMD Ryzen Threadripper PRO 5995WX", "train_vs_som": r["train_ratio"], "infer_vs_som": r["infer_ratio"]})
    columns = ["source", *CSV_COLUMNS] + (["train_vs_som", "infer_vs_som"] if comparison is not None else [])
    buf = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(buf, index=False)
    return buf.getvalue()


def to_json(report: LatencyReport, comparison: Comparison | None = None, csv_path: Path | None = None,
            breakdowns: dict[str, list[PhaseTiming]] | None = None) -> str:
    rows = [{k: _clean(v) for k, v in r.items() if k not in report.meta} for r in csv_rows(report)]
    payload: dict[str, Any] = {"env": report.env, **{k: _clean(v) for k, v in report.meta.items()},
                               "csv": str(csv_path) if csv_path else None, "rows": rows}
    grid = our_grid(report, comparison)
    payload["footnotes"] = grid.notes
    if comparison is not None:
        for row in rows:
            row["train_vs_som"] = _clean((comparison.train_ratio or {}).get(row["algo"]))
            row["infer_vs_som"] = _clean((comparison.infer_ratio or {}).get(row["algo"]))
        payload["paper"] = {"env": PAPER_ENV, "machine": PAPER_MACHINE, "repeats": 30, "rows": _paper_records(comparison)}
    acting = acting_grid(report)
    if acting is not None:
        payload["acting_vs_bare"] = [dict(zip(acting.header, row)) for row in acting.rows]
    if breakdowns:
        payload["breakdown"] = {name: [{"part": p.name, "parent": p.parent, "per_update": p.per_update,
                                        "measured_ms_median": _clean(p.measured.median_ms),
                                        "bare_products_ms_median": _clean(p.products.median_ms) if p.products else None}
                                       for p in phases] for name, phases in breakdowns.items()}
    return json.dumps(payload, indent=2, allow_nan=False)
