"""The live progress display of `sombench run` and `sombench bandit`: one bar per seed.

The bar shows steps done (compact: 120k/5M, so it fits 80 columns), the recent speed in steps/s (the runner's
average over the last ~10 s, not the run's average), the last evaluation return and an ETA that knows
the run's phases: during the warm-up (uniform random actions, no updates, fast) it shows the time left
in the warm-up only, since the training phase after it runs at a speed not yet seen.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Column

if TYPE_CHECKING:
    from sombench.runs.spec import RunSpec


def compact(n: int | float | None) -> str:
    """1234 -> '1234', 120000 -> '120k', 5000000 -> '5M', 1250000 -> '1.25M'."""
    if n is None:
        return "-"
    n = int(n)
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    if n >= 10_000 or (n >= 1_000 and n % 1_000 == 0):
        return f"{n / 1e3:.3g}k"
    return str(n)


def fmt_return(value: Any, missing_nan: bool = True) -> str:
    """A return to one decimal; `-` for none. NaN is `-` too where it stands for "not evaluated yet" (the
    progress bars, `missing_nan`), else `NaN`; infinities are `inf` / `-inf`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(value):
        return "-" if missing_nan else "NaN"
    return f"{value:.1f}"


def _duration(seconds: float) -> str:
    if seconds >= 100 * 86_400:
        return f"{seconds / 86_400:,.0f} days"
    return str(dt.timedelta(seconds=int(seconds)))


def eta_text(step: int, total: int, warmup: int, sps: float | None) -> str:
    """Time left, from the recent speed and the phase ahead."""
    if step >= total:
        return ""
    if not sps or sps <= 0:
        return "ETA ?"
    if step < warmup:
        return f"warm-up {_duration((min(warmup, total) - step) / sps)} left"
    return f"ETA {_duration((total - step) / sps)}"


class ProgressBars:
    """One live bar per run; a context manager whose `on_event(event)` takes the trainer's events
    (start, progress, end; each with its run's `index` in `specs`)."""

    def __init__(self, specs: list[RunSpec], console: Console):
        self.specs, self.console = specs, console
        # Fits 80 columns: the label (which may name a long variant) yields first, then the bar.
        label_width = max(12, console.width - 62)
        fixed = dict(no_wrap=True, overflow="crop")
        columns = [TextColumn("{task.description}", markup=False, table_column=Column(max_width=label_width, no_wrap=True, overflow="ellipsis")),
                   BarColumn(bar_width=max(4, min(30, console.width - 76))),
                   TextColumn("{task.fields[steps]}", markup=False, table_column=Column(min_width=9, **fixed)),
                   TextColumn("{task.fields[sps]}", markup=False, table_column=Column(min_width=6, **fixed)),
                   TextColumn("ret {task.fields[ret]}", markup=False, table_column=Column(min_width=10, **fixed)),
                   TextColumn("{task.fields[eta]}", markup=False, table_column=Column(min_width=9, **fixed))]
        self.progress = Progress(*columns, console=console, transient=False, expand=False)
        self.tasks: dict[int, Any] = {}

    def __enter__(self) -> ProgressBars:
        self.progress.__enter__()
        self.tasks = {i: self.progress.add_task(f"{s.key.label} s{s.seed}", total=s.total_steps, steps=f"0/{compact(s.total_steps)}",
                                                sps="", ret="-", eta="") for i, s in enumerate(self.specs)}
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: dict[str, Any]) -> None:
        progress, task = self.progress, self.tasks[event["index"]]
        total = event.get("total") or progress.tasks[task].total
        if event["kind"] in ("start", "progress"):
            sps = event.get("sps")
            progress.update(task, completed=event["step"], steps=f"{compact(event['step'])}/{compact(total)}",
                            sps=f"{sps:.0f}/s" if sps else "", ret=fmt_return(event.get("last_return")),
                            eta=eta_text(event["step"], total, event.get("warmup", 0), sps))
        elif event["kind"] == "end":
            step = event.get("step")
            fields = {"eta": f"[{event['status']}]"}
            if step is not None:
                fields.update(completed=step, steps=f"{compact(step)}/{compact(total)}", ret=fmt_return(event.get("last_return")))
            progress.update(task, **fields)
