"""The `sombench` command line (Typer + rich)."""

from __future__ import annotations

import concurrent.futures as futures
import json
import multiprocessing
import os
import queue
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import algorithms
from sombench import store
from sombench.envs import PAPER_TASKS, describe_env
from sombench.errors import UserError
from sombench.overrides import apply_overrides
from sombench.runner import RunSpec, json_ready, run_seed
from sombench.stats import mean_ci

app = typer.Typer(
    help="sombench: benchmark harness for online RL with one-step generative policies (SOM and baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
_INVOKED_ARGS: list[str] = []  # the arguments `main` was given, recorded in each run's config.json
err_console = Console(stderr=True)


# -- helpers ------------------------------------------------------------------------------------
def resolve_device(name: str) -> str:
    name = name.lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda requested but torch sees no CUDA device; use --device cpu or auto")
        return name
    raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")


def algorithm_class(name: str):
    registry = algorithms.load_all()
    if name not in registry:
        raise UserError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(registry))}")
    return registry[name]


def positive(value: int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{flag} must be a positive integer, got {value}")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]} {old!r} -> {new!r}"]


def check_existing_run(spec: RunSpec, root: Path) -> None:
    """Refuse a rerun whose settings differ from the stored run, or whose seed a live process holds."""
    run = store.run_dir(root, spec.env_id, spec.algo, spec.seed)
    config_path = run / "config.json"
    if config_path.exists():
        try:
            stored = store.read_json(config_path)["run"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{config_path} is corrupt; delete {run} to restart seed {spec.seed}") from None
        diff = _differences(stored, json_ready(spec.identity()))
        if diff:
            raise UserError(f"{run} was run with other settings ({'; '.join(diff[:3])}); use another --results folder or delete that run")
    holder = store.lock_holder(run)
    if holder is not None:
        raise UserError(f"{run} is being run by pid {holder.get('pid')} on {holder.get('host')}; wait for it to finish or stop it")


def fmt_return(value: Any) -> str:
    try:
        return f"{float(value):.1f}"
    except (TypeError, ValueError):
        return "-"


# -- run ----------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench run --algo sac --env Hopper-v4 --seeds 5 --workers 5 --set batch_size=128")
def run(
    algo: str = typer.Option(..., "--algo", help="Algorithm name (see `sombench algos`)."),
    env: str = typer.Option(..., "--env", help="Gymnasium id with a Box action space (see `sombench envs`)."),
    seeds: int = typer.Option(1, "--seeds", help="Number of seeds to run."),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed; runs seed_start .. seed_start+seeds-1."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Env steps per seed (default: the paper's budget for the env)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(1, "--workers", help="Seeds trained in parallel processes."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field, key=value (repeatable)."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Env steps between evaluations."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", help="Episodes per evaluation."),
    checkpoint_every: int = typer.Option(50_000, "--checkpoint-every", help="Env steps between checkpoints (taken at the next episode end)."),
    log_every: int = typer.Option(1_000, "--log-every", help="Env steps per train.csv row (metrics averaged over the window)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per seed (default: CPU cores / workers)."),
) -> None:
    """Train ALGO on ENV over seeds; skip finished seeds, resume interrupted ones."""
    cls = algorithm_class(algo)
    if seeds <= 0:
        raise UserError(f"--seeds must be a positive integer, got {seeds}")
    if seed_start < 0:
        raise UserError(f"--seed-start must be >= 0, got {seed_start}")
    for value, flag in [(steps, "--steps"), (workers, "--workers"), (eval_every, "--eval-every"), (eval_episodes, "--eval-episodes"),
                        (checkpoint_every, "--checkpoint-every"), (log_every, "--log-every"), (threads, "--threads")]:
        positive(value, flag)
    info = describe_env(env)
    if steps is None:
        if info.default_steps is None:
            raise UserError(f"{env} has no paper budget; pass --steps N")
        steps = info.default_steps
    dev = resolve_device(device)
    apply_overrides(cls.Config, list(set_))  # validates every --set before anything is written
    store.check_store(results)
    n_threads = threads or max(1, (os.cpu_count() or 1) // min(workers, seeds))
    specs = [RunSpec(algo=algo, env_id=env, seed=s, total_steps=steps, eval_every=eval_every, eval_episodes=eval_episodes,
                     checkpoint_every=checkpoint_every, log_every=log_every, device=dev, threads=n_threads, set_pairs=tuple(set_),
                     command=("sombench", *_INVOKED_ARGS))
             for s in range(seed_start, seed_start + seeds)]
    for spec in specs:
        check_existing_run(spec, results)
    store.init_store(results)

    outcomes = _run_all(specs, results, workers)
    _print_summary(algo, env, results, outcomes)
    if any(o["status"] in ("failed", "refused") for o in outcomes):
        raise typer.Exit(1)


def _run_all(specs: list[RunSpec], root: Path, workers: int, out: Console | None = None) -> list[dict[str, Any]]:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[sps]:>6} SPS"),
               TextColumn("return {task.fields[ret]:>8}"), TimeRemainingColumn()]
    with Progress(*columns, console=out or console, transient=False) as progress:
        tasks = {s.seed: progress.add_task(f"{s.algo} {s.env_id} seed {s.seed}", total=s.total_steps, sps="-", ret="-")
                 for s in specs}

        def on_event(event: dict[str, Any]) -> None:
            task = tasks[event["seed"]]
            if event["kind"] in ("start", "progress"):
                progress.update(task, completed=event["step"], ret=fmt_return(event.get("last_return")),
                                sps=f"{event['sps']:.0f}" if "sps" in event else "-")
            elif event["kind"] == "end":
                progress.update(task, description=f"{progress.tasks[task].description} [{event['status']}]")

        if workers == 1 or len(specs) == 1:
            return [run_seed(spec, root, on_event) for spec in specs]

        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            events = manager.Queue()
            pending = {pool.submit(_run_in_worker, spec, root, events): spec for spec in specs}
            results: dict[int, dict[str, Any]] = {}
            while pending:
                try:
                    while True:
                        on_event(events.get(timeout=0.2))
                except queue.Empty:
                    pass
                for fut in [f for f in pending if f.done()]:
                    spec = pending.pop(fut)
                    try:
                        results[spec.seed] = fut.result()
                    except Exception as exc:  # a worker that died outright (e.g. killed by the OS)
                        results[spec.seed] = {"seed": spec.seed, "status": "failed", "reason": f"worker died: {exc}"}
            while not events.empty():
                on_event(events.get())
            return [results[s.seed] for s in specs]


def _run_in_worker(spec: RunSpec, root: Path, events) -> dict[str, Any]:
    return run_seed(spec, root, events.put)


def _print_summary(algo: str, env: str, root: Path, outcomes: list[dict[str, Any]]) -> None:
    table = Table(title=f"{algo} on {env}: final evaluation return")
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
    console.print(f"results in {root}/{env}/{algo}/")


# -- status -------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench status --results results --format json")
def status(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    fmt: str = typer.Option("rich", "--format", help="rich or json."),
) -> None:
    """List every run in a results store: progress, state and last evaluation return."""
    if fmt not in ("rich", "json"):
        raise UserError(f"unknown --format {fmt!r}; use rich or json")
    if not results.exists():
        raise UserError(f"no results store at {results}; run `sombench run` first or pass --results DIR")
    store.check_store(results)
    rows = []
    for run_path in store.iter_run_dirs(results):
        state = store.effective_state(run_path)
        env, algo, seed_dir = store.run_key(results, run_path)
        seed_text = seed_dir.removeprefix("seed_")
        rows.append({
            "env": env,
            "algo": algo,
            "seed": int(seed_text) if seed_text.isdigit() else seed_dir,
            "steps_done": state.get("env_step"),
            "steps_total": state.get("total_steps"),
            "state": state.get("state"),
            "last_return": state.get("last_return"),
            "reason": state.get("reason"),
        })
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"runs in {results}")
    for col in ("env", "algo", "seed", "steps", "state", "last return"):
        table.add_column(col)
    for r in rows:
        st = r["state"] + (f" ({r['reason']})" if r["reason"] and r["state"] != "done" else "")
        table.add_row(r["env"], r["algo"], str(r["seed"]), f"{r['steps_done'] or 0:,}/{r['steps_total'] or 0:,}", st, fmt_return(r["last_return"]))
    console.print(table if rows else f"no runs in {results}")


# -- table and plot -----------------------------------------------------------------------------
def _names(values: list[str]) -> list[str] | None:
    """Accept both `--envs A --envs B` and `--envs A,B`."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


@app.command(epilog="Example: sombench table --results results --format md --paper --stats rliable")
def table(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    envs: list[str] = typer.Option([], "--envs", help="Only these envs (repeatable or comma-separated)."),
    algos: list[str] = typer.Option([], "--algos", help="Only these algorithms (repeatable or comma-separated)."),
    fmt: str = typer.Option("rich", "--format", help="rich, md, latex, csv or json."),
    paper: bool = typer.Option(False, "--paper", help="Also print the paper's Table 1 for the same cells."),
    norm_ref: Optional[str] = typer.Option(None, "--norm-ref", help="CSV of per-env min/max for Normalized, or `random` for the shipped random-policy scores."),
    at_step: Optional[int] = typer.Option(None, "--at-step", help="Compare every run at this env step instead of at its end."),
    stats_kind: Optional[str] = typer.Option(None, "--stats", help="`rliable`: IQM, optimality gap, probability of improvement with bootstrap CIs."),
) -> None:
    """Table 1: final return (mean ± 95% CI over seeds) per algorithm and env, and a Normalized column."""
    from sombench import aggregate, tables

    if fmt not in tables.FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use {', '.join(tables.FORMATS)}")
    if stats_kind not in (None, "rliable"):
        raise UserError(f"unknown --stats {stats_kind!r}; the only kind is rliable")
    if stats_kind and fmt not in ("rich", "md", "json"):
        raise UserError("--stats rliable prints with --format rich, md or json")
    positive(at_step, "--at-step")
    ref = aggregate.read_norm_ref(norm_ref) if norm_ref else None
    runs = aggregate.load_runs(results, _names(envs), _names(algos))
    result = aggregate.build_table(runs, at_step=at_step, norm_ref=ref)
    paper_table = aggregate.paper_cells_for(result) if paper else None
    if paper and paper_table is None:
        console.print("The paper's Table 1 has no cell in common with this table (it covers Ant, HalfCheetah, Hopper, "
                      "Humanoid and Walker2d v4).")
    rl = None
    if stats_kind:
        from sombench.rliable_stats import rliable_stats
        rl = rliable_stats(result)
    title = "Final evaluation return" + (f" at step {at_step:,}" if at_step else "")
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


@app.command(epilog="Example: sombench plot --results results --envs Hopper-v4,Walker2d-v4 --out figure2.pdf")
def plot(
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    envs: list[str] = typer.Option([], "--envs", help="Only these envs (repeatable or comma-separated)."),
    algos: list[str] = typer.Option([], "--algos", help="Only these algorithms (repeatable or comma-separated)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Image file, .png, .pdf or .svg (default: RESULTS/figure2.png)."),
    norm_ref: Optional[str] = typer.Option(None, "--norm-ref", help="As for `sombench table`."),
) -> None:
    """Figure 2: evaluation return against env steps (mean and 95% CI band over seeds) and a normalized panel."""
    from sombench import aggregate, plots

    out = out or results / "figure2.png"
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--out {out}: use a .png, .pdf or .svg file name")
    ref = aggregate.read_norm_ref(norm_ref) if norm_ref else None
    runs = aggregate.load_runs(results, _names(envs), _names(algos))
    result = aggregate.build_table(runs, norm_ref=ref)
    path = plots.plot_curves(runs, result, out)
    console.print(f"wrote {path}")


@app.command(epilog="Example: sombench latency --algos sac --repeats 30 --paper")
def latency(
    algos: list[str] = typer.Option([], "--algos", help="Only these algorithms (repeatable or comma-separated; default: all registered)."),
    env: str = typer.Option("HalfCheetah-v4", "--env", help="Env whose observation and action shapes are used (the paper: HalfCheetah-v4)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    repeats: int = typer.Option(30, "--repeats", help="Timed repeats per measurement (the paper: 30)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch.set_num_threads (default: torch's own, recorded)."),
    fmt: str = typer.Option("rich", "--format", help="rich, md, csv or json."),
    paper: bool = typer.Option(False, "--paper", help="Also print the paper's Table 2 and ratio columns (each algorithm / SOM)."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder; the CSV goes to RESULTS/latency/."),
) -> None:
    """Table 2: time of one training update (batch 256) and one acting call (batch 1) per algorithm."""
    from sombench import latency as lat

    if fmt not in lat.FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use {', '.join(lat.FORMATS)}")
    positive(repeats, "--repeats")
    positive(threads, "--threads")
    classes = lat.select_algorithms(_names(algos))
    info = describe_env(env)
    dev = torch.device(resolve_device(device))
    store.check_store(results)
    if threads:
        torch.set_num_threads(threads)

    def on_start(name: str) -> None:
        if err_console.is_terminal:  # keep piped stderr quiet; no spinner thread runs while timing
            err_console.print(f"timing {name} on {dev} ...", style="dim")

    report = lat.measure_all(classes, info, dev, repeats, on_start=on_start)
    store.init_store(results)
    path = lat.write_csv(results, report)
    comparison = lat.compare(report) if paper else None
    if fmt == "json":
        print(lat.to_json(report, comparison, path))
    elif fmt == "csv":
        print(lat.to_csv(report, comparison), end="")
    elif fmt == "md":
        print(lat.to_markdown(report, comparison))
    else:
        console.print(lat.to_rich(report, comparison))
        console.print(f"wrote {path}")


# -- bandit -------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench bandit --algo som --task eight-gaussians --perturb noise:0.2 --seeds 3 --steps 4000")
def bandit(
    algo: str = typer.Option(..., "--algo", help="Algorithm name (see `sombench algos`)."),
    task: str = typer.Option("eight-gaussians", "--task", help="eight-gaussians, two-moons or checkerboard."),
    perturb: Optional[str] = typer.Option(None, "--perturb", help="noise:SIGMA (reward noise) or bump:C,SIGMA (Gaussian bump at the origin); also trains the clean task."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (0 .. seeds-1)."),
    steps: int = typer.Option(4000, "--steps", help="Env steps (= one-step episodes) per seed."),
    results: Path = typer.Option(Path("results"), "--results", help="Results store folder."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field, key=value (repeatable); applied after the bandit defaults."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(1, "--workers", help="Seeds trained in parallel processes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per seed (default: CPU cores / workers)."),
) -> None:
    """Train on a 2-D bandit (SOM Section 5.2, Appendices F-H), then write and print mode counts and figures."""
    from sombench import bandit_eval, bandit_report, bandits

    cls = algorithm_class(algo)
    if task not in bandits.TASKS:
        raise UserError(f"unknown --task {task!r}; choose one of: {', '.join(bandits.TASKS)}")
    perturbation = bandits.parse_perturb(perturb) if perturb is not None else None
    if fmt not in ("table", "json"):
        raise UserError(f"unknown --format {fmt!r}; use table or json")
    for value, flag in [(seeds, "--seeds"), (steps, "--steps"), (workers, "--workers"), (threads, "--threads")]:
        positive(value, flag)
    dev = resolve_device(device)
    pairs = bandit_eval.bandit_overrides(algo) + list(set_)
    apply_overrides(cls.Config, pairs)  # validates every --set before anything is written
    store.check_store(results)
    spec_task = bandits.TASKS[task]
    n_threads = threads or max(1, (os.cpu_count() or 1) // min(workers, seeds))

    def specs_for(env_id: str) -> list[RunSpec]:
        return [RunSpec(algo=algo, env_id=env_id, seed=s, total_steps=steps, eval_every=max(1, steps // 10), eval_episodes=100,
                        checkpoint_every=steps, log_every=max(1, steps // 20), device=dev, threads=n_threads, set_pairs=tuple(pairs),
                        command=("sombench", *_INVOKED_ARGS))
                for s in range(seeds)]

    groups = {"clean": specs_for(spec_task.env_id)}
    if perturbation is not None:
        groups["perturbed"] = specs_for(bandits.env_id_for(spec_task, perturbation))
    for specs in groups.values():
        for spec in specs:
            describe_env(spec.env_id)
            check_existing_run(spec, results)
    store.init_store(results)

    out = err_console if fmt == "json" else console
    failed = []
    for specs in groups.values():
        outcomes = _run_all(specs, results, workers, out)
        failed += [f"{specs[0].env_id} seed {o['seed']}: {o.get('reason', o['status'])}" for o in outcomes if o["status"] not in ("done", "skipped")]
    if failed:
        err_console.print("error: training did not finish: " + "; ".join(failed), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    payload: dict[str, Any] = {"algo": algo, "task": task, "perturb": perturbation.text if perturbation else None, "steps": steps,
                               "overrides": pairs, "results": str(results)}
    for name, specs in groups.items():
        clean = groups["clean"] if name == "perturbed" else [None] * len(specs)
        reports = [bandit_report.report_run(spec, results, spec_task, perturbation if name == "perturbed" else None, c)
                   for spec, c in zip(specs, clean)]
        aggregate = bandit_report.write_aggregate(results, specs[0].env_id, algo, reports)
        payload[name] = {"env": specs[0].env_id, "seeds": reports, "aggregate": aggregate}
        if fmt == "table":
            console.print(bandit_report.modes_table(f"{algo} on {specs[0].env_id}: generator mode counts", reports, aggregate))
            for r in reports:
                console.print(f"seed {r['seed']}: " + ", ".join(r["files"]), soft_wrap=True)
    if fmt == "json":
        print(json.dumps(payload, indent=2))


# -- listings -----------------------------------------------------------------------------------
@app.command(epilog="Example: sombench algos")
def algos() -> None:
    """List the registered algorithms."""
    table = Table(title="algorithms")
    table.add_column("name")
    table.add_column("description")
    for name, cls in sorted(algorithms.load_all().items()):
        table.add_row(name, cls.description)
    console.print(table)


@app.command(epilog="Example: sombench envs")
def envs() -> None:
    """List the paper's tasks and their training budgets (any Gymnasium Box-action id also runs)."""
    table = Table(title="paper tasks (SOM paper, Section 5.1)", caption="Any other Gymnasium id with a Box action space runs too, with --steps.")
    for col in ("env", "budget (steps)", "description"):
        table.add_column(col)
    for task in PAPER_TASKS.values():
        table.add_row(task.env_id, f"{task.budget:,}", task.description)
    console.print(table)
    from sombench.bandits import BANDITS

    bandits = Table(title="bandits (SOM paper, Section 5.2 and Appendix F)", caption="One-step episodes, box [-2.5, 2.5]^2; perturbed: e.g. sombench/EightGaussians-noise0.2-v0, "
                                  "sombench/TwoMoons-bump0.5x0.3-v0 (C x SIGMA). `sombench bandit` trains and draws them.")
    for col in ("env", "description"):
        bandits.add_column(col)
    for env_id, text in BANDITS.items():
        bandits.add_row(env_id, text)
    console.print(bandits)


# -- entry point --------------------------------------------------------------------------------
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
        err_console.print("interrupted; rerun the same command to resume from the last checkpoint", soft_wrap=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
