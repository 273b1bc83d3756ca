"""`sombench regress`: a suite of small-budget runs of every registered algorithm, compared with the
reference bands (analysis/regress.py has the suites, the bands and the test)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.analysis import regress as rg
from sombench.app import common
from sombench.errors import InvalidValue


@dataclasses.dataclass
class RegressRequest:
    suite: str = "ci"
    algos: list[str] | None = None
    sets: list[str] = dataclasses.field(default_factory=list)
    """`key=value` overrides applied to every entry's runs (to check that a sabotaged config fails)."""
    update: bool = False
    bands: Path | None = None
    """Bands file; None: the one shipped in sombench/data/regress/bands.json."""
    results: Path | None = None
    """Results store for the runs; None: a temporary folder, removed afterwards."""
    workers: int | None = None
    threads: int = 1
    command: tuple[str, ...] = ()
    updates_per_step: str | float | None = None
    """`--updates-per-step R` for every entry whose algorithm has that field (PPO's entries run as recorded);
    like `sets`, an override of the recorded config."""
    track: Any = None
    """A runs.spec.Tracking: the experiment trackers (`--track`); None: none. Needs `results`: the logs live in the run folders."""
    num_envs: str | int | None = None
    """`--num-envs N` for every entry (an override of the recorded config, like `sets`)."""
    vector_mode: str = "sync"
    """`--vector-mode`: sync or async (changes no number)."""


@dataclasses.dataclass
class RegressResult:
    suite: str
    rows: list[dict[str, Any]]
    """Per entry: the entry, its finals, band and verdict (analysis/regress.py evaluate); empty with `update`."""
    runs: int
    elapsed_s: float
    missing: list[str]
    """Registered algorithms the suite has no entry for (only when no algorithms were named)."""
    updated: Path | None = None
    """The bands file rewritten (with `update`)."""
    entries: int = 0

    @property
    def bad(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["verdict"] in ("REGRESSED", "failed")]


def provenance_now(threads: int, workers: int) -> dict[str, Any]:
    """Where and when a band is measured: date, git commit, package versions, CPU, threads and workers."""
    import datetime as dt

    from sombench.runs.provenance import cpu_model, git_commit, package_versions

    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **git_commit(),
            "versions": package_versions(), "cpu": cpu_model(), "threads": threads, "workers": workers}


def entry_specs(entry: rg.Entry, extra_sets: list[str], threads: int, command: tuple[str, ...] = (), track=None,
                vector_mode: str = "sync") -> list:
    """The entry's RunSpecs: evaluation at half and at the end, one checkpoint, ten log rows, on the CPU."""
    schedule = common.Schedule(eval_every=max(1, entry.steps // 2), eval_episodes=entry.eval_episodes,
                               checkpoint_every=entry.steps, log_every=max(1, entry.steps // 10))
    return common.build_specs(entry.algo, entry.env, list(range(entry.seeds)), entry.steps, schedule=schedule, device="cpu",
                              threads=threads, sets=[*entry.sets, *extra_sets], preset=entry.preset, tag=None, command=command,
                              track=track, vector_mode=vector_mode)


@dataclasses.dataclass
class RegressPlan:
    request: RegressRequest
    entries: list[rg.Entry]
    specs: dict[str, list]
    """entry key -> its runs' specs"""
    flat: list
    """Every run's spec, entry by entry."""
    root: Path
    """The results store of the runs (a temporary folder when the request names none)."""
    workers: int
    bands_path: Path
    band_doc: dict[str, Any]
    missing: list[str]
    known: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)


def prepare(req: RegressRequest) -> RegressPlan:
    """Validate `req`, load the suite and bands, build every entry's specs and check the store (a
    temporary folder is created when `req.results` is None, and removed again on an error)."""
    entries = rg.load_suite(req.suite)
    names = common.split_names(req.algos)
    if names:
        for name in names:
            common.algorithm_class(name)
        entries = [e for e in entries if e.algo in names]
    missing = [] if names else sorted(set(common.algorithm_names()) - {e.algo for e in entries})
    common.check_positive("workers", req.workers)
    common.check_positive("threads", req.threads)
    if req.update and (req.sets or req.updates_per_step is not None or req.num_envs is not None):
        raise InvalidValue("update", "cannot be combined with overrides: they would be recorded as the reference config; "
                                     "change the suite file instead")
    bands_path = req.bands or rg.data_dir() / "bands.json"
    band_doc = rg.load_bands(bands_path)
    if req.track is not None and req.track.backends and req.results is None:
        raise InvalidValue("track", "needs --results DIR with regress: without it the runs, and the logs inside them, are removed afterwards")
    specs = {e.key: entry_specs(e, [*req.sets, *common.ratio_sets(e.algo, req.updates_per_step, required=False, sets=req.sets),
                                    *common.num_envs_sets(req.num_envs, req.sets)], req.threads, req.command, req.track, req.vector_mode)
             for e in entries}
    flat = [s for e in entries for s in specs[e.key]]
    root = req.results.absolute() if req.results else Path(tempfile.mkdtemp(prefix="sombench-regress-"))
    plan = RegressPlan(req, entries, specs, flat, root, req.workers or os.cpu_count() or 1, bands_path, band_doc, missing)
    try:
        plan.known = common.prepare_store(flat, root, report_locked=True)
    except BaseException:
        _cleanup(plan)
        raise
    return plan


def _cleanup(plan: RegressPlan) -> None:
    if plan.request.results is None:
        shutil.rmtree(plan.root, ignore_errors=True)


def execute(plan: RegressPlan, on_update: Callable[[dict[int, dict[str, Any]], set[int]], None] | None = None) -> RegressResult:
    """Run every entry's seeds on a local pool, then compare with the bands (or, with `update`, rewrite them)."""
    from sombench.runs.store import atomic_write_json
    from sombench.train.executors import LocalLauncher, dispatch

    req = plan.request
    t0 = time.perf_counter()
    try:
        common.open_store(plan.root)
        outs = dispatch(plan.flat, plan.root, LocalLauncher(plan.workers), plan.known, on_update, refresh=1.0)
    finally:
        _cleanup(plan)
    elapsed = time.perf_counter() - t0
    outcomes, i = {}, 0
    for e in plan.entries:
        outcomes[e.key] = outs[i:i + len(plan.specs[e.key])]
        i += len(plan.specs[e.key])
    if req.update:
        doc = rg.updated_bands(plan.band_doc, req.suite, plan.entries, plan.specs, outcomes, provenance_now(req.threads, plan.workers))
        atomic_write_json(plan.bands_path, doc)
        return RegressResult(req.suite, [], len(plan.flat), elapsed, plan.missing, updated=plan.bands_path, entries=len(plan.entries))
    rows = rg.evaluate(plan.entries, plan.specs, outcomes, plan.band_doc, req.suite)
    return RegressResult(req.suite, rows, len(plan.flat), elapsed, plan.missing, entries=len(plan.entries))
