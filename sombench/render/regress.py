"""`sombench regress`'s verdict table (rich): per suite entry its band, the fresh result, the change, the
minimum effect, Welch's p and the verdict (sombench/analysis/regress.py computes them)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from sombench.analysis.regress import ALPHA, SPREAD, summary


def _num(x: float, ref: float | None = None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    scale = abs(ref if ref is not None else x)
    return f"{x:.3f}" if scale < 10 else f"{x:.1f}"


def verdict_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, caption=f"REGRESSED: Welch's t-test (one-sided, unequal variances) p < {ALPHA} and a drop larger than "
                                       f"min drop = max(floor, {SPREAD:g} x the band's seed std). Cells: mean ± 95% CI (seeds).")
    for col in ("entry", "band", "now", "change", "min drop", "p", "verdict"):
        table.add_column(col, overflow="fold", justify="left" if col in ("entry", "verdict") else "right")
    style = {"REGRESSED": "bold red", "failed": "bold red", "ok": "green", "improved": "cyan", "new": "yellow", "stale": "yellow"}
    for row in rows:
        e = row["entry"]
        band = row.get("band")
        ref_text = f"{_num(band['mean'])}±{_num(band['ci95'], band['mean'])} ({len(band['finals'])})" if band else "-"
        now = summary(row["finals"]) if row["finals"] else None
        now_text = f"{_num(now['mean'])}±{_num(now['ci95'], now['mean'])} ({len(row['finals'])})" if now else "-"
        change = min_drop = p = "-"
        if "drop" in row:
            ref_mean = band["mean"]
            pct = f" ({-100 * row['drop'] / abs(ref_mean):+.0f}%)" if ref_mean else ""
            change, min_drop, p = _num(-row["drop"], ref_mean) + pct, _num(row["min_drop"], ref_mean), f"{row['p']:.2g}"
        verdict = row["verdict"] + (f": {row['reason']}" if row.get("reason") else "")
        env = e.env.removeprefix("sombench/")
        table.add_row(f"{e.algo} {env} {e.steps // 1000}k" if e.steps % 1000 == 0 else f"{e.algo} {env} {e.steps}", ref_text, now_text,
                      change, min_drop, p, f"[{style.get(row['verdict'], '')}]{verdict}[/]")
    return table
