"""The bandit figures of the SOM paper, drawn from a trained run (PNG bytes; the caller writes them
atomically):

- `arrow_plot`: Figure 5 / 13 / 14: a 7 x 7 grid of initial noise (black) to the generated action
  (red) over the reward heatmap; a multi-step generator's whole rollout is drawn as a polyline;
- `score_field_plot`: Figure 15 (Appendix G): |estimated score| beside |analytic score of the smoothed
  target| on a grid, one row per time t;
- `perturbation_plot`: Figure 6 / 16-18: per training (clean, perturbed) the learned Q landscape and
  the generator's samples at sampler times t = 0.75, 0.5, 0.25, 0.

All axes are in the bandit's units (box [-2.5, 2.5]^2).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.table import Table  # noqa: E402

from algorithms.common.capabilities import ScoreField  # noqa: E402
from sombench.train.bandit import TrainedBandit  # noqa: E402
from sombench.bandit.tasks import BOX, BanditTask  # noqa: E402

SAMPLER_TIMES = (0.75, 0.5, 0.25, 0.0)
SCORE_TIMES = (0.25, 0.5, 0.75)
RewardFn = Callable[[torch.Tensor], torch.Tensor]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _grid(extent: float, n: int = 201) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = np.linspace(-extent, extent, n)
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1)


def _heatmap(ax, values: np.ndarray, extent: float, cmap: str = "viridis", **kw):
    return ax.imshow(values, origin="lower", extent=(-extent, extent, -extent, extent), cmap=cmap, interpolation="bilinear", **kw)


def _box(ax, extent: float) -> None:
    ax.add_patch(plt.Rectangle((-BOX, -BOX), 2 * BOX, 2 * BOX, fill=False, ls="--", lw=0.8, color="white"))
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")


def _mark_modes(ax, task: BanditTask, colour: str = "white") -> None:
    if task.mode_centres:
        c = np.array(task.mode_centres)
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=40, c=colour, linewidths=1.2, zorder=4)


def _counts_line(report: dict) -> str:
    values = "/".join(str(v) for v in report["counts"].values())
    names = "/".join(report["counts"]) if len(report["counts"]) <= 4 else f"{len(report['counts'])} regions"
    return f"{names} = {values}; total {report['total']}/{report['n']} ({report['fraction']:.0%})"


def arrow_plot(tb: TrainedBandit, task: BanditTask, reward: RewardFn, title: str, report: dict) -> bytes:
    noise = tb.noise_grid()
    path = tb.rollout(noise)
    start = tb.to_env(noise)
    extent = BOX if path is None else max(BOX, float(np.abs(start).max()) + 0.3)  # noise drawn where it lies
    xx, yy, pts = _grid(extent)
    r = reward(torch.as_tensor(pts)).numpy().reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    im = _heatmap(ax, r, extent)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="reward")
    if path is None:  # no generate(): no noise -> action map to draw; show the acting samples instead
        pts_act = tb.samples(49, seed=tb.spec.seed)
        ax.scatter(pts_act[:, 0], pts_act[:, 1], s=22, c="red", edgecolors="white", linewidths=0.5, zorder=5)
        ax.text(0.5, 0.02, "no generate(): 49 samples of act(), no noise map", transform=ax.transAxes, ha="center", color="white", fontsize=9)
    else:
        for i in range(start.shape[0]):
            xs = [p[i, 0] for p in path]
            ys = [p[i, 1] for p in path]
            many = len(path) > 2  # a multi-step rollout: thin, faint lines, so 49 paths stay legible
            if many:
                ax.plot(xs[:-1], ys[:-1], color="white", lw=0.45, alpha=0.3, zorder=3)
            ax.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-2], ys[-2]),
                        arrowprops=dict(arrowstyle="->", color="white", lw=0.6 if many else 0.9, alpha=0.5 if many else 0.9,
                                        shrinkA=2, shrinkB=2), zorder=3)
        ax.scatter(start[:, 0], start[:, 1], s=16, c="black", edgecolors="white", linewidths=0.4, zorder=5, label="initial noise")
        end = path[-1]
        ax.scatter(end[:, 0], end[:, 1], s=22, c="red", edgecolors="white", linewidths=0.5, zorder=6, label="generated action")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    _mark_modes(ax, task)
    _box(ax, extent)
    steps = "" if path is None else f", {len(path) - 1}-step rollout"
    grid = f"\n7 x 7 grid endpoints (Appendix H.3): {_counts_line(report['grid'])}" if "grid" in report else ""
    ax.set_title(f"{title}{steps}\nmodes ({task.mode_rule}), 1,000 generator samples:\n{_counts_line(report)}{grid}", fontsize=9)
    ax.set_xlabel("a[0]")
    ax.set_ylabel("a[1]")
    return _png(fig)


def score_field_plot(tb: TrainedBandit, task: BanditTask, title: str, n: int = 41) -> bytes | None:
    """|estimated score| (the algorithm's own estimator with its learned critic, Eq. 5) and, where the
    reward is a Gaussian mixture, |analytic score| of that mixture diffused by the same kernel at the
    same t; both in the bandit's units (1/length). None if the algorithm has no score field."""
    if not isinstance(tb.algo, ScoreField):
        return None
    xx, yy, pts = _grid(BOX, n)
    a = tb.to_algo(pts)
    half = float(tb.half[0])
    rows = []
    for t in SCORE_TIMES:
        tt = torch.full((len(pts), 1), t, device=tb.device)
        est = tb.algo.score_field(tb.obs(len(pts)), a, tt).detach().double().cpu() / half  # d/da_env = d/da_algo / half
        scale, std = tb.algo.diffusion_kernel(tt[:1])
        analytic = None
        if task.mixture is not None:
            s, sd = float(scale.reshape(-1)[0]), float(std.reshape(-1)[0]) * half  # kernel in bandit units
            analytic = task.mixture.score(torch.as_tensor(pts), torch.full((len(pts),), s), torch.full((len(pts),), sd))
            analytic = analytic.norm(dim=-1).numpy().reshape(xx.shape)
            rows.append((t, est.norm(dim=-1).numpy().reshape(xx.shape), analytic, s, sd))
        else:
            rows.append((t, est.norm(dim=-1).numpy().reshape(xx.shape), None, float(scale.reshape(-1)[0]), float(std.reshape(-1)[0]) * half))
    cols = 2 if task.mixture is not None else 1
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.6 * cols, 3.9 * len(rows)), squeeze=False)
    for i, (t, est, analytic, s, sd) in enumerate(rows):
        panels = [("estimated |score| (Eq. 5, learned critic)", est)] + ([("analytic |score| of the smoothed reward density", analytic)] if analytic is not None else [])
        for j, (name, field) in enumerate(panels):
            ax = axes[i, j]
            im = _heatmap(ax, field, BOX, cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|score| (1/length)")
            _mark_modes(ax, task, "cyan")
            _box(ax, BOX)
            ax.set_title(f"t = {t}: {name}\nkernel scale {s:.3g}, std {sd:.3g}; max {np.nanmax(field):.3g}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def perturbation_plot(runs: list[tuple[str, TrainedBandit]], task: BanditTask, reward: RewardFn, title: str, n: int = 1000) -> bytes:
    """One row per (label, trained run): the learned Q landscape, then samples at SAMPLER_TIMES."""
    xx, yy, pts = _grid(BOX, 121)
    true_r = reward(torch.as_tensor(pts)).numpy().reshape(xx.shape)
    cols = 1 + len(SAMPLER_TIMES)
    fig, axes = plt.subplots(len(runs), cols, figsize=(3.0 * cols, 3.1 * len(runs)), squeeze=False)
    for i, (label, tb) in enumerate(runs):
        q = tb.q_values(pts)
        ax = axes[i, 0]
        if q is None:
            ax.text(0.5, 0.5, "no critic (q_value)", ha="center", va="center", transform=ax.transAxes)
        else:
            im = _heatmap(ax, q.reshape(xx.shape), BOX)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
        _mark_modes(ax, task)
        _box(ax, BOX)
        ax.set_title(f"{label}: learned Q", fontsize=9)
        at = tb.samples_at(list(SAMPLER_TIMES), n, seed=tb.spec.seed + 7)
        for j, t in enumerate(SAMPLER_TIMES):
            ax = axes[i, j + 1]
            _heatmap(ax, true_r, BOX, cmap="Greys", alpha=0.6)
            if at is None:
                if t == 0.0:
                    p = tb.samples(n, seed=tb.spec.seed + 7)
                    ax.scatter(p[:, 0], p[:, 1], s=3, c="tab:red", alpha=0.5)
                else:
                    ax.text(0.5, 0.06, "no generate(): no intermediate samples", ha="center", transform=ax.transAxes, fontsize=8)
            else:
                p = at[j]
                inside = (np.abs(p) <= BOX).all(axis=1).mean()
                ax.scatter(p[:, 0], p[:, 1], s=3, c="tab:red", alpha=0.5)
                ax.text(0.02, 0.02, f"{inside:.0%} in view", transform=ax.transAxes, fontsize=7)
            _mark_modes(ax, task, "black")
            _box(ax, BOX)
            ax.set_title(f"{label}: samples at t = {t}", fontsize=9)
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def modes_table(title: str, reports: list[dict[str, Any]], aggregate: dict[str, Any]) -> Table:
    names = list(reports[0]["counts"])
    table = Table(title=title, caption=f"{reports[0]['n']:,} samples per seed, {reports[0]['rule']}; source: {reports[0]['source']}")
    grid = all("grid" in r for r in reports)
    for col in ["seed", *names, "total", "fraction"] + (["goal"] if "goal_met" in reports[0] else []) + (["7x7 grid (H.3)"] if grid else []):
        table.add_column(col, justify="right")
    for r in reports:
        goal = (["yes" if r["goal_met"] else "no"] if "goal_met" in r else [])
        table.add_row(str(r["seed"]), *(str(r["counts"][k]) for k in names), str(r["total"]), f"{r['fraction']:.1%}", *goal,
                      *([_grid_cell(r["grid"])] if grid else []))
    table.add_section()
    goal = [f"{aggregate['goal_seeds']}/{aggregate['seeds']} seeds"] if "goal_seeds" in aggregate else []
    table.add_row("all", *(str(aggregate["counts"][k]) for k in names), str(aggregate["total"]),
                  f"{aggregate['fraction']:.1%} ({aggregate['fraction_min']:.0%}-{aggregate['fraction_max']:.0%})", *goal,
                  *([_grid_cell(aggregate["grid"])] if grid and "grid" in aggregate else []))
    if grid:
        table.caption += "; 7x7 grid: the mode counts of the 49 noise-grid endpoints of the arrow plot (the paper's measure)"
    return table


def critic_table(title: str, reports: list[dict[str, Any]]) -> Table:
    """Per seed: corr(Q, r), each region's highest Q over the true peak, the highest Q outside them and Q at the
    origin (sombench.train.bandit.critic_report); more than four regions are shown as their min-max."""
    names = list(reports[0]["critic"]["region_peak"])
    few = len(names) <= 4
    table = Table(title=title, caption=f"min(Q1, Q2) on a {reports[0]['critic']['grid']}^2 grid over the box; peaks over the true "
                                       "reward_scale * max r (1 = the true height); r ~ 0 at the origin")
    for col in ["seed", "corr(Q, r)", *(names if few else ["regions min-max"]), "outside", "origin"]:
        table.add_column(col, justify="right")
    for r in reports:
        c = r["critic"]
        peaks = list(c["region_peak"].values())
        cells = [f"{p:.2f}" for p in peaks] if few else [f"{min(peaks):.2f}-{max(peaks):.2f}"]
        outside = "-" if c["outside_peak"] is None else f"{c['outside_peak']:.2f}"
        table.add_row(str(r["seed"]), f"{c['corr']:.2f}", *cells, outside, f"{c['q_origin']:.2f}")
    return table


def _grid_cell(report: dict[str, Any]) -> str:
    """`N/E/S/W = 3/4/0/5 (12/49)`, or the total alone for a task with more than four regions."""
    counts = "/".join(str(v) for v in report["counts"].values())
    total = f"{report['total']}/{report['n']}"
    return f"{counts} ({total})" if len(report["counts"]) <= 4 else total
