"""`sombench bandit`'s outputs for trained runs: files in each run folder, and the printed summary.

Per run folder (each written atomically):
    bandit_modes.json         mode counts of 1,000 generator samples, the sample source, the goal check
    bandit_arrows.png         7 x 7 noise grid -> generated action over the reward heatmap
    bandit_score_field.png    |estimated score| beside the analytic one (algorithms with a score field)
    bandit_perturbation.png   Q landscape and samples at t = 0.75 .. 0, clean and perturbed (--perturb)
Per algorithm folder, <results>/<env>/<algo>[@<variant>]/bandit_modes.json: the per-seed reports and their aggregate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from sombench.runs import store
from sombench.train.bandit import MODE_SAMPLES, TrainedBandit, aggregate_reports, mode_report
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
    tb = TrainedBandit(spec, run)
    points = tb.samples(MODE_SAMPLES, seed=spec.seed + 1_000_003)
    report = {"algo": spec.algo, "env": spec.env_id, "task": task.key, "perturb": perturbation.text if perturbation else None,
              "seed": spec.seed, "steps": spec.total_steps, "source": tb.source, **mode_report(task, points)}
    files = ["bandit_modes.json", "bandit_arrows.png"]
    title = f"{spec.algo} on {_label(task, perturbation)}, seed {spec.seed}, {spec.total_steps:,} steps"
    store.atomic_write_bytes(run / "bandit_arrows.png", arrow_plot(tb, task, expected_reward_fn(task, perturbation), title, report))
    score_png = score_field_plot(tb, task, f"score field: {title}")
    if score_png is not None:
        store.atomic_write_bytes(run / "bandit_score_field.png", score_png)
        files.append("bandit_score_field.png")
    if perturbation is not None and clean_spec is not None:
        clean = TrainedBandit(clean_spec, store.Store(root).run_dir(clean_spec.key))
        png = perturbation_plot([("clean", clean), (perturbation.text, tb)], task, task.reward,
                                f"{spec.algo} on {task.key}, seed {spec.seed}: clean vs {perturbation.text} training "
                                f"({spec.total_steps:,} steps); grey = clean reward")
        store.atomic_write_bytes(run / "bandit_perturbation.png", png)
        files.append("bandit_perturbation.png")
    report["files"] = [str(run / f) for f in files]
    store.atomic_write_json(run / "bandit_modes.json", report)
    return report


def write_aggregate(root: Path, spec: RunSpec, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the seeds' reports and their aggregate beside the seed folders of `spec`'s algorithm (variant)."""
    aggregate = aggregate_reports(reports)
    folder = store.Store(root).run_dir(spec.key).parent
    store.atomic_write_json(folder / "bandit_modes.json", {"seeds": reports, "aggregate": aggregate})
    return aggregate


def modes_table(title: str, reports: list[dict[str, Any]], aggregate: dict[str, Any]) -> Table:
    names = list(reports[0]["counts"])
    table = Table(title=title, caption=f"{reports[0]['n']:,} samples per seed, {reports[0]['rule']}; source: {reports[0]['source']}")
    for col in ["seed", *names, "total", "fraction"] + (["goal"] if "goal_met" in reports[0] else []):
        table.add_column(col, justify="right")
    for r in reports:
        goal = (["yes" if r["goal_met"] else "no"] if "goal_met" in r else [])
        table.add_row(str(r["seed"]), *(str(r["counts"][k]) for k in names), str(r["total"]), f"{r['fraction']:.1%}", *goal)
    table.add_section()
    goal = [f"{aggregate['goal_seeds']}/{aggregate['seeds']} seeds"] if "goal_seeds" in aggregate else []
    table.add_row("all", *(str(aggregate["counts"][k]) for k in names), str(aggregate["total"]),
                  f"{aggregate['fraction']:.1%} ({aggregate['fraction_min']:.0%}-{aggregate['fraction_max']:.0%})", *goal)
    return table
