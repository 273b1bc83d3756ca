"""`sombench plot --by KEY`: an ablation's curves side by side (Figures 8 and 9 of the SOM paper:
`--grid score_scale=5,10,25,50`, `--grid num_score_samples=...`).

One panel per (env, algorithm) whose variants differ in KEY; in it one curve per value of KEY (read
from each run's config.json, so the default value appears too), mean and Student-t 95% CI band over
seeds, coloured along a sequential scale in the order of the values. The runs averaged are those
`sombench table` puts in the cells (finished, at the budget, undamaged), as in Figure 2. Variants that
differ in another field besides KEY are drawn as their own curve, labelled with their variant.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sombench.errors import InvalidValue


def _value_of(config: dict[str, Any] | None, key: str) -> Any:
    if not config:
        return None
    algo_config = config.get("run", {}).get("algo_config", {})
    return algo_config.get(key, KeyError) if isinstance(algo_config, dict) else KeyError


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def plot_by(results: Path, key: str, envs: list[str] | None, algos: list[str] | None, out: Path, norm_ref=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sombench.analysis import aggregate
    from sombench.runs import store
    from sombench.render.plots import mean_band, save_figure, seed_matrix

    runs = aggregate.load_runs(results, envs, algos)
    table = aggregate.build_table(runs, norm_ref=norm_ref)
    values: dict[str, Any] = {}
    algo_of: dict[str, str] = {}
    for rec in store.Store(results).runs(envs, algos):
        value = _value_of(rec.config, key)
        if value is not KeyError:
            values[rec.key.label] = value
            algo_of[rec.key.label] = rec.key.algo
    if not values:
        raise InvalidValue("by", f"{key}: no run in {results} has a config field {key!r}")
    panels: dict[tuple[str, str], list[tuple[Any, str]]] = {}
    for (label, env), cell in table.cells.items():
        if label in values and cell.runs:
            panels.setdefault((env, algo_of[label]), []).append((values[label], label))
    panels = {k: sorted(v, key=lambda t: (_sort_key(t[0]), t[1])) for k, v in panels.items()}
    if not panels:
        raise InvalidValue("by", f"{key}: no finished run with a config field {key!r}; `sombench status` shows the runs")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, ((env, algo), curves) in zip(axes.ravel(), sorted(panels.items())):
        for i, (value, label) in enumerate(curves):
            group = sorted(table.cells[(label, env)].runs, key=lambda r: r.seed)
            steps, matrix = seed_matrix(group)
            if not len(steps):
                continue
            mean, lo, hi = mean_band(matrix)
            colour = cmap(i / max(1, len(curves) - 1) * 0.9)
            same = [v for v, _ in curves].count(value) > 1
            name = f"{key}={value}" + (f" ({label})" if same else "") + f" (n={len(group)})"
            ax.plot(steps, mean, color=colour, lw=1.6, label=name)
            ax.fill_between(steps, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.set_title(f"{algo} on {env}: by {key}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, out)
