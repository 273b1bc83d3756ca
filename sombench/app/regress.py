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

    @property
    def bad(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["verdict"] in ("REGRESSED", "failed")]


def entry_specs(entry: rg.Entry, extra_sets: list[str], threads: int, command: tuple[str, ...] = ()) -> list:
    """The entry's RunSpecs: evaluation at half and at the end, one checkpoint, ten log rows, on the CPU."""
    schedule = common.Schedule(eval_every=max(1, entry.steps // 2), eval_episodes=entry.eval_episodes,
                               checkpoint_every=entry.steps, log_every=max(1, entry.steps // 10))
    return common.build_specs(entry.algo, entry.env, list(range(entry.seeds)), entry.steps, schedule=schedule, device="cpu",
                              threads=threads, sets=[*entry.sets, *extra_sets], preset=entry.preset, tag=None, command=command)


def regress(req: RegressRequest, on_update: Callable[[dict[int, dict[str, Any]], set[int]], None] | None = None,
            specs_out: list | None = None) -> RegressResult:
    """Run the suite's entries (all, or those of `req.algos`) and compare them with their bands, or,
    with `update`, rewrite their bands. `specs_out`, if given, receives the runs' specs before they start
    (for a live display)."""
    from sombench.runs.store import atomic_write_json
    from sombench.train.executors import LocalLauncher, dispatch

    entries = rg.load_suite(req.suite)
    names = common.split_names(req.algos)
    if names:
        for name in names:
            common.algorithm_class(name)
        entries = [e for e in entries if e.algo in names]
    missing = [] if names else sorted(set(common.algorithm_names()) - {e.algo for e in entries})
    common.check_positive("workers", req.workers)
    common.check_positive("threads", req.threads)
    if req.update and req.sets:
        raise InvalidValue("update", "cannot be combined with overrides: they would be recorded as the reference config; change the suite file instead")
    bands_path = req.bands or rg.data_dir() / "bands.json"
    band_doc = rg.load_bands(bands_path)
    specs = {e.key: entry_specs(e, list(req.sets), req.threads, req.command) for e in entries}
    flat = [s for e in entries for s in specs[e.key]]
    root = req.results.absolute() if req.results else Path(tempfile.mkdtemp(prefix="sombench-regress-"))
    workers = req.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    try:
        known = common.prepare_store(flat, root, report_locked=True)
        common.open_store(root)
        if specs_out is not None:
            specs_out[:] = flat
        outs = dispatch(flat, root, LocalLauncher(workers), known, on_update, refresh=1.0)
    finally:
        if req.results is None:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    outcomes, i = {}, 0
    for e in entries:
        outcomes[e.key] = outs[i:i + len(specs[e.key])]
        i += len(specs[e.key])
    if req.update:
        doc = rg.updated_bands(band_doc, req.suite, entries, specs, outcomes, rg.provenance_now(req.threads, workers))
        atomic_write_json(bands_path, doc)
        return RegressResult(req.suite, [], len(flat), elapsed, missing, updated=bands_path)
    rows = rg.evaluate(entries, specs, outcomes, band_doc, req.suite)
    return RegressResult(req.suite, rows, len(flat), elapsed, missing)
