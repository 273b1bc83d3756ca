"""`sombench bandit`: train on a 2-D bandit (SOM Section 5.2, Appendices F-H), then write each run's
mode counts and figures. `prepare` validates and checks the store (nothing written); `execute` trains
both groups (clean, and perturbed with `perturb`) and reports.

Per run folder (each written atomically):
    bandit_modes.json         mode counts of 1,000 generator samples, the sample source, the goal check; under
                              `grid`, the counts of the 7 x 7 noise grid's endpoints (the paper's measure, H.3); under
                              `critic`, how the trained critic holds the reward (sombench.train.bandit.critic_report)
    bandit_arrows.png         7 x 7 noise grid -> generated action over the reward heatmap
    bandit_score_field.png    |estimated score| beside the analytic one (algorithms with a score field)
    bandit_perturbation.png   Q landscape and samples at t = 0.75 .. 0, clean and perturbed (--perturb)
Per algorithm folder, <results>/<env>/<algo>[@<variant>]/bandit_modes.json: the per-seed reports and their aggregate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.app import common
from sombench.runs import store
from sombench.train.bandit import MODE_SAMPLES, TrainedBandit, aggregate_reports, critic_report, mode_report
from sombench.render.bandit import arrow_plot, perturbation_plot, score_field_plot
from sombench.bandit.tasks import BanditEnv, BanditTask, Perturbation
from sombench.runs.spec import RunSpec


def expected_reward_fn(task: BanditTask, perturbation: Perturbation | None):
    """The env's reward without its random part (the clean reward, plus a bump)."""
    env = BanditEnv(task.key, perturbation.text if perturbation else None)
    return env.expected_reward


def _label(task: BanditTask, perturbation: Perturbation | None) -> str:
    return task.key + (f" + {perturbation.text}" if perturbation else "")


def report_run(spec: RunSpec, root: Path, task: BanditTask, perturbation: Perturbation | None,
               clean_spec: RunSpec | None = None) -> dict[str, Any]:
    """Load a finished run, write its figures and mode counts into its folder, return the counts."""
    run = store.Store(root).run_dir(spec.key)
    files = store.RunFiles(run)
    tb = TrainedBandit(spec, run)
    points = tb.samples(MODE_SAMPLES, seed=spec.seed + 1_000_003)
    report = {"algo": spec.algo, "env": spec.env_id, "task": task.key, "perturb": perturbation.text if perturbation else None,
              "seed": spec.seed, "steps": spec.total_steps, "source": tb.source, **mode_report(task, points)}
    grid = tb.grid_endpoints()
    if grid is not None:
        report["grid"] = mode_report(task, grid)
    critic = critic_report(tb, task, getattr(spec.config(), "reward_scale", 1.0))
    if critic is not None:
        report["critic"] = critic
    written = [files.bandit_modes, files.bandit_arrows]
    title = f"{spec.algo} on {_label(task, perturbation)}, seed {spec.seed}, {spec.total_steps:,} steps"
    store.atomic_write_bytes(files.bandit_arrows, arrow_plot(tb, task, expected_reward_fn(task, perturbation), title, report))
    score_png = score_field_plot(tb, task, f"score field: {title}")
    if score_png is not None:
        store.atomic_write_bytes(files.bandit_score_field, score_png)
        written.append(files.bandit_score_field)
    if perturbation is not None and clean_spec is not None:
        clean = TrainedBandit(clean_spec, store.Store(root).run_dir(clean_spec.key))
        png = perturbation_plot([("clean", clean), (perturbation.text, tb)], task, task.reward,
                                f"{spec.algo} on {task.key}, seed {spec.seed}: clean vs {perturbation.text} training "
                                f"({spec.total_steps:,} steps); grey = clean reward")
        store.atomic_write_bytes(files.bandit_perturbation, png)
        written.append(files.bandit_perturbation)
    report["files"] = [str(path) for path in written]
    store.atomic_write_json(files.bandit_modes, report)
    return report


def write_aggregate(root: Path, spec: RunSpec, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the seeds' reports and their aggregate beside the seed folders of `spec`'s algorithm (variant)."""
    aggregate = aggregate_reports(reports)
    if all("grid" in r for r in reports):
        aggregate["grid"] = aggregate_reports([r["grid"] for r in reports])
    store.atomic_write_json(store.Store(root).variant_modes(spec.key), {"seeds": reports, "aggregate": aggregate})
    return aggregate


# -- the use case -----------------------------------------------------------------------------------
@dataclasses.dataclass
class BanditRequest:
    """What `sombench bandit` is asked (see `sombench bandit --help`)."""

    algo: str
    task: str = "eight-gaussians"
    perturb: str | None = None
    """`noise:SIGMA` or `bump:C,SIGMA`; the clean task is trained too."""
    seeds: int = 3
    steps: str | int = 4000
    results: Path = Path("results")
    sets: list[str] = dataclasses.field(default_factory=list)
    tag: str | None = None
    device: str = "cpu"
    workers: int = 1
    threads: int | None = None
    compile: bool = False
    command: tuple[str, ...] = ()
    track: Any = None
    """A runs.spec.Tracking: the experiment trackers (`--track`); None: none."""


@dataclasses.dataclass
class BanditPlan:
    request: BanditRequest
    task: BanditTask
    perturbation: Perturbation | None
    steps: int
    groups: dict[str, list]
    """`clean` (and `perturbed`): the specs of each env."""


def prepare(req: BanditRequest) -> BanditPlan:
    """Validate `req`, build both groups' specs (with the algorithm's bandit preset, if it declares one)
    and check the store and every existing run; writes nothing."""
    from sombench.bandit import tasks as bandits
    from sombench.envs import describe_env
    from sombench.errors import InvalidValue
    from sombench.train.bandit import preset_for

    common.algorithm_class(req.algo)
    if req.task not in bandits.TASKS:
        raise InvalidValue("task", f"{req.task!r} is unknown; choose one of: {', '.join(bandits.TASKS)}")
    perturbation = bandits.parse_perturb(req.perturb) if req.perturb is not None else None
    steps = common.parse_count(req.steps, "steps")
    for field in ("seeds", "workers", "threads"):
        common.check_positive(field, getattr(req, field))
    common.check_tag(req.tag)
    device = common.resolve_device(req.device)
    task = bandits.TASKS[req.task]
    env_ids = [task.env_id] + ([bandits.env_id_for(task, perturbation)] if perturbation else [])
    schedule = common.Schedule(eval_every=max(1, steps // 10), eval_episodes=100, checkpoint_every=steps, log_every=max(1, steps // 20))
    groups = {}
    for name, env_id in zip(("clean", "perturbed"), env_ids):
        describe_env(env_id)
        groups[name] = common.build_specs(req.algo, env_id, list(range(req.seeds)), steps, schedule=schedule, device=device,
                                          threads=common.default_threads(req.threads, req.workers, req.seeds), sets=req.sets,
                                          preset=preset_for(req.algo), tag=req.tag, compile=req.compile, command=req.command,
                                          track=req.track)
    common.prepare_store([s for specs in groups.values() for s in specs], req.results, report_locked=False)
    return BanditPlan(req, task, perturbation, steps, groups)


def train_group(plan: BanditPlan, specs: list, on_event: Callable[[dict[str, Any]], None] | None = None) -> list[str]:
    """Create the store (if new) and train one group's seeds; its failures, one line each (empty: all finished)."""
    from sombench.runs.outcome import FINISHED
    from sombench.train.executors import LocalLauncher, dispatch

    req = plan.request
    common.open_store(req.results)
    launcher = LocalLauncher(req.workers, in_process=req.workers == 1 or len(specs) == 1, on_event=on_event)
    outcomes = dispatch(specs, req.results, launcher)
    common.raise_setup_errors(outcomes)
    return [f"{specs[0].env_id} seed {o['seed']}: {o.get('reason', o['status'])}" for o in outcomes
            if o["status"] not in FINISHED]


def report(plan: BanditPlan) -> dict[str, Any]:
    """Write every run's mode counts and figures and each group's aggregate; the whole report (JSON-ready)."""
    req = plan.request
    first = plan.groups["clean"][0]
    payload: dict[str, Any] = {"algo": req.algo, "variant": first.variant, "task": req.task,
                               "perturb": plan.perturbation.text if plan.perturbation else None, "steps": plan.steps,
                               "preset": first.preset, "overrides": list(req.sets), "results": str(req.results)}
    for name, specs in plan.groups.items():
        clean = plan.groups["clean"] if name == "perturbed" else [None] * len(specs)
        reports = [report_run(spec, req.results, plan.task, plan.perturbation if name == "perturbed" else None, c)
                   for spec, c in zip(specs, clean)]
        aggregate = write_aggregate(req.results, specs[0], reports)
        payload[name] = {"env": specs[0].env_id, "seeds": reports, "aggregate": aggregate}
    return payload
