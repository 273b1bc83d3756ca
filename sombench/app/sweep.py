"""`sombench sweep`: a grid of runs (algorithms x envs x seeds x grid values) through the same runner,
store, resume and locks as `sombench run`, on a launcher (sombench/train/executors.py: a local process pool,
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
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.app import common
from sombench.errors import InvalidValue, UserError


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]). A value that itself holds commas (widths) separates the
    grid values with `|` instead: `hidden_sizes=64,64|256,256`."""
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise InvalidValue("grid", f"{item!r}: expected KEY=V1,V2,... (or KEY=A|B when a value holds commas)")
        parts = [v.strip() for v in values.split("|" if "|" in values else ",")]
        if any(not p for p in parts):
            raise InvalidValue("grid", f"{item!r} has an empty value")
        if key in (k for k, _ in out):
            raise InvalidValue("grid", f"{key} is given twice; list all its values in one grid entry")
        out.append((key, list(dict.fromkeys(parts))))
    return out


def split_sets(pairs: list[str], algos: list[str]) -> dict[str, list[str]]:
    """--set pairs per algorithm: `key=value` applies to every algorithm, `ALGO:key=value` to ALGO only."""
    per = {a: [] for a in algos}
    for pair in pairs:
        head, sep, rest = pair.partition(":")
        if sep and "=" not in head:
            if head not in per:
                raise InvalidValue("set", f"{pair!r}: {head} is not one of the sweep's algorithms ({', '.join(algos)})")
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
           grid: list[tuple[str, list[str]]], preset: str | None, budget: Callable[[str, str], int],
           **spec_kwargs: Any) -> Plan:
    """Every RunSpec of the sweep, each variant's made and validated by `common.build_specs(...,
    **spec_kwargs)`; `budget(algo, env)` is the default step count. A grid key applies to the algorithms
    whose config has that field; the others run once with their value (a note says so); a key no
    algorithm has is an error."""
    per_algo = split_sets(set_pairs, algos)
    notes = []
    for key, _ in grid:
        having = [a for a in algos if key in config_fields(a)]
        if not having:
            raise InvalidValue("grid", f"{key}: no algorithm of the sweep has a config field {key!r}; `sombench algos NAME` lists them")
        notes += [f"{a} has no {key}" for a in algos if a not in having]
    specs = []
    for algo in algos:
        fields = config_fields(algo)
        own = [(k, vs) for k, vs in grid if k in fields]
        points = list(itertools.product(*[[f"{k}={v}" for v in vs] for k, vs in own])) or [()]
        _check_points(algo, preset, points)
        for env in envs:
            n = steps if steps is not None else budget(algo, env)
            for point in points:
                specs += common.build_specs(algo, env, seeds, n, sets=[*per_algo[algo], *point], preset=preset, tag=None,
                                            **spec_kwargs)
    seen: dict = {}
    for spec in specs:
        if spec.key in seen:
            raise UserError(f"the grid names run {spec.key.label} seed {spec.seed} on {spec.env_id} twice "
                            "(a grid value equal to the default and another spelling of it?)")
        seen[spec.key] = spec
    return Plan(specs, notes)


def _check_points(algo: str, preset: str | None, points: list[tuple[str, ...]]) -> None:
    """InvalidValue naming the grid (not --set) when a grid value is outside its field's domain."""
    from sombench.runs.spec import resolve_config

    for point in points:
        try:
            resolve_config(algo, preset, list(point))
        except InvalidValue as exc:
            if exc.field != "set":
                raise
            raise InvalidValue("grid", f"{algo}: {exc.problem}") from None


# -- the use case -----------------------------------------------------------------------------------
LAUNCHERS = ("local", "ray", "slurm")


@dataclasses.dataclass
class SweepRequest:
    """What `sombench sweep` is asked (see `sombench sweep --help` for each field)."""

    algos: list[str]
    """Algorithm names; `["all"]`: every registered one."""
    envs: list[str]
    """Env ids; `["paper"]`: the paper's nine tasks."""
    seeds: int = 1
    seed_start: int = 0
    steps: str | int | None = None
    sets: list[str] = dataclasses.field(default_factory=list)
    grid: list[str] = dataclasses.field(default_factory=list)
    preset: str | None = None
    launcher: str = "local"
    results: Path = Path("results")
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0
    partition: str | None = None
    time: str = "24:00:00"
    schedule: common.Schedule = dataclasses.field(default_factory=common.Schedule)
    compile: bool = False
    command: tuple[str, ...] = ()
    track: Any = None
    """A runs.spec.Tracking: the experiment trackers (`--track`); None: none."""
    updates_per_step: str | float | None = None
    """`--updates-per-step R`, for every algorithm with that field (the others are noted)."""
    num_envs: str | int | None = None
    """`--num-envs N` for every algorithm (each one's num_envs)."""
    vector_mode: str = "sync"
    """`--vector-mode`: sync or async."""


@dataclasses.dataclass
class SweepPlan:
    request: SweepRequest
    specs: list
    notes: list[str]
    device: str
    workers: int
    """Runs at once."""
    threads: int
    """Torch threads per run."""


def _check(req: SweepRequest) -> None:
    from sombench.train.executors import parse_time

    if req.launcher not in LAUNCHERS:
        raise InvalidValue("launcher", f"{req.launcher!r} is unknown; use {', '.join(LAUNCHERS)}")
    for field in ("seeds", "workers", "threads", "cpus_per_run"):
        common.check_positive(field, getattr(req, field))
    req.schedule.check()
    common.check_non_negative("seed_start", req.seed_start)
    if req.gpus_per_run < 0:
        raise InvalidValue("gpus_per_run", f"must be >= 0, got {req.gpus_per_run}")
    if req.launcher != "ray" and req.address:
        raise InvalidValue("address", "is for the ray launcher")
    if req.launcher != "slurm" and req.partition:
        raise InvalidValue("partition", "is for the slurm launcher")
    if req.launcher == "slurm":
        parse_time(req.time)
    elif req.time != SweepRequest.time:
        raise InvalidValue("time", "is for the slurm launcher")


def _device(req: SweepRequest, dry_run: bool) -> str:
    if req.launcher == "local" or dry_run:
        return common.resolve_device(req.device)
    name = common.check_device_name(req.device)  # the runs' machines, not this one, must have the device
    return name if name != "auto" else ("cuda" if req.gpus_per_run > 0 else "cpu")


def prepare(req: SweepRequest, dry_run: bool = False) -> SweepPlan:
    """Validate `req` and expand its grid into specs (nothing written; the store is checked by `execute`)."""
    from sombench.envs import PAPER_TASKS, describe_env

    _check(req)
    algos = common.split_names(req.algos) or []
    if algos == ["all"]:
        algos = common.algorithm_names()
    algos = list(dict.fromkeys(algos))
    if not algos:
        raise InvalidValue("algos", "needs at least one algorithm name (or all)")
    classes = {a: common.algorithm_class(a) for a in algos}
    envs = common.split_names(req.envs) or []
    if envs == ["paper"]:
        envs = list(PAPER_TASKS)
    envs = list(dict.fromkeys(envs))
    if not envs:
        raise InvalidValue("envs", "needs at least one env id (or paper)")
    steps = common.parse_count(req.steps, "steps")
    infos = {e: describe_env(e) for e in envs}
    if steps is None:
        missing = [e for e, info in infos.items() if info.default_steps is None]
        if missing:
            raise InvalidValue("steps", f"N is required: {missing[0]} has no paper budget")
    grid = parse_grid(req.grid)
    ratio = [f"{a}:{pair}" for a in algos for pair in common.ratio_sets(a, req.updates_per_step, required=False, sets=req.sets)]
    if req.updates_per_step is not None and not ratio:  # it would change nothing: refuse, as `run` does
        raise InvalidValue("updates-per-step", f"is not for {', '.join(algos)}: on-policy, they update once per rollout")
    device = _device(req, dry_run)
    cores = os.cpu_count() or 1
    workers = req.workers or (1 if req.launcher == "local" else max(1, cores // req.cpus_per_run))
    threads = req.threads or (max(1, cores // workers) if req.launcher == "local" else req.cpus_per_run)
    vector = common.num_envs_sets(req.num_envs, req.sets)
    plan = expand(algos, envs, list(range(req.seed_start, req.seed_start + req.seeds)), steps, [*req.sets, *ratio, *vector], grid,
                  req.preset, lambda a, e: infos[e].default_steps * classes[a].budget_factor.get(e, 1),
                  schedule=req.schedule, device=device, threads=threads, compile=req.compile, command=req.command, track=req.track,
                  vector_mode=req.vector_mode)
    if req.updates_per_step is not None:
        plan.notes += [f"{a} has no updates_per_step (on-policy)" for a in algos if not common.has_update_ratio(a)]
    return SweepPlan(req, plan.specs, plan.notes, device, workers, threads)


def projection(plan: SweepPlan):
    """The dry run's cost projection (measure/cost.py), timing updates with the runs' thread count (each spec's)."""
    from sombench.measure import cost

    return cost.project(plan.specs, plan.device, plan.request.results.absolute())


def launcher_for(plan: SweepPlan):
    """The launcher the request names (train/executors.py); UserError when its extra is not installed."""
    from sombench.train import executors

    req = plan.request
    if req.launcher == "ray":
        return executors.RayLauncher(req.address, req.cpus_per_run, req.gpus_per_run,
                                     num_cpus=None if req.address else (req.workers or os.cpu_count() or 1))
    if req.launcher == "slurm":
        from sombench.runs.store import Store

        return executors.SlurmLauncher(Store(req.results.absolute()).launcher_dir("submitit"), req.partition, executors.parse_time(req.time),
                                       req.cpus_per_run, int(math.ceil(req.gpus_per_run)), plan.workers)
    return executors.LocalLauncher(plan.workers)


@dataclasses.dataclass
class Prepared:
    """A sweep ready to dispatch: its launcher and the outcomes known before launching (skipped, locked)."""

    plan: SweepPlan
    results: Path
    launcher: Any
    known: dict[int, dict[str, Any]]


def check(plan: SweepPlan) -> Prepared:
    """Build the launcher, check the store and every run (UserError before anything is written)."""
    launcher = launcher_for(plan)
    results = plan.request.results.absolute()
    known = common.prepare_store(plan.specs, results, report_locked=True)
    return Prepared(plan, results, launcher, known)


def execute(prepared: Prepared, on_update: Callable[[dict[int, dict[str, Any]], set[int]], None] | None = None,
            refresh: float = 1.0) -> list[dict[str, Any]]:
    """Create the store and dispatch every run not known yet; one outcome per spec, in order."""
    from sombench.train.executors import dispatch

    common.open_store(prepared.results)
    return dispatch(prepared.plan.specs, prepared.results, prepared.launcher, prepared.known, on_update, refresh)


# -- the live table's rows ------------------------------------------------------------------------
def run_rows(specs: list, results: Path, outcomes: dict[int, dict[str, Any]], launched: set[int]) -> list[dict[str, Any]]:
    """One row per run: env, label, seed, state, steps done / total, last return (from the store and outcomes)."""
    from sombench.runs import store

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
