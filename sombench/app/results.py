"""Reading a results store: `sombench status` (every run's state), `sombench table` (Table 1) and
`sombench plot` (Figure 2, or an ablation by a config field). These never import torch or the
algorithms: a run's records carry what they need (tests/test_analysis_imports.py checks the modules loaded)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from sombench.app import common
from sombench.errors import InvalidValue, UserError


# -- status -------------------------------------------------------------------------------------
STATUS_FORMATS = ("rich", "json")


def status(results: Path) -> list[dict[str, Any]]:
    """One row per run: env, algo (label), seed, steps_done, steps_total, state, last_return, reason."""
    from sombench.runs.store import Store

    st = Store(results)
    st.check_readable()
    return [{"env": rec.key.env, "algo": rec.key.label, "seed": rec.key.seed, "steps_done": rec.state.get("env_step"),
             "steps_total": rec.total_steps, "state": rec.status, "last_return": rec.state.get("last_return"),
             "reason": rec.damage or rec.state.get("reason")} for rec in st.runs()]


# -- table ----------------------------------------------------------------------------------------
TABLE_FORMATS = ("rich", "md", "latex", "csv", "json")
STATS = ("rliable",)


@dataclasses.dataclass
class TableRequest:
    results: Path = Path("results")
    envs: list[str] | None = None
    algos: list[str] | None = None
    """Algorithm names (every variant) or exact variants such as `som@score_scale=10`."""
    paper: bool = False
    """Also the paper's Table 1 for the same cells."""
    norm_ref: str | None = None
    """A CSV of per-env min/max for Normalized, `random` for the shipped random-policy scores, or `fixed`
    (random-policy min, the paper's best Table 1 mean as max). None: the table's own min/max, except with
    `stats` rliable, which takes `fixed` (the table's own min and max would move every algorithm's interval
    whenever one is added)."""
    at_step: str | int | None = None
    stats: str | None = None
    """`rliable`: IQM, optimality gap and probability of improvement with bootstrap CIs."""
    fmt: str = "rich"
    """The output format the table will be rendered in (rliable statistics need rich, md or json)."""


@dataclasses.dataclass
class TableResult:
    table: Any
    """analysis.aggregate.ResultTable"""
    title: str
    paper: Any | None
    """The paper's cells in common with `table` (a ResultTable), None if not asked for or none in common."""
    paper_asked: bool
    rliable: dict[str, Any] | None


def table(req: TableRequest) -> TableResult:
    from sombench.analysis import aggregate

    if req.fmt not in TABLE_FORMATS:
        raise InvalidValue("format", f"{req.fmt!r} is unknown; use {', '.join(TABLE_FORMATS)}")
    if req.stats not in (None, *STATS):
        raise InvalidValue("stats", f"{req.stats!r} is unknown; the only kind is rliable")
    if req.stats and req.fmt not in ("rich", "md", "json"):
        raise InvalidValue("stats", "rliable prints with the rich, md or json format")
    step = common.parse_count(req.at_step, "at_step")
    norm_ref = req.norm_ref or (aggregate.FIXED_REF if req.stats == "rliable" else None)
    ref = aggregate.read_norm_ref(norm_ref) if norm_ref else None
    runs = aggregate.load_runs(req.results, common.split_names(req.envs), common.split_names(req.algos))
    label = ("fixed references (the random-policy score as min, the paper's best Table 1 mean as max)"
             if norm_ref == aggregate.FIXED_REF else "the reference file")
    result = aggregate.build_table(runs, at_step=step, norm_ref=ref, ref_label=label)
    paper = aggregate.paper_cells_for(result) if req.paper else None
    rl = None
    if req.stats:
        from sombench.analysis.rliable import rliable_stats

        rl = rliable_stats(result)
    title = "Final evaluation return" + (f" at step {step:,}" if step else "")
    return TableResult(result, title, paper, req.paper, rl)


# -- plot -----------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def check_output_file(out: Path) -> None:
    """InvalidValue unless `out` is a writable .png/.pdf/.svg file path (not a folder)."""
    if out.is_dir():
        raise InvalidValue("out", f"{out} is a folder; give a file name such as {out / 'figure2.png'}")
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise InvalidValue("out", f"{out}: use a .png, .pdf or .svg file name")
    existing = out.parent if out.parent != Path("") else Path(".")
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidValue("out", f"{out}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise InvalidValue("out", f"{out}: {existing} is not writable; choose another path") from None


@dataclasses.dataclass
class PlotRequest:
    results: Path = Path("results")
    envs: list[str] | None = None
    algos: list[str] | None = None
    out: Path | None = None
    """Image file; None: RESULTS/figure2.png (RESULTS/by_KEY.png with `by`)."""
    norm_ref: str | None = None
    by: str | None = None
    """Ablation: one panel per env and algorithm, one curve per value of this config field."""


def plot(req: PlotRequest) -> Path:
    """Draw the figure and write it atomically; its path. Its curves average exactly the runs that
    `table` puts in each cell."""
    from sombench.analysis import aggregate

    out = req.out or req.results / (f"by_{req.by}.png" if req.by else "figure2.png")
    check_output_file(out)
    ref = aggregate.read_norm_ref(req.norm_ref) if req.norm_ref else None
    envs, algos = common.split_names(req.envs), common.split_names(req.algos)
    try:
        if req.by:
            from sombench.render.plot_by import plot_by

            return plot_by(req.results, req.by, envs, algos, out, ref)
        from sombench.render import plots

        result = aggregate.build_table(aggregate.load_runs(req.results, envs, algos), norm_ref=ref)
        return plots.plot_curves(result, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
