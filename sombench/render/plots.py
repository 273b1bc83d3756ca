"""Figure 2: evaluation return against env steps, one panel per env plus a normalized panel.

Each line is the mean over seeds on their common grid (the union of their evaluation steps that every
seed covers, each seed's last evaluation carried forward: seeds evaluated on different schedules share
one curve), with a Student-t 95% CI band. A curve averages exactly the runs that `sombench table` puts in the same cell (finished,
at the env's budget, not damaged), and the legend gives its seed count. The normalized panel min-max normalizes each seed's curve per env with the same
min/max as the table (the algorithms' final means, or the reference file), pairs seeds by index
across envs, averages over envs, and then takes mean and CI over seeds.

Colours name no algorithm: the figure's row labels, sorted, take matplotlib's tab10 colours in order
(tab20 when there are more than ten), so the same set of names always gets the same colours, and an
algorithm has one colour in every panel of a figure.
"""

from __future__ import annotations

import re

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sombench.analysis.aggregate import ResultTable, Run, common_grid  # noqa: E402
from sombench.analysis.stats import t_interval  # noqa: E402


def colours(names) -> dict[str, str]:
    """name -> hex colour: the sorted distinct names take tab10's colours in order (tab20's for more than
    ten names, repeating beyond twenty). Depends on the set of names only, not on their order."""
    ordered = sorted(set(names))
    palette = plt.get_cmap("tab10" if len(ordered) <= 10 else "tab20").colors
    return {name: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, name in enumerate(ordered)}


def seed_matrix(runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, returns [seeds, steps]) on the seeds' common grid (analysis.aggregate.common_grid: the union of
    their evaluation steps, each seed's last evaluation carried forward), so seeds evaluated on different
    schedules still draw one curve. A non-finite evaluation is a gap in the curve at its steps."""
    return common_grid(runs)


def mean_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of [seeds, steps]: the mean and the 95% Student-t band around it (no band for one seed)."""
    mean, half = t_interval(values, 0.95, axis=0)
    if values.shape[0] < 2:
        return mean, mean, mean
    return mean, mean - half, mean + half


def build_figure(table: ResultTable) -> plt.Figure:
    """The Figure 2 panels for the runs in the table's cells (the caller saves and closes it)."""
    envs, algos = table.envs, table.algos
    panels = len(envs) + (1 if len(envs) > 1 else 0)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    flat = axes.ravel()
    colour = colours(algos)
    normalized: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {a: [] for a in algos}
    for ax, env in zip(flat, envs):
        for algo in algos:
            cell = table.cells.get((algo, env))
            group = [r for r in (cell.runs if cell else []) if not r.evals.empty]
            if not group:
                continue
            group.sort(key=lambda r: r.seed)
            steps, values = seed_matrix(group)
            if not len(steps):
                continue
            mean, lo, hi = mean_band(values)
            ax.plot(steps, mean, color=colour[algo], label=f"{algo} (n={len(group)})", lw=1.6)
            ax.fill_between(steps, lo, hi, color=colour[algo], alpha=0.2, lw=0)
            span = table.norm_max[env] - table.norm_min[env]
            if math.isfinite(span) and span > 0:
                normalized[algo].append((steps, (values - table.norm_min[env]) / span))
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    if panels > len(envs):
        ax = flat[len(envs)]
        for algo, curves in normalized.items():
            if len(curves) != len(envs):
                continue  # only algorithms run on every env enter the average
            common = sorted(set.intersection(*[set(s.tolist()) for s, _ in curves]))
            n_seeds = min(v.shape[0] for _, v in curves)
            if not common or n_seeds == 0:
                continue
            per_env = [v[:n_seeds][:, np.searchsorted(s, common)] for s, v in curves]
            mean, lo, hi = mean_band(np.mean(per_env, axis=0))
            ax.plot(common, mean, color=colour[algo], label=f"{algo} (n={n_seeds})", lw=1.6)
            ax.fill_between(common, lo, hi, color=colour[algo], alpha=0.2, lw=0)
        ax.set_title("Normalized (mean over envs)")
        ax.set_xlabel("env steps")
        ax.set_ylabel("normalized return")
        ax.grid(alpha=0.3)
    for ax in flat[panels:]:
        ax.set_visible(False)
    for ax in flat[:panels]:
        handles, labels = ax.get_legend_handles_labels()
        if handles:  # per panel: the seed count can differ between envs
            ax.legend(handles, [wrap_label(label) for label in labels], fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def wrap_label(label: str, width: int = 32) -> str:
    """A legend label broken into lines of at most ~`width` characters after its '@' and '+' separators (a
    variant label such as sac@batch_size=64+hidden_sizes=64x64+warmup_steps=1000 is wider than a panel)."""
    lines, line = [], ""
    for part in re.split(r"(?<=[@+])", label):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def plot_curves(table: ResultTable, out: Path) -> Path:
    """Write Figure 2 to `out` (atomically: a temporary file renamed into place)."""
    return save_figure(build_figure(table), out)


def save_figure(fig, out: Path) -> Path:
    """Save `fig` to `out` atomically (a temporary file renamed into place) and close it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=150)
    plt.close(fig)
    tmp.replace(out)
    return out
