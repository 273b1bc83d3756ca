"""The `sombench` command line (Typer + rich).

Heavy libraries (torch, the algorithms, pandas, scipy, matplotlib) are imported inside the commands
that use them, so `sombench --help` and bad-input errors answer at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from sombench.errors import UserError

app = typer.Typer(
    help="sombench: benchmark harness for online RL with one-step generative policies (SOM and baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
_INVOKED_ARGS: list[str] = []  # the arguments `main` was given, recorded in each run's config.json
err_console = Console(stderr=True)
NAMES = "NAME[,NAME...]"


# -- helpers ------------------------------------------------------------------------------------
def resolve_device(name: str) -> str:
    name = name.lower()
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but torch sees no CUDA device; use --device cpu or auto")
    return name


def algorithm_class(name: str):
    """The registered class of `name`; UserError listing the registered names otherwise."""
    import algorithms

    registry = algorithms.load_all()
    if name not in registry:
        raise UserError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(registry))}")
    return registry[name]


def positive(value: int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{flag} must be a positive integer, got {value}")


def count(text: str | None, flag: str) -> int | None:
    """A positive step count as researchers write it: 500000, 500_000, 5e5."""
    if text is None:
        return None
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise UserError(f"{flag} expects a positive integer (e.g. 500000 or 5e5), got {text!r}") from None
    if not (value == value and value != float("inf")) or value != int(value) or value <= 0:
        raise UserError(f"{flag} expects a positive integer (e.g. 500000 or 5e5), got {text!r}")
    return int(value)


def default_threads(threads: int | None, workers: int, seeds: int) -> int:
    """Torch threads per seed: the user's, else the machine's cores shared among the parallel seeds."""
    return threads or max(1, (os.cpu_count() or 1) // max(1, min(workers, seeds)))


from sombench.runs.preflight import check_existing_run  # noqa: E402


def build_specs(algo: str, env: str, seeds: list[int], steps: int, *, eval_every: int, eval_episodes: int, checkpoint_every: int,
                log_every: int, device: str, threads: int, set_pairs: list[str], preset: str | None, tag: str | None,
                compile: bool = False) -> list:
    """RunSpecs for seeds of one algorithm (variant) on one env, the config validated before anything is written."""
    from sombench.runs.spec import RunSpec, resolve_config

    resolve_config(algo, preset, list(set_pairs))  # validates the preset and every --set: one line, exit 2
    return [RunSpec(algo=algo, env_id=env, seed=s, total_steps=steps, eval_every=eval_every, eval_episodes=eval_episodes,
                    checkpoint_every=checkpoint_every, log_every=log_every, device=device, threads=threads,
                    set_pairs=tuple(set_pairs), preset=preset, tag=tag, command=("sombench", *_INVOKED_ARGS), compile=compile)
            for s in seeds]


_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]{0,47}$")


def check_tag(tag: str | None) -> None:
    if tag is not None and not _TAG.match(tag):
        raise UserError(f"--tag {tag!r}: use 1-48 letters, digits and _ . = + - (it names a folder)")


def _names(values: list[str]) -> list[str] | None:
    """Accept both `--envs A --envs B` and `--envs A,B`."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


# -- run ----------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench run --algo sac --env Hopper-v4 --seeds 5 --workers 5 --set batch_size=128")
def run(
    algo: str = typer.Option(..., "--algo", help="Algorithm name (see `sombench algos`)."),
    env: str = typer.Option(..., "--env", help="Gymnasium id with a Box action space (see `sombench envs`)."),
    seeds: int = typer.Option(1, "--seeds", help="Number of seeds to run."),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed; runs seed_start .. seed_start+seeds-1."),
    steps: Optional[str] = typer.Option(None, "--steps", metavar="N", help="Env steps per seed, e.g. 500000 or 5e5 (default: the paper's budget for the env)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(1, "--workers", help="Seeds trained in parallel processes."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a config field (repeatable); `sombench algos` lists them."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Name this config's runs: results/<env>/<algo>@<tag>/ (default: derived from the --set values that differ from the defaults)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="A named preset of the algorithm (e.g. bandit), applied before --set."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Env steps between evaluations."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", help="Episodes per evaluation."),
    checkpoint_every: int = typer.Option(50_000, "--checkpoint-every", help="Env steps between checkpoints (taken at the next episode end)."),
    log_every: int = typer.Option(1_000, "--log-every", help="Env steps per train.csv row (metrics averaged over the window)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per seed (default: CPU cores / workers)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the act and update paths (CUDA graphs on CUDA); falls back to eager with one warning."),
) -> None:
    """Train ALGO on ENV over seeds; skip finished seeds, resume interrupted ones."""
    from sombench.envs import describe_env
    from sombench.runs.store import Store

    cls = algorithm_class(algo)
    if seeds <= 0:
        raise UserError(f"--seeds must be a positive integer, got {seeds}")
    if seed_start < 0:
        raise UserError(f"--seed-start must be >= 0, got {seed_start}")
    n_steps = count(steps, "--steps")
    for value, flag in [(workers, "--workers"), (eval_every, "--eval-every"), (eval_episodes, "--eval-episodes"),
                        (checkpoint_every, "--checkpoint-every"), (log_every, "--log-every"), (threads, "--threads")]:
        positive(value, flag)
    check_tag(tag)
    info = describe_env(env)
    if n_steps is None:
        if info.default_steps is None:
            raise UserError(f"{env} has no paper budget; pass --steps N")
        n_steps = info.default_steps * cls.budget_factor.get(env, 1)
    dev = resolve_device(device)
    specs = build_specs(algo, env, list(range(seed_start, seed_start + seeds)), n_steps, eval_every=eval_every,
                        eval_episodes=eval_episodes, checkpoint_every=checkpoint_every, log_every=log_every, device=dev,
                        threads=default_threads(threads, workers, seeds), set_pairs=list(set_), preset=preset, tag=tag,
                        compile=compile_)
    st = Store(results)
    st.check()
    for spec in specs:
        check_existing_run(spec, results)
    from sombench.measure.cost import run_hint

    hint = run_hint(specs, workers, results)  # one line when the work ahead exceeds a few hours here
    if hint:
        err_console.print(hint, markup=False, highlight=False, soft_wrap=True)
    st.init()

    from sombench.render.progress import run_all

    outcomes = run_all(specs, results, workers, console)
    _print_summary(specs, st, outcomes)
    if any(o["status"] in ("failed", "refused") for o in outcomes):
        raise typer.Exit(1)


def _print_summary(specs: list, st, outcomes: list[dict[str, Any]]) -> None:
    from sombench.render.progress import fmt_return
    from sombench.analysis.stats import mean_ci

    label, env = specs[0].key.label, specs[0].env_id
    table = Table(title=f"{label} on {env}: final evaluation return")
    for col in ("seed", "status", "steps", "final return"):
        table.add_column(col, justify="right" if col != "status" else "left")
    finals = []
    for o in outcomes:
        table.add_row(str(o["seed"]), o["status"] + (f": {o['reason']}" if o.get("reason") else ""),
                      str(o.get("steps") or "-"), fmt_return(o.get("final_return")))
        if o["status"] in ("done", "skipped") and o.get("final_return") is not None:
            finals.append(float(o["final_return"]))
    if finals:
        mean, half = mean_ci(finals)
        ci = f" ± {half:.1f}" if half == half else ""
        table.add_section()
        table.add_row("all", f"{len(finals)} seed(s), mean ± 95% CI", "", f"{mean:.1f}{ci}")
    console.print(table)
    console.print(f"results in {st.run_dir(specs[0].key).parent}/", markup=False)
    failed = [o for o in outcomes if o["status"] == "failed"]
    if failed:
        err_console.print(f"{len(failed)} seed(s) failed: each run folder's state.json has the reason (error.log the "
                          "traceback); fix the cause, then rerun the same command: finished seeds are skipped, the others "
                          "resume from their last checkpoint", markup=False, soft_wrap=True)


# -- status -------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench status --results results --format json")
def status(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    fmt: str = typer.Option("rich", "--format", help="rich or json."),
) -> None:
    """List every run in a results store: progress, state and last evaluation return."""
    from sombench.render.progress import compact, fmt_return
    from sombench.runs.store import Store

    if fmt not in ("rich", "json"):
        raise UserError(f"unknown --format {fmt!r}; use rich or json")
    st = Store(results)
    st.check_readable()
    rows = []
    for rec in st.runs():
        rows.append({"env": rec.key.env, "algo": rec.key.label, "seed": rec.key.seed, "steps_done": rec.state.get("env_step"),
                     "steps_total": rec.total_steps, "state": rec.status, "last_return": rec.state.get("last_return"),
                     "reason": rec.damage or rec.state.get("reason")})
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"runs in {results}")
    for col in ("env", "algo", "seed", "steps", "state", "last return"):
        table.add_column(col, overflow="fold")
    for r in rows:
        st_text = r["state"] + (f" ({r['reason']})" if r["reason"] and r["state"] != "done" else "")
        table.add_row(r["env"], r["algo"], str(r["seed"]), f"{compact(r['steps_done'] or 0)}/{compact(r['steps_total'] or 0)}",
                      st_text, fmt_return(r["last_return"]))
    console.print(table if rows else f"no runs in {results}")


# -- table and plot -----------------------------------------------------------------------------
@app.command(epilog="Example: sombench table --results results --format md --paper --stats rliable")
def table(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    envs: list[str] = typer.Option([], "--envs", metavar=NAMES, help="Only these envs (repeatable or comma-separated)."),
    algos: list[str] = typer.Option([], "--algos", metavar=NAMES, help="Only these algorithms, or exact variants such as som@score_scale=10 (repeatable or comma-separated)."),
    fmt: str = typer.Option("rich", "--format", help="rich, md, latex, csv or json."),
    paper: bool = typer.Option(False, "--paper", help="Also print the paper's Table 1 for the same cells."),
    norm_ref: Optional[str] = typer.Option(None, "--norm-ref", metavar="FILE|random", help="CSV of per-env min/max for Normalized, or `random` for the shipped random-policy scores."),
    at_step: Optional[str] = typer.Option(None, "--at-step", metavar="N", help="Compare every run at its last evaluation at or before env step N instead of at its end."),
    stats_kind: Optional[str] = typer.Option(None, "--stats", metavar="rliable", help="`rliable`: IQM, optimality gap, probability of improvement with bootstrap CIs."),
) -> None:
    """Table 1: final return (mean ± 95% CI over seeds) per algorithm and env, and a Normalized column."""
    from sombench.analysis import aggregate
    from sombench.render import tables

    if fmt not in tables.FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use {', '.join(tables.FORMATS)}")
    if stats_kind not in (None, "rliable"):
        raise UserError(f"unknown --stats {stats_kind!r}; the only kind is rliable")
    if stats_kind and fmt not in ("rich", "md", "json"):
        raise UserError("--stats rliable prints with --format rich, md or json")
    step = count(at_step, "--at-step")
    ref = aggregate.read_norm_ref(norm_ref) if norm_ref else None
    runs = aggregate.load_runs(results, _names(envs), _names(algos))
    result = aggregate.build_table(runs, at_step=step, norm_ref=ref)
    paper_table = aggregate.paper_cells_for(result) if paper else None
    if paper and paper_table is None:
        console.print("The paper's Table 1 has no cell in common with this table (it covers Ant, HalfCheetah, Hopper, "
                      "Humanoid and Walker2d v4).")
    rl = None
    if stats_kind:
        from sombench.analysis.rliable import rliable_stats
        rl = rliable_stats(result)
    title = "Final evaluation return" + (f" at step {step:,}" if step else "")
    paper_title = "SOM paper, Table 1 (same cells)"
    if fmt == "json":
        payload = tables.records(result)
        if paper_table is not None:
            payload["paper"] = tables.records(paper_table)
        if rl is not None:
            payload["rliable"] = rl
        print(tables.to_json(payload))
    elif fmt == "csv":
        text = tables.to_csv(result)
        if paper_table is not None:
            text += tables.to_csv(paper_table, source="paper").split("\n", 1)[1]
        print(text, end="")
    elif fmt == "md":
        print(tables.to_markdown(result, title))
        if paper_table is not None:
            print(tables.to_markdown(paper_table, paper_title))
        if rl is not None:
            print(tables.rliable_markdown(rl))
    elif fmt == "latex":
        print(tables.to_latex(result, title))
        if paper_table is not None:
            print(tables.to_latex(paper_table, paper_title))
    else:
        console.print(tables.to_rich(result, title))
        if paper_table is not None:
            console.print(tables.to_rich(paper_table, paper_title))
        if rl is not None:
            console.print(tables.rliable_rich(rl))


def check_output_file(out: Path) -> None:
    """UserError unless `out` is a writable .png/.pdf/.svg file path (not a folder)."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'figure2.png'}")
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--out {out}: use a .png, .pdf or .svg file name")
    parent = out.parent if out.parent != Path("") else Path(".")
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is not a folder")
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise UserError(f"--out {out}: {existing} is not writable; choose another path") from None


@app.command(epilog="Example: sombench plot --results results --envs Hopper-v4,Walker2d-v4 --out figure2.pdf")
def plot(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    envs: list[str] = typer.Option([], "--envs", metavar=NAMES, help="Only these envs (repeatable or comma-separated)."),
    algos: list[str] = typer.Option([], "--algos", metavar=NAMES, help="Only these algorithms or exact variants (repeatable or comma-separated)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Image file, .png, .pdf or .svg (default: RESULTS/figure2.png)."),
    norm_ref: Optional[str] = typer.Option(None, "--norm-ref", metavar="FILE|random", help="As for `sombench table`."),
    by: Optional[str] = typer.Option(None, "--by", metavar="KEY", help="Ablation: one panel per env and algorithm, one curve per value of config field KEY (e.g. score_scale)."),
) -> None:
    """Figure 2: evaluation return against env steps (mean and 95% CI band over seeds) and a normalized panel.
    Its curves average exactly the runs that `sombench table` puts in each cell."""
    from sombench.analysis import aggregate

    out = out or results / (f"by_{by}.png" if by else "figure2.png")
    check_output_file(out)
    ref = aggregate.read_norm_ref(norm_ref) if norm_ref else None
    if by:
        from sombench.render.plot_by import plot_by

        try:
            path = plot_by(results, by, _names(envs), _names(algos), out, ref)
        except OSError as exc:
            raise UserError(f"cannot write --out {out}: {exc.strerror or exc}") from None
        console.print(f"wrote {path}", markup=False)
        return
    runs = aggregate.load_runs(results, _names(envs), _names(algos))
    result = aggregate.build_table(runs, norm_ref=ref)
    from sombench.render import plots

    try:
        path = plots.plot_curves(result, out)
    except OSError as exc:
        raise UserError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    console.print(f"wrote {path}", markup=False)


@app.command(epilog="Example: sombench latency --algos sac --repeats 30 --paper")
def latency(
    algos: list[str] = typer.Option([], "--algos", metavar=NAMES, help="Only these algorithms (repeatable or comma-separated; default: all registered)."),
    env: Optional[str] = typer.Option(None, "--env", help="Env whose observation and action shapes are used (default: the paper's HalfCheetah-v4)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Timed repeats per measurement (default: the paper's 30)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch.set_num_threads (default: torch's own, recorded)."),
    fmt: str = typer.Option("rich", "--format", help="rich, md, csv or json."),
    paper: bool = typer.Option(False, "--paper", help="Also print the paper's Table 2 and ratio columns (each algorithm / SOM)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder; the CSV goes to RESULTS/latency/."),
    compile_: bool = typer.Option(False, "--compile", help="Also time each algorithm compiled (torch.compile; CUDA graphs on CUDA): eager and compiled columns."),
    breakdown: bool = typer.Option(False, "--breakdown", help="Also print SOM's update phase by phase against its network evaluations as bare matrix products."),
) -> None:
    """Table 2: time of one training update (batch 256) and one acting call (batch 1) per algorithm."""
    from sombench.measure import latency as lat
    from sombench.envs import describe_env
    from sombench.runs.store import Store

    if fmt not in lat.FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use {', '.join(lat.FORMATS)}")
    env = env or lat.DEFAULT_ENV
    repeats = repeats if repeats is not None else lat.DEFAULT_REPEATS
    positive(repeats, "--repeats")
    positive(threads, "--threads")
    names = _names(algos)
    classes = {name: algorithm_class(name) for name in dict.fromkeys(names)} if names else None
    info = describe_env(env)
    import torch

    dev = torch.device(resolve_device(device))
    st = Store(results)
    st.check()
    if threads:
        torch.set_num_threads(threads)

    def on_start(name: str) -> None:
        if err_console.is_terminal:  # keep piped stderr quiet; no spinner thread runs while timing
            err_console.print(f"timing {name} on {dev} ...", style="dim")

    def warn(message: str) -> None:
        err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    selected = lat.select_algorithms(classes)
    if breakdown and fmt == "csv":
        raise UserError("--breakdown prints tables: use --format rich, md or json")
    report = lat.measure_all(selected, info, dev, repeats, on_start=on_start, compiled=compile_, warn=warn)
    extra, breakdowns = [], {}
    if breakdown:
        for name, cls in selected.items():
            on_start(f"{name}'s update part by part")
            phases = lat.measure_breakdown(cls, info, dev, repeats)
            if phases is None:
                if names:  # asked for by name; with every algorithm, those without a breakdown are skipped quietly
                    warn(f"--breakdown: {name} does not declare the parts of its update (algorithms/common/capabilities.py Profiled)")
                continue
            breakdowns[name] = phases
            extra.append(lat.breakdown_grid(name, info.env_id, phases))
    st.init()
    path = lat.write_csv(results, report)
    comparison = lat.compare(report) if paper else None
    if fmt == "json":
        print(lat.to_json(report, comparison, path, breakdowns))
    elif fmt == "csv":
        print(lat.to_csv(report, comparison), end="")
    elif fmt == "md":
        print(lat.to_markdown(report, comparison, extra))
    else:
        console.print(lat.to_rich(report, comparison, extra))
        console.print(f"wrote {path}", markup=False)


# -- bandit -------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench bandit --algo som --task eight-gaussians --perturb noise:0.2 --seeds 3 --steps 4000")
def bandit(
    algo: str = typer.Option(..., "--algo", help="Algorithm name (see `sombench algos`)."),
    task: str = typer.Option("eight-gaussians", "--task", help="eight-gaussians, two-moons or checkerboard."),
    perturb: Optional[str] = typer.Option(None, "--perturb", metavar="noise:SIGMA|bump:C,SIGMA", help="Reward noise or a Gaussian bump at the origin; also trains the clean task."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (0 .. seeds-1)."),
    steps: str = typer.Option("4000", "--steps", metavar="N", help="Env steps (= one-step episodes) per seed."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a config field (repeatable); applied after the algorithm's bandit preset."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Name this config's runs (default: derived from --set)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(1, "--workers", help="Seeds trained in parallel processes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per seed (default: CPU cores / workers)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the act and update paths (CUDA graphs on CUDA); falls back to eager with one warning."),
) -> None:
    """Train on a 2-D bandit (SOM Section 5.2, Appendices F-H), then write and print mode counts and figures."""
    from sombench.train import bandit as bandit_eval
    from sombench.bandit import tasks as bandits
    from sombench.envs import describe_env
    from sombench.runs.store import Store

    algorithm_class(algo)
    if task not in bandits.TASKS:
        raise UserError(f"unknown --task {task!r}; choose one of: {', '.join(bandits.TASKS)}")
    perturbation = bandits.parse_perturb(perturb) if perturb is not None else None
    if fmt not in ("table", "json"):
        raise UserError(f"unknown --format {fmt!r}; use table or json")
    n_steps = count(steps, "--steps")
    for value, flag in [(seeds, "--seeds"), (workers, "--workers"), (threads, "--threads")]:
        positive(value, flag)
    check_tag(tag)
    dev = resolve_device(device)
    spec_task = bandits.TASKS[task]
    env_ids = [spec_task.env_id] + ([bandits.env_id_for(spec_task, perturbation)] if perturbation else [])
    groups = {}
    for name, env_id in zip(("clean", "perturbed"), env_ids):
        describe_env(env_id)
        groups[name] = build_specs(algo, env_id, list(range(seeds)), n_steps, eval_every=max(1, n_steps // 10), eval_episodes=100,
                                   checkpoint_every=n_steps, log_every=max(1, n_steps // 20), device=dev,
                                   threads=default_threads(threads, workers, seeds), set_pairs=list(set_),
                                   preset=bandit_eval.preset_for(algo), tag=tag, compile=compile_)
    st = Store(results)
    st.check()
    for specs in groups.values():
        for spec in specs:
            check_existing_run(spec, results)
    st.init()

    from sombench.app import bandit as bandit_report
    from sombench.render.progress import run_all

    out = err_console if fmt == "json" else console
    failed = []
    for specs in groups.values():
        outcomes = run_all(specs, results, workers, out)
        failed += [f"{specs[0].env_id} seed {o['seed']}: {o.get('reason', o['status'])}" for o in outcomes if o["status"] not in ("done", "skipped")]
    if failed:
        err_console.print("error: training did not finish: " + "; ".join(failed) + "; fix the cause and rerun the same command",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    first = groups["clean"][0]
    payload: dict[str, Any] = {"algo": algo, "variant": first.variant, "task": task, "perturb": perturbation.text if perturbation else None,
                               "steps": n_steps, "preset": first.preset, "overrides": list(set_), "results": str(results)}
    for name, specs in groups.items():
        clean = groups["clean"] if name == "perturbed" else [None] * len(specs)
        reports = [bandit_report.report_run(spec, results, spec_task, perturbation if name == "perturbed" else None, c)
                   for spec, c in zip(specs, clean)]
        aggregate = bandit_report.write_aggregate(results, specs[0], reports)
        payload[name] = {"env": specs[0].env_id, "seeds": reports, "aggregate": aggregate}
        if fmt == "table":
            console.print(bandit_report.modes_table(f"{specs[0].key.label} on {specs[0].env_id}: generator mode counts", reports, aggregate))
            for r in reports:
                console.print(f"seed {r['seed']}: " + ", ".join(r["files"]), soft_wrap=True, markup=False)
    if fmt == "json":
        print(json.dumps(payload, indent=2))


# -- sweep --------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench sweep --algos som,sac --envs Hopper-v4,Walker2d-v4 --seeds 5 --grid score_scale=5,10,25,50 --launcher ray --dry-run")
def sweep(
    algos: list[str] = typer.Option(..., "--algos", metavar=NAMES, help="Algorithms (repeatable or comma-separated; `all`: every registered one)."),
    envs: list[str] = typer.Option(..., "--envs", metavar=NAMES, help="Envs (repeatable or comma-separated; `paper`: the paper's nine tasks)."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per grid point."),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed."),
    steps: Optional[str] = typer.Option(None, "--steps", metavar="N", help="Env steps per run (default: each env's paper budget times the algorithm's factor)."),
    set_: list[str] = typer.Option([], "--set", metavar="[ALGO:]KEY=VALUE", help="Override a config field for every algorithm, or for ALGO only (repeatable)."),
    grid: list[str] = typer.Option([], "--grid", metavar="KEY=V1,V2", help="Sweep a config field (repeatable; A|B when values hold commas); each point is a run variant."),
    preset: Optional[str] = typer.Option(None, "--preset", help="A named preset of every algorithm, applied before --set."),
    launcher: str = typer.Option("local", "--launcher", help="local (process pool), ray or slurm (submitit; its local executor where no Slurm exists)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid and its cost projection; run nothing."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder (shared storage for ray/slurm clusters)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (ray/slurm: auto is cuda when --gpus-per-run > 0)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Runs at once (local: default 1; slurm: array tasks at once, default CPU cores / --cpus-per-run; ray local instance: its CPUs, default all)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per run (default: local: cores / workers; ray, slurm: --cpus-per-run)."),
    address: Optional[str] = typer.Option(None, "--address", help="ray: `auto` or ray://HOST:PORT of a cluster (default: a local instance on 127.0.0.1)."),
    cpus_per_run: int = typer.Option(1, "--cpus-per-run", help="ray, slurm: CPUs requested per run."),
    gpus_per_run: float = typer.Option(0, "--gpus-per-run", help="ray, slurm: GPUs requested per run."),
    partition: Optional[str] = typer.Option(None, "--partition", help="slurm: partition."),
    time_: str = typer.Option("24:00:00", "--time", help="slurm: time limit per run (minutes, HH:MM:SS, D-HH:MM:SS); a preempted run resumes on the rerun."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Env steps between evaluations."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", help="Episodes per evaluation."),
    checkpoint_every: int = typer.Option(50_000, "--checkpoint-every", help="Env steps between checkpoints."),
    log_every: int = typer.Option(1_000, "--log-every", help="Env steps per train.csv row."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the act and update paths (CUDA graphs on CUDA); falls back to eager with one warning."),
) -> None:
    """Run a grid (algorithms x envs x seeds x --grid values) on a local pool, Ray or Slurm; skip finished runs, resume the others."""
    import algorithms as algorithm_registry

    from sombench.app import sweep as sw
    from sombench.envs import PAPER_TASKS, describe_env
    from sombench.train.executors import LAUNCHERS
    from sombench.runs.store import Store

    if launcher not in LAUNCHERS:
        raise UserError(f"unknown --launcher {launcher!r}; use {', '.join(LAUNCHERS)}")
    algo_names = _names(algos) or []
    if algo_names == ["all"]:
        algo_names = sorted(algorithm_registry.load_all())
    algo_names = list(dict.fromkeys(algo_names))
    classes = {a: algorithm_class(a) for a in algo_names}
    env_names = _names(envs) or []
    if env_names == ["paper"]:
        env_names = list(PAPER_TASKS)
    env_names = list(dict.fromkeys(env_names))
    for value, flag in [(seeds, "--seeds"), (workers, "--workers"), (threads, "--threads"), (cpus_per_run, "--cpus-per-run"),
                        (eval_every, "--eval-every"), (eval_episodes, "--eval-episodes"), (checkpoint_every, "--checkpoint-every"),
                        (log_every, "--log-every")]:
        positive(value, flag)
    if seed_start < 0:
        raise UserError(f"--seed-start must be >= 0, got {seed_start}")
    if gpus_per_run < 0:
        raise UserError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
    if launcher != "ray" and address:
        raise UserError("--address is for --launcher ray")
    if launcher != "slurm" and partition:
        raise UserError("--partition is for --launcher slurm")
    n_steps = count(steps, "--steps")
    infos = {e: describe_env(e) for e in env_names}
    if n_steps is None:
        missing = [e for e, info in infos.items() if info.default_steps is None]
        if missing:
            raise UserError(f"{missing[0]} has no paper budget; pass --steps N")
    grid_axes = sw.parse_grid(grid)
    if launcher == "local" or dry_run:
        dev = resolve_device(device)
    else:  # the runs' machines, not this one, must have the device
        dev = device.lower() if device.lower() != "auto" else ("cuda" if gpus_per_run > 0 else "cpu")
        if dev != "cpu" and not dev.startswith("cuda"):
            raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")
    cores = os.cpu_count() or 1
    n_workers = workers or (1 if launcher == "local" else max(1, cores // cpus_per_run))
    seed_list = list(range(seed_start, seed_start + seeds))
    per_run_threads = threads or (max(1, cores // n_workers) if launcher == "local" else cpus_per_run)
    plan = sw.expand(algo_names, env_names, seed_list, n_steps, list(set_), grid_axes, preset, build_specs,
                     lambda a, e: infos[e].default_steps * classes[a].budget_factor.get(e, 1),
                     eval_every=eval_every, eval_episodes=eval_episodes, checkpoint_every=checkpoint_every, log_every=log_every,
                     device=dev, threads=per_run_threads, compile=compile_)
    results = results.absolute()
    if dry_run:
        import torch

        from sombench.measure import cost

        torch.set_num_threads(per_run_threads)  # time updates as each run will do them
        console.print(sw.grid_table(plan.specs, plan.notes))
        console.print(cost.projection_table(cost.project(plan.specs, dev, results), n_workers))
        return
    if launcher == "ray":
        from sombench.train.executors import RayLauncher

        runner = RayLauncher(address, cpus_per_run, gpus_per_run, num_cpus=None if address else (workers or cores))
    elif launcher == "slurm":
        from sombench.train.executors import SlurmLauncher, parse_time

        runner = SlurmLauncher(results / ".submitit", partition, parse_time(time_), cpus_per_run, int(math.ceil(gpus_per_run)), n_workers)
    else:
        from sombench.train.executors import LocalLauncher

        runner = LocalLauncher(n_workers)
    st = Store(results)
    st.check()
    known = sw.preflight(plan.specs, results, check_existing_run)
    st.init()
    outcomes = sw.run_sweep(plan.specs, results, runner, console, known)
    bad = [(s, o) for s, o in zip(plan.specs, outcomes) if o["status"] in ("failed", "refused", "locked")]
    counts = {k: sum(o["status"] == k for o in outcomes) for k in ("done", "skipped", "failed", "refused", "locked")}
    console.print(", ".join(f"{n} {k}" for k, n in counts.items() if n) + f"; results in {results}/", markup=False)
    if bad:
        for spec, o in bad:
            err_console.print(f"{spec.env_id} {spec.key.label} seed {spec.seed}: {o['status']}: {o.get('reason', '')}",
                              markup=False, soft_wrap=True, highlight=False)
        err_console.print("fix the cause (or wait for the locked runs to end), then rerun the same command: finished runs are "
                          "skipped, the others resume from their last checkpoint", markup=False, soft_wrap=True)
        raise typer.Exit(1)


# -- regress ------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench regress --suite ci   (after an intended change: sombench regress --suite ci --update)")
def regress(
    suite: str = typer.Option("ci", "--suite", help="ci (~10 min on 2 cores) or nightly (more seeds, twice the steps)."),
    algos: list[str] = typer.Option([], "--algos", metavar=NAMES, help="Only these algorithms' entries (repeatable or comma-separated)."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a config field in every entry run (e.g. to check that a sabotaged config fails)."),
    update: bool = typer.Option(False, "--update", help="Rewrite the bands of the entries run from these results, with provenance."),
    bands: Optional[Path] = typer.Option(None, "--bands", help="Bands file (default: sombench/data/regress/bands.json in the repository)."),
    results: Optional[Path] = typer.Option(None, "--results", help="Results store for the runs (default: a temporary folder, removed afterwards)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Runs in parallel processes (default: CPU cores)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads per run."),
) -> None:
    """Run a suite of small-budget runs of every registered algorithm and fail (exit 1) on a significant drop from the reference bands."""
    import shutil
    import tempfile
    import time as _time

    import algorithms as algorithm_registry

    from sombench.analysis import regress as rg
    from sombench.app import sweep as sw
    from sombench.train.executors import LocalLauncher
    from sombench.runs.store import Store, atomic_write_json

    entries = rg.load_suite(suite)
    names = _names(algos)
    if names:
        for name in names:
            algorithm_class(name)
        entries = [e for e in entries if e.algo in names]
    missing = sorted(set(algorithm_registry.load_all()) - {e.algo for e in rg.load_suite(suite)})
    if names is None and missing:
        err_console.print(f"note: no {suite} entry for {', '.join(missing)}", markup=False)
    positive(workers, "--workers")
    positive(threads, "--threads")
    if update and set_:
        raise UserError("--update with --set would record a modified config as the reference; change the suite file instead")
    bands_path = bands or rg.data_dir() / "bands.json"
    band_doc = rg.load_bands(bands_path)
    specs = {e.key: rg.entry_specs(e, list(set_), build_specs, threads) for e in entries}
    root = results.absolute() if results else Path(tempfile.mkdtemp(prefix="sombench-regress-"))
    st = Store(root)
    st.check()
    flat = [s for e in entries for s in specs[e.key]]
    known = sw.preflight(flat, root, check_existing_run)
    st.init()
    n_workers = workers or os.cpu_count() or 1
    t0 = _time.perf_counter()
    try:
        outs = sw.run_sweep(flat, root, LocalLauncher(n_workers), console, known)
    finally:
        if results is None:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = _time.perf_counter() - t0
    outcomes, i = {}, 0
    for e in entries:
        outcomes[e.key] = outs[i:i + len(specs[e.key])]
        i += len(specs[e.key])
    if update:
        doc = rg.updated_bands(band_doc, suite, entries, specs, outcomes, rg.provenance_now(threads, n_workers))
        atomic_write_json(bands_path, doc)
        console.print(f"updated {len(entries)} band(s) of suite {suite} in {bands_path} ({elapsed:.0f} s)", markup=False)
        return
    rows = rg.evaluate(entries, specs, outcomes, band_doc, suite)
    title = f"regress --suite {suite}" + (f" --set {' --set '.join(set_)}" if set_ else "") + f": {len(flat)} runs in {elapsed:.0f} s"
    console.print(rg.verdict_table(rows, title))
    bad = [r for r in rows if r["verdict"] in ("REGRESSED", "failed")]
    if bad:
        err_console.print(f"{len(bad)} of {len(rows)} entries regressed or failed: "
                          + ", ".join(f"{r['entry'].algo} on {r['entry'].env} ({r['verdict']})" for r in bad), markup=False, soft_wrap=True)
        raise typer.Exit(1)


# -- listings -----------------------------------------------------------------------------------
@app.command(epilog="Example: sombench algos")
def algos() -> None:
    """List the registered algorithms and their presets."""
    import algorithms

    table = Table(title="algorithms")
    table.add_column("name")
    table.add_column("description")
    table.add_column("presets")
    for name, cls in sorted(algorithms.load_all().items()):
        table.add_row(name, cls.description, ", ".join(sorted(cls.presets)) or "-")
    console.print(table)


@app.command(epilog="Example: sombench envs")
def envs() -> None:
    """List the paper's tasks and their training budgets (any Gymnasium Box-action id also runs)."""
    import algorithms
    from sombench.bandit.tasks import BANDITS
    from sombench.envs import PAPER_TASKS

    registry = algorithms.load_all()
    table = Table(title="paper tasks (SOM paper, Section 5.1)", caption="Any other Gymnasium id with a Box action space runs too, with --steps.")
    for col in ("env", "budget (steps)", "longer budgets", "description"):
        table.add_column(col)
    for task in PAPER_TASKS.values():
        longer = ", ".join(f"{name} {task.budget * cls.budget_factor[task.env_id]:,}" for name, cls in sorted(registry.items())
                           if cls.budget_factor.get(task.env_id, 1) != 1)
        table.add_row(task.env_id, f"{task.budget:,}", longer or "-", task.description)
    console.print(table)
    bandits = Table(title="bandits (SOM paper, Section 5.2 and Appendix F)", caption="One-step episodes, box [-2.5, 2.5]^2; perturbed: e.g. sombench/EightGaussians-noise0.2-v0, "
                                  "sombench/TwoMoons-bump0.5x0.3-v0 (C x SIGMA). `sombench bandit` trains and draws them.")
    for col in ("env", "description"):
        bandits.add_column(col)
    for env_id, text in BANDITS.items():
        bandits.add_row(env_id, text)
    console.print(bandits)


# -- entry point --------------------------------------------------------------------------------
INTERRUPTED = "interrupted; rerun the same command to resume from the last checkpoint"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; bad input becomes one line on stderr and exit code 2, never a traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    _INVOKED_ARGS[:] = args
    if not args:
        args = ["--help"]
    try:
        code = app(args=args, prog_name="sombench", standalone_mode=False)
    except UserError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.TyperException as exc:  # usage errors: missing option, wrong type, unknown flag
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {exc.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    if code == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into exit code 130 before it reaches us
        err_console.print(INTERRUPTED, markup=False, soft_wrap=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
