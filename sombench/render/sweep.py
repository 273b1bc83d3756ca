"""The sweep's tables: the live table of runs (`sombench sweep`) and the dry run's grid."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sombench.render.progress import compact, fmt_return

STYLE = {"done": "green", "skipped": "dim", "failed": "red", "refused": "red", "locked": "yellow", "running": "cyan"}


def render(rows: list[dict[str, Any]], title: str, limit: int = 40) -> Table:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    table = Table(title=title, caption=", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for col in ("env", "run", "seed", "state", "progress", "last return"):
        table.add_column(col, overflow="fold", justify="right" if col in ("seed", "progress", "last return") else "left")
    shown = rows
    if len(rows) > limit:  # a big grid: the active and failed runs first, then as many others as fit
        order = {"running": 0, "failed": 1, "refused": 1, "locked": 2, "queued": 3, "done": 4, "pending": 5, "skipped": 6}
        shown = sorted(rows, key=lambda r: (order.get(r["status"], 9), r["index"]))[:limit]
    for r in shown:
        pct = f"{100 * r['steps'] / r['total']:.0f}%" if r["total"] else ""
        state = r["status"] + (f": {r['reason']}" if r.get("reason") and r["status"] in ("failed", "refused", "locked") else "")
        table.add_row(r["env"], r["algo"], str(r["seed"]), f"[{STYLE.get(r['status'], '')}]{state}[/]" if STYLE.get(r["status"]) else state,
                      f"{compact(r['steps'])}/{compact(r['total'])} {pct}", fmt_return(r["last_return"]))
    if len(rows) > limit:
        table.add_row("...", f"{len(rows) - limit} more", "", "", "", "")
    return table




def grid_table(specs: list, notes: list[str]) -> Table:
    """The dry run's grid: one row per (env, variant) with its seeds and steps."""
    groups: dict[tuple[str, str], list] = {}
    for spec in specs:
        groups.setdefault((spec.env_id, spec.key.label), []).append(spec)
    table = Table(title=f"sweep grid: {len(specs)} runs", caption="; ".join(notes) if notes else None)
    for col in ("env", "run", "seeds", "steps per run"):
        table.add_column(col, overflow="fold")
    for (env, label), group in groups.items():
        seeds = sorted(s.seed for s in group)
        text = f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2 else ",".join(map(str, seeds))
        table.add_row(env, label, text, compact(group[0].total_steps))
    return table
