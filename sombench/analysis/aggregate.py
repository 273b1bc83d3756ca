"""From a results store to Table 1: final returns per (env, algo) cell with Student-t 95% CIs,
best/second marks, a min-max normalized column, and flags for runs that must not be mixed in.

Final return of a run: the mean return of its last evaluation (or of its evaluation at exactly
`at_step` when comparing at a common step). A cell averages the final returns of its seeds.

What enters a cell (never silently):
- only runs in state `done` at the cell's budget; unfinished, failed or interrupted runs are
  left out and the cell is flagged;
- only finite final returns: a seed whose final evaluation is NaN or infinite (an env that returned
  such a reward) is left out, and the cell is flagged with that seed and value;
- the budget of an env is the most common `total_steps` among its finished runs, each divided by its
  run's budget factor (PPO's 5x on three tasks), and a cell's budget is that times its runs' factor;
  runs at another budget are left out and flagged; `at_step` replaces all this by "the evaluation at
  that step" and flags only runs that have not reached it.

The budget factor is the one the run was made with, read from its record (`budget_factor`), never the
algorithm's current one: nothing here imports torch or the algorithms (see `budget_factor`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from sombench.analysis.stats import mean_ci
from sombench.errors import InvalidValue, UserError
from sombench.runs import store
from sombench.runs.outcome import RunState


@dataclasses.dataclass
class Run:
    env: str
    algo: str
    """The row label: the algorithm, or `algo@variant` for a non-default config."""
    seed: int
    state: RunState | str
    total_steps: int | None
    evals: pd.DataFrame
    damage: str | None = None
    """Why this run's files cannot be read (it is then flagged and left out)."""
    budget_factor: int = 1
    """The run's multiple of the env's budget (PPO trains 5x longer on three tasks)."""


def budget_factor(record: store.RunRecord) -> int:
    """The multiple of its env's budget a run was made at: the `budget_factor` its config.json records.

    A run stored before records carried it (or without a config.json) falls back to what its own numbers
    say, without importing the algorithms: the quotient of its `total_steps` by its env's paper budget
    (sombench.envs.PAPER_TASKS) when that is an integer multiple of at least 2 (PPO's paper runs at 5x),
    else 1. Such a run is then compared at that multiple, which the table's footnote names; any other
    run (a budget of its own, or an env without a paper budget) counts at 1x. Before records carried
    the factor, the algorithm's current class attribute was used instead, which needed torch.
    """
    recorded = record.budget_factor
    return recorded if recorded is not None else inferred_budget_factor(record.key.env, record.total_steps)


def inferred_budget_factor(env: str, total_steps: int | None) -> int:
    """`total_steps` / env's paper budget when an integer of at least 2, else 1 (see `budget_factor`)."""
    if not total_steps:
        return 1
    from sombench.envs import PAPER_TASKS  # imported here: gymnasium is paid for by old records only

    task = PAPER_TASKS.get(env)
    if task is None or total_steps < 2 * task.budget or total_steps % task.budget:
        return 1
    return total_steps // task.budget


def load_runs(root: Path, envs: list[str] | None = None, algos: list[str] | None = None) -> list[Run]:
    """Every run of the store (optionally filtered), with its evaluation history. A damaged run is kept
    with its reason, so tables and plots can name it; it never stops the others from being read."""
    st = store.Store(root)
    st.check_readable()
    runs = []
    for rec in st.runs(envs, algos):
        evals = rec.evals()  # marks the record damaged if eval.csv is
        runs.append(Run(rec.key.env, rec.key.label, rec.key.seed, rec.status, rec.total_steps, evals, rec.damage,
                        budget_factor(rec)))
    if not runs:
        what = " of the selected envs and algorithms" if envs or algos else ""
        raise UserError(f"no runs{what} in {root}; run `sombench run` first")
    return runs


@dataclasses.dataclass
class Cell:
    values: list[float]
    seeds: list[int]
    excluded: list[str]  # one reason per left-out run, e.g. "seed 3 unfinished"
    runs: list[Run] = dataclasses.field(default_factory=list)
    """The runs whose values entered the cell (the plot draws exactly these)."""
    notes: list[str] = dataclasses.field(default_factory=list)
    """Flags that leave no run out (seeds evaluated on different schedules); shown like exclusions."""
    summary: tuple[float, float, int] | None = None
    """(mean, CI half-width, n) given from outside (the paper's cells) instead of computed from values."""

    @property
    def n(self) -> int:
        return self.summary[2] if self.summary else len(self.values)

    @property
    def mean(self) -> float:
        return self.summary[0] if self.summary else mean_ci(self.values)[0]

    @property
    def ci(self) -> float:
        return self.summary[1] if self.summary else mean_ci(self.values)[1]


@dataclasses.dataclass
class ResultTable:
    envs: list[str]
    algos: list[str]
    cells: dict[tuple[str, str], Cell]  # (algo, env)
    budgets: dict[str, int | None]
    at_step: int | None
    norm_min: dict[str, float]
    norm_max: dict[str, float]
    norm_note: str
    normalized_override: dict[str, float] | None = None
    """Printed Normalized values to show instead of recomputing them (the paper's table)."""
    source_note: str | None = None
    """Replaces the footnote on how final returns were taken (the paper's table)."""
    budget_factors: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(algo, env) -> budget multiple of the cells compared at a longer budget (PPO's 5x)."""

    def mean(self, algo: str, env: str) -> float:
        cell = self.cells.get((algo, env))
        return cell.mean if cell and cell.n else math.nan

    def normalized(self, algo: str) -> tuple[float, int]:
        """Average over envs of (mean - min) / (max - min); returns (value, number of envs used)."""
        if self.normalized_override is not None:
            return self.normalized_override.get(algo, math.nan), len(self.envs)
        scores = []
        for env in self.envs:
            m, lo, hi = self.mean(algo, env), self.norm_min.get(env, math.nan), self.norm_max.get(env, math.nan)
            if math.isfinite(m) and math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                scores.append((m - lo) / (hi - lo))
        return (float(np.mean(scores)) if scores else math.nan), len(scores)

    def ranks(self, column: list[float]) -> dict[int, int]:
        """Row index -> 1 (best) or 2 (second) for the finite values of a column."""
        order = sorted((v, i) for i, v in enumerate(column) if math.isfinite(v))[::-1]
        return {i: r for r, (_, i) in enumerate(order[:2], start=1)}

    @property
    def seeds_differ(self) -> bool:
        return len({c.n for c in self.cells.values()}) > 1


def final_return(run: Run, at_step: int | None) -> float | None:
    """The last evaluation's mean return; with `at_step`, the last evaluation at or before that step, provided
    the run has reached it (None otherwise)."""
    frame = run.evals
    if frame.empty:
        return None
    if at_step is None:
        return float(frame["return_mean"].iloc[-1])
    reached = int(frame["env_step"].iloc[-1]) >= at_step or (run.state == RunState.DONE and (run.total_steps or 0) >= at_step)
    before = frame[frame["env_step"] <= at_step]
    return float(before["return_mean"].iloc[-1]) if reached and len(before) else None


def exclusion(run: Run, value: float | None, at_step: int | None, budget: int | None) -> str | None:
    """Why `run` (final return `value`) stays out of its cell, after "seed N"; None when it enters."""
    if run.damage:
        return f"damaged ({run.damage})"
    if at_step is not None:
        if value is None:
            return f"has not reached step {at_step:,}"
    elif run.state != RunState.DONE:
        return f"{run.state}"
    elif budget is None or run.total_steps != budget * run.budget_factor:
        expected = "an unknown budget" if budget is None else f"{budget * run.budget_factor:,}"
        return f"ran {run.total_steps:,} steps, not {expected}"
    elif value is None:
        return "has no evaluation"
    if not math.isfinite(value):
        return f"final return is {value} (an evaluation episode's return was not finite)"
    return None


def build_table(runs: list[Run], at_step: int | None = None, norm_ref: dict[str, dict[str, float]] | None = None,
                ref_label: str = "the reference file") -> ResultTable:
    envs = sorted({r.env for r in runs})
    algos = sorted({r.algo for r in runs})
    budgets: dict[str, int | None] = {}
    for env in envs:
        totals = Counter(r.total_steps // r.budget_factor for r in runs
                         if r.env == env and r.state == RunState.DONE and r.total_steps and r.total_steps % r.budget_factor == 0)
        budgets[env] = totals.most_common(1)[0][0] if totals else None
    cells: dict[tuple[str, str], Cell] = {}
    factors: dict[tuple[str, str], int] = {}
    for run in sorted(runs, key=lambda r: (r.algo, r.env, r.seed)):
        cell = cells.setdefault((run.algo, run.env), Cell([], [], []))
        value = final_return(run, at_step) if not run.damage else None
        reason = exclusion(run, value, at_step, budgets[run.env])
        if reason:
            cell.excluded.append(f"seed {run.seed} {reason}")
            continue
        cell.values.append(value)
        cell.seeds.append(run.seed)
        cell.runs.append(run)
        if run.budget_factor != 1:
            factors[(run.algo, run.env)] = run.budget_factor

    for cell in cells.values():
        schedule_note(cell)
    table = ResultTable(envs, algos, cells, budgets, at_step, {}, {}, "", budget_factors=factors)
    lo = {e: min((table.mean(a, e) for a in algos if math.isfinite(table.mean(a, e))), default=math.nan) for e in envs}
    hi = {e: max((table.mean(a, e) for a in algos if math.isfinite(table.mean(a, e))), default=math.nan) for e in envs}
    note = "Normalized: per-env min-max over the algorithms' final means in this table, averaged over envs."
    if norm_ref:
        for env, ref in norm_ref.items():
            if env in lo and math.isfinite(ref.get("min", math.nan)):
                lo[env] = ref["min"]
            if env in hi and math.isfinite(ref.get("max", math.nan)):
                hi[env] = ref["max"]
        own = [e for e in envs if e not in norm_ref or not all(math.isfinite(norm_ref[e].get(k, math.nan)) for k in ("min", "max"))]
        note = (f"Normalized: per-env (mean - min) / (max - min) with min/max from {ref_label} where it gives them, "
                "else the table's own min/max; averaged over envs.")
        if own:
            note += f" The table's own min and/or max: {', '.join(own)}."
    table.norm_min, table.norm_max, table.norm_note = lo, hi, note
    return table


def schedule_note(cell: Cell) -> None:
    """Flag a cell whose seeds were evaluated at different steps (another --eval-every per seed): their finals
    compare alike (every run evaluates at its last step), but their curves need the common grid of
    `common_grid`, which the flag names."""
    schedules = {run.seed: tuple(int(s) for s in run.evals["env_step"]) for run in cell.runs}
    if len(set(schedules.values())) > 1:
        first = ", ".join(f"seed {seed} from step {steps[0]:,}" if steps else f"seed {seed} never"
                          for seed, steps in sorted(schedules.items()))
        cell.notes.append(f"seeds evaluated on different schedules ({first}); curves carry each seed's last evaluation "
                          "forward onto the union of their steps")


def common_grid(runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, returns [seeds, steps]): seeds evaluated on any schedules on one grid. The grid is the union of
    the seeds' evaluation steps from the latest first evaluation to the earliest last one (the steps every
    seed covers); a seed's value at a grid step is its latest evaluation at or before it (carried forward).
    Seeds sharing one schedule get exactly their evaluations."""
    frames = [run.evals.sort_values("env_step") for run in runs]
    if not frames or any(f.empty for f in frames):
        return np.array([], dtype=int), np.zeros((len(frames), 0))
    start = max(int(f["env_step"].iloc[0]) for f in frames)
    end = min(int(f["env_step"].iloc[-1]) for f in frames)
    union = sorted({int(s) for f in frames for s in f["env_step"]})
    steps = np.array([s for s in union if start <= s <= end], dtype=int)
    values = np.empty((len(frames), len(steps)))
    for i, f in enumerate(frames):
        own = f["env_step"].to_numpy(dtype=np.int64)
        values[i] = f["return_mean"].to_numpy(dtype=float)[np.searchsorted(own, steps, side="right") - 1]
    return steps, values


# -- reference data -----------------------------------------------------------------------------
def _data_path(name: str) -> Path:
    return Path(str(resources.files("sombench") / "data" / name))


FIXED_REF = "fixed"
"""`--norm-ref fixed`: min = the random-policy score, max = the best mean of the paper's Table 1 (per env)."""


def fixed_norm_ref() -> dict[str, dict[str, float]]:
    """References that no table changes: per paper task, min = the shipped random-policy score
    (random_scores.csv) and max = the best final mean any algorithm reaches in the paper's Table 1. So an
    algorithm's normalized score, and rliable's intervals, stay put when another algorithm is added."""
    out = read_norm_ref("random")
    best = paper_table()[0].groupby("env")["mean"].max()
    for env, value in best.items():
        out.setdefault(env, {"min": math.nan, "max": math.nan})["max"] = float(value)
    return out


def read_norm_ref(spec: str) -> dict[str, dict[str, float]]:
    """`random` (the shipped random-policy scores), `fixed` (`fixed_norm_ref`) or a CSV with columns env, min,
    max (either may be blank). InvalidValue (field `norm_ref`) when it cannot be read or lacks those columns."""
    if spec == FIXED_REF:
        return fixed_norm_ref()
    path = _data_path("random_scores.csv") if spec == "random" else Path(spec)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidValue("norm_ref", f"{spec} cannot be read: {first}") from None
    if "env" not in frame.columns or not ({"min", "max"} & set(frame.columns)):
        raise InvalidValue("norm_ref", f"{spec} needs columns env and min and/or max")
    out = {}
    for row in frame.to_dict("records"):
        try:
            out[str(row["env"])] = {k: float(row[k]) if k in row and pd.notna(row[k]) else math.nan for k in ("min", "max")}
        except (TypeError, ValueError):
            raise InvalidValue("norm_ref", f"{spec}: the min or max of {row['env']} is not a number") from None
    return out


def paper_table() -> tuple[pd.DataFrame, dict[str, float]]:
    """The paper's Table 1 (algo, env, mean, ci) and its printed Normalized column."""
    cells = pd.read_csv(_data_path("paper_table1.csv"))
    norm = pd.read_csv(_data_path("paper_table1_normalized.csv"))
    return cells, dict(zip(norm["algo"], norm["normalized"]))


def table_from_frame(frame: pd.DataFrame, normalized: dict[str, float] | None = None, n: int = 5) -> ResultTable:
    """A ResultTable of given cells (columns algo, env, mean, ci), e.g. the paper's Table 1."""
    runs = [Run(r["env"], r["algo"], 0, RunState.DONE, 1, pd.DataFrame({"env_step": [1], "return_mean": [r["mean"]]}))
            for r in frame.to_dict("records")]
    table = build_table(runs)
    for r in frame.to_dict("records"):
        table.cells[(r["algo"], r["env"])].summary = (float(r["mean"]), float(r.get("ci", math.nan)), n)
    table.normalized_override = normalized
    table.source_note = f"Final return: mean ± 95% CI over {n} seeds, as printed in the paper."
    if normalized is not None:
        table.norm_note = "Normalized: as printed in the paper, over its five locomotion tasks (its min and max are not stated)."
    return table


def paper_cells_for(table: ResultTable) -> ResultTable | None:
    """The paper's Table 1 restricted to this table's algorithms (names matched case-insensitively; a variant such as
    `som@demo` brings the paper's `som` row, once however many variants of it the table has) and envs."""
    cells, normalized = paper_table()
    ours = {a.split("@", 1)[0].lower(): a.split("@", 1)[0] for a in table.algos}
    cells = cells[cells["algo"].str.lower().isin(ours) & cells["env"].isin(table.envs)].copy()
    if cells.empty:
        return None
    cells["algo"] = cells["algo"].str.lower().map(ours)
    printed = {ours[a.lower()]: v for a, v in normalized.items() if a.lower() in ours}
    return table_from_frame(cells, normalized=printed)
