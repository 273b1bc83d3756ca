"""The cost projection (sombench/measure/cost.py) as a rich table: one row per algorithm variant, its
envs summed, hours here and on the paper's GPU."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sombench.measure.cost import Projection, hours_text


def projection_table(p: Projection, workers: int = 1) -> Table:
    unit = "GPU" if p.device.startswith("cuda") else "CPU"
    table = Table(title=f"cost projection on {p.device} ({unit}-hours, one run at a time)",
                  caption=(f"total here: {hours_text(p.total_s / 3600)} {unit} ({p.total_s / 86400:,.1f} {unit}-days"
                           + (f"; {hours_text(p.hours(workers))} wall with {workers} runs in parallel" if workers > 1 else "")
                           + (f"). Paper GPU (RTX 4090, Table 2): {hours_text(p.paper_total_s / 3600)} ({p.paper_total_s / 86400:,.1f} GPU-days)"
                              if p.paper_total_s == p.paper_total_s else "). Paper GPU (RTX 4090, Table 2): none of these algorithms is in its Table 2")
                           + (f", {', '.join(p.paper_estimated)} estimated (not in Table 2)" if p.paper_estimated else "")
                           + ". Per env step: the env step, and after the warm-up one acting call and updates_per_step updates (1 by default; "
                             "PPO: one update per rollout); with num_envs N one acting call serves N env steps ('act ms' is per env "
                             "step; on the paper's GPU a call on N observations is assumed to cost one call); evaluation not counted."))
    for col in ("run", "envs", "runs", "env steps", "update ms", "act ms", "here", "paper GPU", "source"):
        table.add_column(col, justify="left" if col in ("run", "source") else "right", overflow="fold")
    by_algo: dict[str, list[dict[str, Any]]] = {}
    for r in p.rows:  # one row per algorithm variant, its envs summed
        by_algo.setdefault(r["algo"], []).append(r)
    for label, rows in by_algo.items():
        r = rows[0]
        paper_h = sum(x["paper_hours"] for x in rows)
        table.add_row(label, str(len(rows)), str(sum(x["runs"] for x in rows)), f"{sum(x['steps'] * x['runs'] for x in rows):,}",
                      _ms(r["update_ms"]), _ms(r["act_ms"]), hours_text(sum(x["hours"] for x in rows)),
                      hours_text(paper_h) + ("*" if "estimated" in r["paper_source"] else ""), r["source"])
    return table


def _ms(value: float) -> str:
    return f"{value:.2f}" if value == value else "n/a"
