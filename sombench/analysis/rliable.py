"""Aggregate metrics of Agarwal et al. (2021, "Deep RL at the Edge of the Statistical Precipice",
the rliable library), computed on min-max normalized final returns:

- IQM: mean of the middle 50% of all (run, task) scores (scipy.stats.trim_mean, 25% cut each side);
- optimality gap: gamma - mean(min(score, gamma)) with gamma = 1 (lower is better);
- probability of improvement P(X > Y): the mean over tasks of the Mann-Whitney U statistic
  normalised to [0, 1], i.e. P(x > y) + 0.5 P(x = y) for a random run x of X and y of Y.

95% CIs come from the stratified bootstrap rliable uses: runs are resampled with replacement
within each task, independently across tasks. scipy.stats.bootstrap does exactly this when given
one sample per task with paired=False, so no bootstrap is hand-written here. Percentile intervals,
seeded, so the same store gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from sombench.analysis.aggregate import ResultTable
from sombench.errors import UserError

GAMMA = 1.0


def iqm(*per_task: np.ndarray) -> float:
    return float(stats.trim_mean(np.concatenate(per_task), 0.25))


def optimality_gap(*per_task: np.ndarray) -> float:
    scores = np.concatenate(per_task)
    return float(GAMMA - np.minimum(scores, GAMMA).mean())


def probability_of_improvement(x_tasks: list[np.ndarray], y_tasks: list[np.ndarray]) -> float:
    values = []
    for x, y in zip(x_tasks, y_tasks):
        diff = x[:, None] - y[None, :]
        values.append(float((diff > 0).mean() + 0.5 * (diff == 0).mean()))
    return float(np.mean(values))


def normalized_scores(table: ResultTable) -> dict[str, list[np.ndarray]]:
    """algo -> one array of normalized run scores per env (same env order for every algo)."""
    out = {}
    for algo in table.algos:
        tasks = []
        for env in table.envs:
            lo, hi = table.norm_min[env], table.norm_max[env]
            cell = table.cells.get((algo, env))
            if cell is None or cell.n < 2:
                raise UserError(f"rliable statistics need at least 2 finished seeds in every cell; {algo} on {env} has "
                                f"{0 if cell is None else cell.n}")
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise UserError(f"rliable statistics cannot normalize {env}: its min and max coincide (one algorithm?)")
            tasks.append((np.asarray(cell.values) - lo) / (hi - lo))
        out[algo] = tasks
    return out


def _ci(data: tuple, statistic, reps: int, seed: int) -> tuple[float, float]:
    res = stats.bootstrap(data, statistic, n_resamples=reps, paired=False, vectorized=False, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def rliable_stats(table: ResultTable, reps: int = 2000, seed: int = 0) -> dict:
    scores = normalized_scores(table)
    per_algo = {}
    for algo, tasks in scores.items():
        per_algo[algo] = {
            "iqm": iqm(*tasks), "iqm_ci": _ci(tuple(tasks), iqm, reps, seed),
            "optimality_gap": optimality_gap(*tasks), "optimality_gap_ci": _ci(tuple(tasks), optimality_gap, reps, seed),
        }
    n_tasks = len(table.envs)
    pairs = []
    for x in table.algos:
        for y in table.algos:
            if x == y:
                continue

            def poi(*samples, _n=n_tasks):
                return probability_of_improvement(list(samples[:_n]), list(samples[_n:]))

            pairs.append({"x": x, "y": y, "p": probability_of_improvement(scores[x], scores[y]),
                          "ci": _ci(tuple(scores[x]) + tuple(scores[y]), poi, reps, seed)})
    return {"per_algo": per_algo, "probability_of_improvement": pairs, "bootstrap": {"reps": reps, "seed": seed,
            "method": "stratified percentile bootstrap (scipy.stats.bootstrap, one sample per task)"}}
