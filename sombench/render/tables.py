"""Rendering a ResultTable as rich, Markdown, LaTeX, CSV or JSON, best in bold and second underlined."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd
from rich.console import Group
from rich.table import Table

from sombench.render import grid as render
from sombench.analysis.aggregate import ResultTable

FLAG = "†"
FORMATS = ("rich", "md", "latex", "csv", "json")


def _num(x: float) -> str:
    return f"{x:.1f}" if math.isfinite(x) else "n/a"


def cell_text(table: ResultTable, algo: str, env: str, latex: bool = False) -> str:
    cell = table.cells.get((algo, env))
    if cell is None:
        return "-"
    pm = r"$\pm$" if latex else "±"
    text = _num(cell.mean) if cell.n else "n/a"
    if cell.n >= 2:
        text += f" {pm} {_num(cell.ci)}"
    if table.seeds_differ:
        text += f" (n={cell.n})"
    if cell.excluded or cell.notes:
        text += r"$^\dagger$" if latex else FLAG
    return text


def _grid(table: ResultTable, latex: bool = False) -> tuple[list[str], list[list[str]], list[list[int | None]]]:
    """Header, cell strings and rank marks (1 best, 2 second) of the table with its Normalized column."""
    header = ["Algorithm", *table.envs, "Normalized"]
    columns = [[table.mean(a, e) for a in table.algos] for e in table.envs]
    columns.append([table.normalized(a)[0] for a in table.algos])
    ranks = [table.ranks(col) for col in columns]
    rows, marks = [], []
    for i, algo in enumerate(table.algos):
        value, used = table.normalized(algo)
        norm = f"{value:.3f}" if math.isfinite(value) else "n/a"
        if math.isfinite(value) and used < len(table.envs):
            norm += f" ({used}/{len(table.envs)} envs)"
        rows.append([algo, *[cell_text(table, algo, e, latex) for e in table.envs], norm])
        marks.append([None, *[r.get(i) for r in ranks]])
    return header, rows, marks


def footnotes(table: ResultTable) -> list[str]:
    notes = []
    if table.source_note:
        notes.append(table.source_note)
    elif table.at_step is not None:
        notes.append(f"All runs compared at env step {table.at_step:,}.")
    else:
        budgets = ", ".join(f"{e} {b:,}" for e, b in table.budgets.items() if b)
        notes.append(f"Final return: last evaluation of each finished run (budgets: {budgets}); mean ± 95% CI (Student t, n-1 dof) over seeds.")
        longer = "; ".join(f"{a} on {e} at {f}x ({table.budgets[e] * f:,} steps)" for (a, e), f in sorted(table.budget_factors.items())
                           if table.budgets.get(e))
        if longer:
            notes.append(f"At their own budget, as in the paper: {longer}.")
    notes.append(table.norm_note)
    for (algo, env), cell in sorted(table.cells.items()):
        if cell.excluded:
            notes.append(f"{FLAG} {algo} on {env}: left out: {'; '.join(cell.excluded)}.")
        if cell.notes:
            notes.append(f"{FLAG} {algo} on {env}: {'; '.join(cell.notes)}.")
    return notes


def grid(table: ResultTable, title: str) -> render.Grid:
    header, rows, marks = _grid(table)
    return render.Grid(title, header, rows, marks, footnotes(table))


def to_rich(table: ResultTable, title: str) -> Group:
    return render.to_rich(grid(table, title))


def to_markdown(table: ResultTable, title: str) -> str:
    return render.to_markdown(grid(table, title))


def _latex_escape(text: str) -> str:
    text = text.replace("\\", r"\textbackslash{}")
    for char in "_%&#$":
        text = text.replace(char, "\\" + char)
    return text.replace("±", r"$\pm$").replace("≥", r"$\geq$").replace("≤", r"$\leq$")


def to_latex(table: ResultTable, title: str) -> str:
    header, rows, marks = _grid(table, latex=True)
    wrap = {1: r"\textbf{{{}}}", 2: r"\underline{{{}}}"}
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(title)}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(_latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for row, mark in zip(rows, marks):
        cells = [_latex_escape(row[0])] + [wrap.get(m, "{}").format(t) for t, m in zip(row[1:], mark[1:])]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"\par\footnotesize " + _latex_escape(n).replace(FLAG, r"$^\dagger$") for n in footnotes(table)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def records(table: ResultTable) -> dict[str, Any]:
    columns = [[table.mean(a, e) for a in table.algos] for e in table.envs]
    ranks = {e: table.ranks(col) for e, col in zip(table.envs, columns)}
    norm_ranks = table.ranks([table.normalized(a)[0] for a in table.algos])

    def clean(x: float) -> float | None:
        return x if math.isfinite(x) else None

    cells = []
    for i, algo in enumerate(table.algos):
        for env in table.envs:
            cell = table.cells.get((algo, env))
            if cell is None:
                continue
            cells.append({"algo": algo, "env": env, "mean": clean(cell.mean) if cell.n else None,
                          "ci95": clean(cell.ci) if cell.n else None, "n": cell.n, "seeds": cell.seeds,
                          "values": cell.values, "excluded": cell.excluded, "notes": cell.notes, "rank": ranks[env].get(i)})
    normalized = {a: {"value": clean(table.normalized(a)[0]), "envs": table.normalized(a)[1], "rank": norm_ranks.get(i)}
                  for i, a in enumerate(table.algos)}
    return {"envs": table.envs, "algos": table.algos, "at_step": table.at_step, "budgets": table.budgets, "cells": cells,
            "normalized": normalized, "norm_min": {e: clean(v) for e, v in table.norm_min.items()},
            "norm_max": {e: clean(v) for e, v in table.norm_max.items()}, "footnotes": footnotes(table)}


def to_csv(table: ResultTable, source: str = "sombench") -> str:
    rec = records(table)
    rows = [{"source": source, "algo": c["algo"], "env": c["env"], "mean": c["mean"], "ci95": c["ci95"], "n": c["n"],
             "rank": c["rank"], "excluded": "; ".join(c["excluded"])} for c in rec["cells"]]
    rows += [{"source": source, "algo": a, "env": "Normalized", "mean": v["value"], "ci95": None, "n": v["envs"],
              "rank": v["rank"], "excluded": ""} for a, v in rec["normalized"].items()]
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue()


def to_json(payload: dict[str, Any]) -> str:
    """JSON text of `payload`, every non-finite number written as null (NaN and Infinity are not JSON)."""
    return json.dumps(_finite(payload), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _interval(lo_hi) -> str:
    return f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"


def rliable_rich(rl: dict[str, Any]) -> Group:
    agg = Table(title="rliable aggregates on normalized scores (95% stratified bootstrap CIs)")
    for col in ("Algorithm", "IQM", "IQM CI", "Optimality gap", "OG CI"):
        agg.add_column(col, justify="left" if col == "Algorithm" else "right")
    for algo, v in rl["per_algo"].items():
        agg.add_row(algo, f"{v['iqm']:.3f}", _interval(v["iqm_ci"]), f"{v['optimality_gap']:.3f}", _interval(v["optimality_gap_ci"]))
    poi = Table(title="Probability of improvement P(X > Y)")
    for col in ("X", "Y", "P(X > Y)", "95% CI"):
        poi.add_column(col)
    for p in rl["probability_of_improvement"]:
        poi.add_row(p["x"], p["y"], f"{p['p']:.3f}", _interval(p["ci"]))
    return Group(agg, poi)


def rliable_markdown(rl: dict[str, Any]) -> str:
    lines = ["**rliable aggregates on normalized scores (95% stratified bootstrap CIs)**", "",
             "| Algorithm | IQM | IQM CI | Optimality gap | OG CI |", "|---|---:|---:|---:|---:|"]
    for algo, v in rl["per_algo"].items():
        lines.append(f"| {algo} | {v['iqm']:.3f} | {_interval(v['iqm_ci'])} | {v['optimality_gap']:.3f} | {_interval(v['optimality_gap_ci'])} |")
    lines += ["", "**Probability of improvement P(X > Y)**", "", "| X | Y | P(X > Y) | 95% CI |", "|---|---|---:|---:|"]
    for p in rl["probability_of_improvement"]:
        lines.append(f"| {p['x']} | {p['y']} | {p['p']:.3f} | {_interval(p['ci'])} |")
    return "\n".join(lines) + "\n"
