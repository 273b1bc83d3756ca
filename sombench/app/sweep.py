"""`sombench sweep`: a grid of runs (algorithms x envs x seeds x grid values) through the same runner,
store, resume and locks as `sombench run`, on a launcher (sombench/launchers.py: a local process pool,
Ray tasks, or submitit jobs on Slurm or its local executor).

Every grid point is a run variant: `--grid score_scale=5,10` makes `som@score_scale=5` and
`som@score_scale=10`, exactly as `sombench run --set score_scale=5` would name them, so a sweep and
single runs share one store and `table`, `plot` and `status` read both.

Rerunning a sweep finishes it: runs whose state.json says `done` are skipped without being sent to
the launcher; the others are dispatched, and `run_seed` resumes each from its last checkpoint. A run
whose lock a live process holds (the previous sweep's job still running) is not dispatched again: it
is reported as `locked`, and the sweep exits 1 so the user reruns it once that job has ended.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.live import Live
from rich.table import Table

from sombench.runs import store
from sombench.errors import UserError

TERMINAL = ("done", "skipped", "failed", "refused", "locked")


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]). A value that itself holds commas (widths) separates the
    grid values with `|` instead: `hidden_sizes=64,64|256,256`."""
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise UserError(f"--grid {item!r}: expected KEY=V1,V2,... (or KEY=A|B when a value holds commas)")
        parts = [v.strip() for v in values.split("|" if "|" in values else ",")]
        if any(not p for p in parts):
            raise UserError(f"--grid {item!r} has an empty value")
        if key in (k for k, _ in out):
            raise UserError(f"--grid {key} is given twice; list all its values in one --grid")
        out.append((key, list(dict.fromkeys(parts))))
    return out


def split_sets(pairs: list[str], algos: list[str]) -> dict[str, list[str]]:
    """--set pairs per algorithm: `key=value` applies to every algorithm, `ALGO:key=value` to ALGO only."""
    per = {a: [] for a in algos}
    for pair in pairs:
        head, sep, rest = pair.partition(":")
        if sep and "=" not in head:
            if head not in per:
                raise UserError(f"--set {pair!r}: {head} is not one of the sweep's --algos ({', '.join(algos)})")
            per[head].append(rest)
        else:
            for a in algos:
                per[a].append(pair)
    return per


def config_fields(algo: str) -> set[str]:
    import algorithms

    return {f.name for f in dataclasses.fields(algorithms.get(algo).Config)}


@dataclasses.dataclass
class Plan:
    specs: list  # RunSpec, in grid order
    notes: list[str]
    """Grid keys some algorithm lacks (it then runs its default for that key), for a note."""


def expand(algos: list[str], envs: list[str], seeds: list[int], steps: int | None, set_pairs: list[str],
           grid: list[tuple[str, list[str]]], preset: str | None, build: Callable[..., list], budget: Callable[[str, str], int],
           **spec_kwargs: Any) -> Plan:
    """Every RunSpec of the sweep. `build(algo, env, seeds, steps, set_pairs=, preset=, tag=None, **spec_kwargs)`
    makes and validates one variant's specs (cli.build_specs); `budget(algo, env)` is the default step
    count. A grid key applies to the algorithms whose config has that field; the others run once with
    their value (a note says so); a key no algorithm has is an error."""
    per_algo = split_sets(set_pairs, algos)
    notes = []
    for key, _ in grid:
        having = [a for a in algos if key in config_fields(a)]
        if not having:
            raise UserError(f"--grid {key}: no algorithm of --algos has a config field {key!r}; `sombench algos` and --set's error list them")
        notes += [f"{a} has no {key}" for a in algos if a not in having]
    specs = []
    for algo in algos:
        fields = config_fields(algo)
        own = [(k, vs) for k, vs in grid if k in fields]
        points = list(itertools.product(*[[f"{k}={v}" for v in vs] for k, vs in own])) or [()]
        for env in envs:
            n = steps if steps is not None else budget(algo, env)
            for point in points:
                specs += build(algo, env, seeds, n, set_pairs=[*per_algo[algo], *point], preset=preset, tag=None, **spec_kwargs)
    seen: dict = {}
    for spec in specs:
        if spec.key in seen:
            raise UserError(f"the grid names run {spec.key.label} seed {spec.seed} on {spec.env_id} twice "
                            "(a grid value equal to the default and another spelling of it?)")
        seen[spec.key] = spec
    return Plan(specs, notes)


# -- preflight ----------------------------------------------------------------------------------
def preflight(specs: list, results: Path, check: Callable[[Any, Path], None]) -> dict[int, dict[str, Any]]:
    """Outcomes known before launching: `done` runs are `skipped`, runs a live process holds are
    `locked`. Every other run is checked with `check` (cli.check_existing_run: other settings,
    damage, a foreign checkpoint -> UserError before anything is written)."""
    st = store.Store(results)
    known: dict[int, dict[str, Any]] = {}
    for i, spec in enumerate(specs):
        run = st.run_dir(spec.key)
        state = store.read_state(run) or {}
        holder = store.lock_holder(run) if run.exists() else None
        if holder is not None:
            known[i] = {"seed": spec.seed, "status": "locked", "steps": state.get("env_step"),
                        "reason": f"held by pid {holder.get('pid')} on {holder.get('host')}"}
            continue
        check(spec, results)
        if state.get("state") == "done":
            known[i] = {"seed": spec.seed, "status": "skipped", "steps": state.get("env_step"), "final_return": state.get("last_return")}
    return known


# -- the live table -----------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    from sombench.render.progress import fmt_return

    return fmt_return(value)


def run_rows(specs: list, results: Path, outcomes: dict[int, dict[str, Any]], launched: set[int]) -> list[dict[str, Any]]:
    """One row per run: env, label, seed, state, steps done / total, last return (from the store and outcomes)."""
    st = store.Store(results)
    rows = []
    for i, spec in enumerate(specs):
        state = store.read_state(st.run_dir(spec.key)) or {}
        outcome = outcomes.get(i)
        if outcome is not None:
            status = outcome["status"]
        elif i in launched:
            status = "running" if state.get("state") == "running" else "queued"
        else:
            status = "pending"
        steps = state.get("env_step") or (outcome or {}).get("steps") or 0
        ret = state.get("last_return")
        if ret is None and outcome:
            ret = outcome.get("final_return")
        rows.append({"index": i, "env": spec.env_id, "algo": spec.key.label, "seed": spec.seed, "status": status,
                     "steps": int(steps), "total": spec.total_steps, "last_return": ret,
                     "reason": (outcome or {}).get("reason")})
    return rows


STYLE = {"done": "green", "skipped": "dim", "failed": "red", "refused": "red", "locked": "yellow", "running": "cyan"}


def render(rows: list[dict[str, Any]], title: str, limit: int = 40) -> Table:
    from sombench.render.progress import compact

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
                      f"{compact(r['steps'])}/{compact(r['total'])} {pct}", _fmt(r["last_return"]))
    if len(rows) > limit:
        table.add_row("...", f"{len(rows) - limit} more", "", "", "", "")
    return table


def run_sweep(specs: list, results: Path, launcher, console: Console, known: dict[int, dict[str, Any]],
              refresh: float = 1.0) -> list[dict[str, Any]]:
    """Dispatch every run not in `known` through `launcher` (launchers.Launcher), showing the live
    table until all have ended; one outcome per spec, in order."""
    outcomes = dict(known)
    todo = [i for i in range(len(specs)) if i not in outcomes]
    title = f"sweep: {len(specs)} runs on {launcher.describe()}"
    launched: set[int] = set()
    with Live(render(run_rows(specs, results, outcomes, launched), title), console=console, refresh_per_second=2, transient=False) as live:
        try:
            launcher.start([specs[i] for i in todo], results)
            launched.update(todo)
            while len(outcomes) < len(specs):
                for j, outcome in launcher.poll().items():
                    outcomes[todo[j]] = outcome
                live.update(render(run_rows(specs, results, outcomes, launched), title))
                if len(outcomes) < len(specs):
                    time.sleep(refresh)
        except BaseException:
            launcher.stop()
            live.update(render(run_rows(specs, results, outcomes, launched), title))
            raise
        finally:
            launcher.close()
        live.update(render(run_rows(specs, results, outcomes, launched), title))
    if not console.is_terminal:
        console.line()  # Live leaves a piped output's last line open
    return [outcomes[i] for i in range(len(specs))]


def grid_table(specs: list, notes: list[str]) -> Table:
    """The dry run's grid: one row per (env, variant) with its seeds and steps."""
    from sombench.render.progress import compact

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
