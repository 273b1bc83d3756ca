"""A titled grid of text cells with best/second marks and footnotes, rendered for the terminal (rich)
or as Markdown. Table 1 (sombench.tables) and Table 2 (sombench.latency) both print through it."""

from __future__ import annotations

import dataclasses

from rich.console import Group
from rich.table import Table
from rich.text import Text

STYLE = {1: "bold", 2: "underline"}
MARKDOWN = {1: "**{}**", 2: "<u>{}</u>"}


@dataclasses.dataclass
class Grid:
    title: str
    header: list[str]
    rows: list[list[str]]
    marks: list[list[int | None]]
    """Per cell: 1 (best, bold), 2 (second, underlined) or None."""
    notes: list[str]


def to_rich(grid: Grid) -> Group:
    out = Table(title=grid.title)
    for i, h in enumerate(grid.header):
        out.add_column(h, justify="left" if i == 0 else "right")
    for row, mark in zip(grid.rows, grid.marks):
        out.add_row(*[Text(t, style=STYLE.get(m, "")) for t, m in zip(row, mark)])
    return Group(out, *[Text(n, style="dim") for n in grid.notes])


def to_markdown(grid: Grid) -> str:
    lines = [f"**{grid.title}**", "", "| " + " | ".join(grid.header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(grid.header) - 1)) + "|"]
    for row, mark in zip(grid.rows, grid.marks):
        lines.append("| " + " | ".join(MARKDOWN.get(m, "{}").format(t) for t, m in zip(row, mark)) + " |")
    lines += [""] + [f"{n}  " for n in grid.notes]
    return "\n".join(lines) + "\n"
