"""`sombench run`: train one algorithm (variant) on one env over seeds, skipping finished seeds and
resuming interrupted ones. `prepare` validates the request and checks the store (nothing written);
`execute` creates the store and trains; `summarise` gives the table of final returns."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.app import common
from sombench.errors import InvalidValue


@dataclasses.dataclass
class RunRequest:
    """What `sombench run` is asked: the fields of its options (see `sombench run --help`)."""

    algo: str
    env: str
    seeds: int = 1
    seed_start: int = 0
    steps: str | int | None = None
    """Env steps per seed (`5e5` accepted); None: the env's paper budget times the algorithm's factor."""
    results: Path = Path("results")
    device: str = "auto"
    workers: int = 1
    sets: list[str] = dataclasses.field(default_factory=list)
    tag: str | None = None
    preset: str | None = None
    schedule: common.Schedule = dataclasses.field(default_factory=common.Schedule)
    threads: int | None = None
    compile: bool = False
    command: tuple[str, ...] = ()
    """The command line, recorded in each run's config.json."""
    track: Any = None
    """A runs.spec.Tracking: the experiment trackers (`--track`); None: none."""
    updates_per_step: str | float | None = None
    """`--updates-per-step R`: the config field updates_per_step (an algorithm's own default when None)."""
    num_envs: str | int | None = None
    """`--num-envs N`: the config field num_envs (the algorithm's own default, 1, when None)."""
    vector_mode: str = "sync"
    """`--vector-mode`: sync or async (sombench.envs.VECTOR_MODES)."""


@dataclasses.dataclass
class RunPlan:
    request: RunRequest
    specs: list
    hint: str | None
    """One line when the work ahead exceeds a few hours on this machine (measure/cost.py), else None."""


def default_steps(cls: type, env: str, paper_budget: int | None) -> int:
    """The paper's budget for `env` times the algorithm's `budget_factor` for it; InvalidValue without one."""
    if paper_budget is None:
        raise InvalidValue("steps", f"N is required: {env} has no paper budget")
    return paper_budget * cls.budget_factor.get(env, 1)


def prepare(req: RunRequest) -> RunPlan:
    """Validate `req`, build its specs and check the store and every existing run; writes nothing."""
    from sombench.envs import describe_env

    cls = common.algorithm_class(req.algo)
    common.check_positive("seeds", req.seeds)
    common.check_non_negative("seed_start", req.seed_start)
    steps = common.parse_count(req.steps, "steps")
    common.check_positive("workers", req.workers)
    req.schedule.check()
    common.check_positive("threads", req.threads)
    common.check_tag(req.tag)
    info = describe_env(req.env)
    if steps is None:
        steps = default_steps(cls, req.env, info.default_steps)
    device = common.resolve_device(req.device)
    sets = [*req.sets, *common.ratio_sets(req.algo, req.updates_per_step, required=True, sets=req.sets),
            *common.num_envs_sets(req.num_envs, req.sets)]
    specs = common.build_specs(req.algo, req.env, list(range(req.seed_start, req.seed_start + req.seeds)), steps,
                               schedule=req.schedule, device=device,
                               threads=common.default_threads(req.threads, req.workers, req.seeds), sets=sets,
                               preset=req.preset, tag=req.tag, compile=req.compile, command=req.command,
                               track=req.track, vector_mode=req.vector_mode)
    common.prepare_store(specs, req.results, report_locked=False)
    from sombench.measure.cost import run_hint

    return RunPlan(req, specs, run_hint(specs, req.workers, req.results))


def execute(plan: RunPlan, on_event: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Create the store and train every seed (finished ones are skipped by the trainer); one outcome per
    spec. `on_event` receives the trainer's progress events, each with its spec's `index`."""
    from sombench.train.executors import LocalLauncher, dispatch

    req, specs = plan.request, plan.specs
    common.open_store(req.results)
    launcher = LocalLauncher(req.workers, in_process=req.workers == 1 or len(specs) == 1, on_event=on_event)
    outcomes = dispatch(specs, req.results, launcher)
    common.raise_setup_errors(outcomes)
    return outcomes



@dataclasses.dataclass
class RunSummary:
    label: str
    env: str
    rows: list[dict[str, Any]]
    """Per seed: seed, status, reason, steps, final_return."""
    finals: list[float]
    mean: float | None
    ci95: float | None
    """Half-width of the Student-t 95% interval over seeds (NaN with one seed)."""
    folder: Path
    failed: int
    ok: bool
    """No seed failed or was refused."""


def summarise(plan: RunPlan, outcomes: list[dict[str, Any]]) -> RunSummary:
    from sombench.analysis.stats import mean_ci
    from sombench.runs.outcome import FINISHED, Outcome
    from sombench.runs.store import Store

    specs = plan.specs
    finals = [float(o["final_return"]) for o in outcomes  # a non-finite final is shown in its row, not averaged
              if o["status"] in FINISHED and o.get("final_return") is not None and math.isfinite(float(o["final_return"]))]
    mean, half = mean_ci(finals) if finals else (None, None)
    rows = [{"seed": o["seed"], "status": o["status"], "reason": o.get("reason"), "steps": o.get("steps"),
             "final_return": o.get("final_return")} for o in outcomes]
    return RunSummary(specs[0].key.label, specs[0].env_id, rows, finals, mean, half,
                      Store(plan.request.results).run_dir(specs[0].key).parent,
                      sum(o["status"] == Outcome.FAILED for o in outcomes),
                      not any(o["status"] in (Outcome.FAILED, Outcome.REFUSED) for o in outcomes))

