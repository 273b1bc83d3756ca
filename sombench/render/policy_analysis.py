"""The policy-analysis figures of the SOM paper, from numbers computed elsewhere (PNG bytes; the caller
writes them atomically), and `sombench analyze`'s printed summary:

- `box_plot`: Figure 3 (Appendix D): per method, box plots over the sampled states of the per-state mean
  and std of the critic's Q over the method's candidates, the states drawn on top;
- `tsne_plot`: Figures 4 and 10-12 (Appendix E): the Q-landscape on the t-SNE plane as a heat map with 8
  contour lines, the first method's samples as white circles and the second's as gray triangles (as in
  the paper), one panel for all rollout steps and one per step.

No torch here: everything comes in as numpy arrays (sombench.analysis.policy_analysis).
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402

from sombench.analysis.policy_analysis import BoxSummary, TsnePanel  # noqa: E402

MARKERS = [  # (marker, face, edge): the paper's SOM = white circles, MFP = gray triangles; then others
    ("o", "white", "black"),
    ("^", "#8c8c8c", "#303030"),
    ("s", "#f4a261", "black"),
    ("D", "#2a9d8f", "black"),
    ("v", "#e9c46a", "black"),
    ("P", "#e76f51", "black"),
]
BOX_FACES = ["#dddddd", "#8c8c8c", "#f4a261", "#2a9d8f", "#e9c46a", "#e76f51"]


def wrap_label(label: str, width: int = 24) -> str:
    """A method label on several lines for axes and legends: `algo` then `@variant` broken at its `+`s
    (and hard at `width` characters where a part is longer)."""
    algo, at, variant = label.partition("@")
    if not at or len(label) <= width:
        return label
    lines, line = [algo], "@"
    for part in variant.split("+"):
        piece = part if line == "@" else "+" + part
        if len(line) + len(piece) > width and line not in ("@", ""):
            lines.append(line)
            line = piece
        else:
            line += piece
    lines.append(line)
    return "\n".join(chunk[i:i + width] for chunk in lines for i in range(0, max(1, len(chunk)), width))


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def box_plot(summaries: list[BoxSummary], title: str, caption: str) -> bytes:
    """Figure 3: two panels (Q mean, Q std per state), one box per method (`summaries`: each method's [S]
    per-state means and stds, critic units) over the states (whiskers at 1.5 IQR, matplotlib's default),
    each state a dot; `title` above, `caption` (settings and the critic) under the plot. PNG bytes."""
    fig, axes = plt.subplots(1, 2, figsize=(3.2 + 1.3 * len(summaries) * 2, 4.2))
    rng = np.random.default_rng(0)  # jitter of the dots only
    for ax, (name, attr) in zip(axes, (("mean", "mean"), ("std", "std"))):
        data = [getattr(s, attr) for s in summaries]
        parts = ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False, medianprops={"color": "black", "lw": 1.5})
        for patch, face in zip(parts["boxes"], BOX_FACES):
            patch.set_facecolor(face)
            patch.set_alpha(0.8)
        for i, values in enumerate(data):
            ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, len(values)), values, s=9, c="black", alpha=0.45, lw=0, zorder=3)
        ax.set_xticks(range(1, len(summaries) + 1), [wrap_label(s.label) for s in summaries], fontsize=8)
        ax.set_title(f"Q {name} over candidates, per state")
        ax.set_ylabel(f"per-state Q {name}")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.text(0.5, -0.02, caption, ha="center", va="top", fontsize=8, wrap=True)
    fig.tight_layout()
    return _png(fig)


def _panel(ax, panel: TsnePanel, labels: list[str], fig) -> None:
    land = panel.landscape
    extent = (land.x[0], land.x[-1], land.y[0], land.y[-1])
    image = ax.imshow(land.q, origin="lower", extent=extent, aspect="auto", cmap="viridis", interpolation="bilinear")
    ax.contour(land.x, land.y, land.q, levels=land.levels(), colors="black", linewidths=0.6, alpha=0.7, negative_linestyles="solid")
    for label, (marker, face, edge) in zip(labels, MARKERS):
        pts = panel.points[label]
        ax.scatter(pts[:, 0], pts[:, 1], marker=marker, s=16, c=face, edgecolors=edge, linewidths=0.4, alpha=0.85,
                   label=wrap_label(label, 60), zorder=3)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.tick_params(labelsize=7)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("smoothed Q", fontsize=8)


def tsne_plot(panels: list[TsnePanel], labels: list[str], title: str, caption: str) -> bytes:
    """Figures 10-12 (and Figure 4 per step): the panels of analysis.tsne_panels on a grid of three columns,
    `labels` (the methods, in order: markers from MARKERS) in one legend under them; axes in t-SNE units,
    the heat map in the critic's Q units (one colour bar per panel). PNG bytes."""
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.3 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i < len(panels):
            _panel(ax, panels[i], labels, fig)
            ax.set_xlabel("t-SNE 1", fontsize=8)
            ax.set_ylabel("t-SNE 2", fontsize=8)
        else:
            ax.axis("off")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    handles, names = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(names), fontsize=9, markerscale=1.6,
               facecolor="#d9d9d9", framealpha=1.0)
    fig.text(0.5, -0.005, caption, ha="center", va="top", fontsize=9, wrap=True)
    return _png(fig)


def summary(rows: list[dict], title: str, notes: list[str]) -> list:
    """The printed summary of `sombench analyze`: a row per method (`rows`: label, step, median_mean,
    median_std, spread: the medians over states of the per-state Q mean and std, and the mean distance of its
    t-SNE points from their step's centroid), then `notes` (critic, files written) as lines."""
    table = Table(title=title, title_justify="left")
    table.add_column("method", overflow="fold")
    for name in ("step", "median\nQ mean", "median\nQ std", "t-SNE\nspread"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row["label"], f"{row['step']:,}", f"{row['median_mean']:.4g}", f"{row['median_std']:.4g}", f"{row['spread']:.3g}")
    return [table, *notes]
