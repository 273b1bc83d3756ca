"""Table 2 (`sombench latency`) for the terminal (rich), as Markdown, CSV or JSON: our measurements, the
acting-versus-bare-forwards and part-by-part grids, and the paper's Table 2 with ratio columns.

The numbers come from sombench/measure/latency.py; this module only lays them out.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Group

from sombench.measure.latency import CSV_COLUMNS, Comparison, LatencyReport, PhaseTiming, csv_rows, ratios_to
from sombench.measure.paper import PAPER_ENV, PAPER_MACHINE
from sombench.render import grid as render
from sombench.render.grid import Grid

FORMATS = ("rich", "md", "csv", "json")


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


def _compiled_ratios(report: LatencyReport, reference: str) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    nan = math.nan
    return (ratios_to({r.algo: r.train_compiled.mean_ms if r.train_compiled else nan for r in report.rows}, reference),
            ratios_to({r.algo: r.infer_compiled.mean_ms if r.infer_compiled else nan for r in report.rows}, reference))


def _ratio_columns(comparison: Comparison) -> tuple[str, str]:
    """The CSV/JSON names of the ratio columns: `train_vs_som`, `infer_vs_som` for the default reference."""
    name = comparison.reference.lower()
    return f"train_vs_{name}", f"infer_vs_{name}"


def our_grid(report: LatencyReport, comparison: Comparison | None = None) -> Grid:
    compiled = bool(report.meta.get("compiled"))
    header = ["Algorithm", "T_d", "N", "Training (ms)", "median", "Inference (ms)", "median"]
    if compiled:
        header += ["Training compiled (ms)", "Inference compiled (ms)"]
    if comparison is not None:
        ref = comparison.reference_label
        header += [f"Train × {ref}", f"Infer × {ref}"] + ([f"Train c. × {ref} c.", f"Infer c. × {ref} c."] if compiled else [])
    train_rank = _fastest([r.train.mean_ms for r in report.rows])
    infer_rank = _fastest([r.infer.mean_ms for r in report.rows])
    train_c_ratio, infer_c_ratio = _compiled_ratios(report, comparison.reference) if compiled and comparison else (None, None)
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
    ref = comparison.reference_label
    header = ["Algorithm", "T_d", "N", "Training (ms)", "Inference (ms)", f"Train × {ref}", f"Infer × {ref}"]
    train_rank, infer_rank = _fastest(list(paper["train_ms"])), _fastest(list(paper["infer_ms"]))
    rows, marks = [], []
    for i, r in enumerate(paper.to_dict("records")):
        rows.append([r["algo"], str(r["T_d"]), str(r["N"]), _ms(r["train_ms"], r["train_ci"]), _ms(r["infer_ms"], r["infer_ci"]),
                     _ratio(r["train_ratio"]), _ratio(r["infer_ratio"])])
        marks.append([None, None, None, train_rank.get(i), infer_rank.get(i), None, None])
    notes = [f"As printed in the paper: {PAPER_ENV}, training at batch 256, inference at batch 1, mean ± 95% CI over 30 runs, "
             f"on {PAPER_MACHINE}."]
    return Grid(f"SOM paper, Table 2 ({PAPER_MACHINE.split(',')[0]})", header, rows, marks, notes)


def batched_grid(report: LatencyReport) -> Grid | None:
    """Acting on N observations at once (`--act-batch`): per call, per env step, and the per-env-step speed-up
    over acting on one observation (the batch-1 mean of the main table)."""
    batches = sorted({n for r in report.rows for n in r.infer_batched})
    if not batches:
        return None
    header = ["Algorithm", "act @1"] + [c for n in batches for c in (f"@{n} per call", f"@{n} per env step", f"@{n} speed-up")]
    rows = []
    for r in report.rows:
        row = [r.algo, _ms(r.infer.mean_ms, r.infer.ci_ms)]
        for n in batches:
            t = r.infer_batched.get(n)
            row += [_ms(t.mean_ms, t.ci_ms), _ms(t.mean_ms / n), _ratio(r.infer.mean_ms / (t.mean_ms / n))] if t else ["-", "-", "-"]
        rows.append(row)
    notes = ["Means ± 95% CI over the repeats. @N: one exploring act_batch call on N random observations (what one step of N "
             "vector envs costs in acting: best-of-K draws N x K candidates, a reverse process runs on N samples, one host round "
             "trip); per env step = per call / N; speed-up = act @1 / (per env step)."]
    return Grid(f"Acting on N envs at once ({report.env})", header, rows, [[None] * len(header)] * len(rows), notes)


def _grids(report: LatencyReport, comparison: Comparison | None, extra: list[Grid] | None) -> list[Grid]:
    grids = [our_grid(report, comparison)]
    acting = acting_grid(report)
    if acting is not None:
        grids.append(acting)
    batched = batched_grid(report)
    if batched is not None:
        grids.append(batched)
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
        train_vs, infer_vs = _ratio_columns(comparison)
        for row in rows:
            row[train_vs] = (comparison.train_ratio or {}).get(row["algo"])
            row[infer_vs] = (comparison.infer_ratio or {}).get(row["algo"])
        for r in _paper_records(comparison):
            rows.append({"source": "paper", "algo": r["algo"], "env": PAPER_ENV, "T_d": r["T_d"], "N": r["N"], "batch_size": 256,
                         "repeats": 30, "train_ms_mean": r["train_ms"], "train_ms_ci95": r["train_ci"],
                         "infer_ms_mean": r["infer_ms"], "infer_ms_ci95": r["infer_ci"], "device": "cuda", "gpu": "NVIDIA RTX 4090",
                         "cpu": "AMD Ryzen Threadripper PRO 5995WX", train_vs: r["train_ratio"], infer_vs: r["infer_ratio"]})
    columns = ["source", *CSV_COLUMNS] + (list(_ratio_columns(comparison)) if comparison is not None else [])
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
        train_vs, infer_vs = _ratio_columns(comparison)
        for row in rows:
            row[train_vs] = _clean((comparison.train_ratio or {}).get(row["algo"]))
            row[infer_vs] = _clean((comparison.infer_ratio or {}).get(row["algo"]))
        payload["paper"] = {"env": PAPER_ENV, "machine": PAPER_MACHINE, "repeats": 30, "rows": _paper_records(comparison)}
    acting = acting_grid(report)
    if acting is not None:
        payload["acting_vs_bare"] = [dict(zip(acting.header, row)) for row in acting.rows]
    if any(r.infer_batched for r in report.rows):
        payload["acting_batched"] = [{"algo": r.algo, "infer_ms_mean": _clean(r.infer.mean_ms),
                                      "batches": [{"n": n, "ms_per_call_mean": _clean(t.mean_ms), "ms_per_call_ci95": _clean(t.ci_ms),
                                                   "ms_per_env_step": _clean(t.mean_ms / n)} for n, t in r.infer_batched.items()]}
                                     for r in report.rows]
    if breakdowns:
        payload["breakdown"] = {name: [{"part": p.name, "parent": p.parent, "per_update": p.per_update,
                                        "measured_ms_median": _clean(p.measured.median_ms),
                                        "bare_products_ms_median": _clean(p.products.median_ms) if p.products else None}
                                       for p in phases] for name, phases in breakdowns.items()}
    return json.dumps(payload, indent=2, allow_nan=False)
