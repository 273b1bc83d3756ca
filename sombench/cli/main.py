"""The `sombench` command line (Typer + rich): one short function per command that parses its options
into a request, calls the use case in sombench/app/ and prints what sombench/render/ makes of the
result. Every structured error becomes one line on stderr and exit code 2 (`main`).

Heavy libraries (torch, the algorithms, pandas, scipy, matplotlib) are imported by the use cases that
need them, so `sombench --help` and bad-input errors answer at once, and `table`, `status` and `plot`
never import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from sombench.cli import options as o
from sombench.errors import InvalidValue, UserError
from sombench.measure.paper import DEFAULT_REFERENCE

app = typer.Typer(
    help="sombench: benchmark harness for online RL with one-step generative policies (SOM and baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_ARGV: list[str] = []
"""The arguments `main` was given: each run's config.json records the command line."""


def _command() -> tuple[str, ...]:
    return ("sombench", *_ARGV)


def _print(items: list[Any] | Any, to: Console | None = None) -> None:
    """Strings as they are (md, csv, json: byte-exact for pipes), rich renderables through the console."""
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            if to is None:
                print(item)
            else:
                to.print(item, markup=False, highlight=False, soft_wrap=True)
        else:
            (to or console).print(item)


def _warn(message: str) -> None:
    err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def _tracking(track: list, project: str, entity: str | None, group: str | None, mode):
    from sombench.app.common import Tracking

    return Tracking(tuple(t.value for t in track), project, entity, group, mode.value if mode is not None else None)


def _schedule(eval_every: int, eval_episodes: int, checkpoint_every: int, log_every: int):
    from sombench.app.common import Schedule

    return Schedule(eval_every, eval_episodes, checkpoint_every, log_every)


# -- run ----------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench run --algo sac --env Hopper-v4 --seeds 5 --workers 5 --set batch_size=128")
def run(algo: o.Algo, env: o.Env, seeds: o.Seeds = 1, seed_start: o.SeedStart = 0, steps: o.Steps = None,
        results: o.Results = Path("results"), device: o.Device = "auto", workers: o.Workers = 1, set_: o.Sets = [],  # noqa: B006
        tag: o.Tag = None, preset: o.Preset = None, eval_every: o.EvalEvery = 5_000, eval_episodes: o.EvalEpisodes = 10,
        checkpoint_every: o.CheckpointEvery = 50_000, log_every: o.LogEvery = 1_000, threads: o.Threads = None,
        compile_: o.Compile = False, updates_per_step: o.UpdatesPerStep = None, track: o.Track = [], wandb_project: o.WandbProject = "sombench", wandb_entity: o.WandbEntity = None,  # noqa: B006
        wandb_group: o.WandbGroup = None, wandb_mode: o.WandbModeOpt = None, num_envs: o.NumEnvs = None,
        vector_mode: o.VectorMode = "sync") -> None:
    """Train ALGO on ENV over seeds; skip finished seeds, resume interrupted ones."""
    from sombench.app import run as use_case
    from sombench.render import commands as show
    from sombench.render.progress import ProgressBars

    plan = use_case.prepare(use_case.RunRequest(
        algo, env, seeds, seed_start, steps, results, device, workers, list(set_), tag, preset,
        _schedule(eval_every, eval_episodes, checkpoint_every, log_every), threads, compile_, _command(),
        _tracking(track, wandb_project, wandb_entity, wandb_group, wandb_mode), updates_per_step, num_envs, vector_mode))
    if plan.hint:
        err_console.print(plan.hint, markup=False, highlight=False, soft_wrap=True)
    with ProgressBars(plan.specs, console) as bars:
        outcomes = use_case.execute(plan, bars.on_event)
    summary = use_case.summarise(plan, outcomes)
    console.print(show.run_summary(summary))
    console.print(f"results in {summary.folder}/", markup=False)
    if summary.failed:
        err_console.print(show.RUN_FAILED.format(n=summary.failed), markup=False, soft_wrap=True)
    if not summary.ok:
        raise typer.Exit(1)


# -- reading results ----------------------------------------------------------------------------
@app.command(epilog="Example: sombench evaluate results/Pendulum-v1/sac/seed_0 --episodes 5 --video videos")
def evaluate(run: Annotated[Path, typer.Argument(help="A run folder: results/ENV/ALGO[@VARIANT]/seed_N.", show_default=False)],
             episodes: Annotated[int, typer.Option("--episodes", help="Episodes to run.")] = 10,
             deterministic: Annotated[bool, typer.Option("--deterministic/--stochastic", help="The evaluation policy (as the run's evaluations) or the exploring one.")] = True,
             video: Annotated[Optional[Path], typer.Option("--video", metavar="DIR", help="Record one MP4 per episode into DIR (needs the [video] extra; MuJoCo needs EGL or OSMesa).")] = None,
             seed: Annotated[Optional[int], typer.Option("--seed", help="Episode seed; default the run's own, which repeats the run's evaluation at the checkpoint.")] = None,
             device: o.Device = "auto") -> None:
    """Load a run's checkpoint (done, interrupted or failed) and run its policy: returns with a 95% CI, videos."""
    from sombench.app import evaluate as use_case
    from sombench.render import commands as show

    console.print(show.evaluation(use_case.evaluate(use_case.EvaluateRequest(run, episodes, deterministic, video, seed, device))))


@app.command(epilog="Example: sombench analyze --algos som,mfp --env Hopper-v4 --results results --seed 0")
def analyze(algos: Annotated[list[str], typer.Option("--algos", metavar=o.NAMES, help="Two or more generative policies (som, som@VARIANT, ...); the first is the behaviour policy of the rollouts (SOM in the paper).")],
            env: o.Env,
            results: o.Results = Path("results"),
            seed: Annotated[int, typer.Option("--seed", help="The runs' seed (seed_N of each algorithm); the analysis' rollouts, state sample and noise derive from it.")] = 0,
            out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="Folder for the figures and numbers (default: RESULTS/analysis/ENV/A-vs-B_seedN/).")] = None,
            critic: Annotated[Optional[str], typer.Option("--critic", metavar="NAME", help="The run whose learned Q scores every method's actions (default: the first algorithm's).")] = None,
            candidates: Annotated[int, typer.Option("--candidates", help="Candidate actions per state and method in Figure 3 (Appendix D: 32).")] = 32,
            device: o.Device = "auto",
            threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads and t-SNE jobs (default: torch's and scikit-learn's own).")] = None) -> None:
    """The paper's policy analysis from stored checkpoints: Figure 3 (per-state Q mean and std of 32 candidates, box plots) and Figures 4, 10-12 (t-SNE on the Q-landscape)."""
    from sombench.app import analyze as use_case
    from sombench.render.policy_analysis import summary

    result = use_case.analyze(use_case.AnalyzeRequest(list(algos), env, results, seed, out, critic, device, candidates, threads))
    rows = [{"label": m.label, "run": str(m.run), "step": m.step, "median_mean": m.median_mean, "median_std": m.median_std,
             "spread": m.spread} for m in result.methods]
    notes = [f"critic: {result.critic} (checkpoint at step {result.critic_step:,}, {result.critic_run}) scored every method's actions"]
    _print(summary(rows, f"{result.env}, seed {result.seed}: medians over {len(result.box.indices)} states", notes + [f"wrote {f}" for f in result.files]))


@app.command(epilog="Example: sombench status --results results --format json")
def status(results: o.Results = Path("results"), fmt: Annotated[o.StatusFormat, typer.Option("--format", help="Output format.")] = o.StatusFormat.rich) -> None:
    """List every run in a results store: progress, state and last evaluation return."""
    from sombench.app import results as use_case
    from sombench.render import commands as show

    _print(show.status(use_case.status(results), results, fmt.value))


@app.command(epilog="Example: sombench table --results results --format md --paper --stats rliable")
def table(results: o.Results = Path("results"), envs: o.Envs = [], algos: o.Algos = [],  # noqa: B006
          fmt: Annotated[o.TableFormat, typer.Option("--format", help="Output format.")] = o.TableFormat.rich,
          paper: Annotated[bool, typer.Option("--paper", metavar=o.FLAG, help="Also print the paper's Table 1 for the same cells.")] = False,
          norm_ref: o.NormRef = None,
          at_step: Annotated[Optional[str], typer.Option("--at-step", metavar="N", help="Compare every run at its last evaluation at or before env step N instead of at its end.")] = None,
          stats: Annotated[Optional[o.Stats], typer.Option("--stats", help="`rliable`: IQM, optimality gap, probability of improvement with bootstrap CIs (rich, md or json).")] = None) -> None:
    """Table 1: final return (mean ± 95% CI over seeds) per algorithm and env, and a Normalized column."""
    from sombench.app import results as use_case
    from sombench.render import commands as show

    result = use_case.table(use_case.TableRequest(results, list(envs), list(algos), paper, norm_ref, at_step,
                                                  stats.value if stats else None, fmt.value))
    _print(show.table(result, fmt.value))


@app.command(epilog="Example: sombench plot --results results --envs Hopper-v4,Walker2d-v4 --out figure2.pdf")
def plot(results: o.Results = Path("results"), envs: o.Envs = [], algos: o.Algos = [],  # noqa: B006
         out: Annotated[Optional[Path], typer.Option("--out", help="Image file, .png, .pdf or .svg (default: RESULTS/figure2.png).")] = None,
         norm_ref: o.NormRef = None,
         by: Annotated[Optional[str], typer.Option("--by", metavar="KEY", help="Ablation: one panel per env and algorithm, one curve per value of config field KEY (e.g. score_scale).")] = None) -> None:
    """Figure 2: evaluation return against env steps (mean and 95% CI band over seeds) and a normalized panel.
    Its curves average exactly the runs that `sombench table` puts in each cell."""
    from sombench.app import results as use_case

    path = use_case.plot(use_case.PlotRequest(results, list(envs), list(algos), out, norm_ref, by))
    console.print(f"wrote {path}", markup=False)


# -- latency ------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench latency --algos sac --repeats 30 --paper")
def latency(algos: Annotated[list[str], typer.Option("--algos", metavar=o.NAMES, help="Only these algorithms (repeatable or comma-separated; default: all registered).")] = [],  # noqa: B006
            env: Annotated[Optional[str], typer.Option("--env", help="Env whose observation and action shapes are used (default: the paper's HalfCheetah-v4).")] = None,
            device: o.Device = "auto",
            repeats: Annotated[Optional[int], typer.Option("--repeats", help="Timed repeats per measurement (default: the paper's 30).")] = None,
            threads: Annotated[Optional[int], typer.Option("--threads", help="torch.set_num_threads (default: torch's own, recorded: latency times one process, not a share of the machine).")] = None,
            fmt: Annotated[o.LatencyFormat, typer.Option("--format", help="Output format.")] = o.LatencyFormat.rich,
            paper: Annotated[bool, typer.Option("--paper", metavar=o.FLAG, help="Also print the paper's Table 2 and ratio columns (each algorithm / the --reference algorithm).")] = False,
            reference: Annotated[Optional[str], typer.Option("--reference", metavar="NAME", help=f"The algorithm the ratio columns divide by (default: {DEFAULT_REFERENCE}, as the paper's Table 2 claim).")] = None,
            results: Annotated[Path, typer.Option("--results", help="Results store folder; the CSV goes to RESULTS/latency/.")] = Path("results"),
            compile_: Annotated[bool, typer.Option("--compile", metavar=o.FLAG, help="Also time each algorithm compiled (torch.compile; CUDA graphs on CUDA): eager and compiled columns.")] = False,
            breakdown: Annotated[bool, typer.Option("--breakdown", metavar=o.FLAG, help="Also print each algorithm's update part by part against its network evaluations as bare matrix products.")] = False,
            act_batch: Annotated[list[int], typer.Option("--act-batch", metavar="N", help="Also time acting on N observations at once, per call and per env step (what N vector envs cost; repeatable).")] = []) -> None:  # noqa: B006
    """Table 2: time of one training update (batch 256) and one acting call (batch 1) per algorithm."""
    from sombench.app import latency as use_case
    from sombench.render import commands as show

    def on_start(name: str) -> None:
        if err_console.is_terminal:  # keep piped stderr quiet; no spinner thread runs while timing
            err_console.print(f"timing {name} ...", style="dim")

    result = use_case.latency(use_case.LatencyRequest(list(algos), env, device, repeats, threads, results, compile_, breakdown,
                                                      paper, reference, fmt.value, list(act_batch)), on_start, _warn)
    _print(show.latency(result, fmt.value))


# -- bandit -------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench bandit --algo som --task eight-gaussians --perturb noise:0.2 --seeds 3 --steps 4000")
def bandit(algo: o.Algo,
           task: Annotated[o.Task, typer.Option("--task", help="The 2-D bandit.")] = o.Task("eight-gaussians"),
           perturb: Annotated[Optional[str], typer.Option("--perturb", metavar="noise:SIGMA|bump:C,SIGMA", help="Reward noise or a Gaussian bump at the origin; also trains the clean task.")] = None,
           seeds: Annotated[int, typer.Option("--seeds", help="Number of seeds (0 .. seeds-1); default 3, not 1: mode coverage differs from seed to seed (docs/som-notes.md).")] = 3,
           steps: Annotated[str, typer.Option("--steps", metavar="N", help="Env steps (= one-step episodes) per seed; the bandits have no paper budget: 4000 is the one docs/som-notes.md measured at.")] = "4000",
           results: o.Results = Path("results"),
           fmt: Annotated[o.BanditFormat, typer.Option("--format", help="Output format.")] = o.BanditFormat.table,
           set_: Annotated[list[str], typer.Option("--set", metavar="KEY=VALUE", help="Override a config field (repeatable); applied after the algorithm's bandit preset.")] = [],  # noqa: B006
           tag: o.Tag = None,
           device: Annotated[str, typer.Option("--device", metavar="auto|cpu|cuda[:N]", callback=o._device, help="Default cpu, not auto: the bandits' networks are small enough that a GPU's per-call latency dominates.")] = "cpu",
           workers: o.Workers = 1, threads: o.Threads = None, compile_: o.Compile = False,
           track: o.Track = [], wandb_project: o.WandbProject = "sombench", wandb_entity: o.WandbEntity = None,  # noqa: B006
           wandb_group: o.WandbGroup = None, wandb_mode: o.WandbModeOpt = None) -> None:
    """Train on a 2-D bandit (SOM Section 5.2, Appendices F-H), then write and print mode counts and figures."""
    import json

    from sombench.app import bandit as use_case
    from sombench.render import commands as show
    from sombench.render.progress import ProgressBars

    plan = use_case.prepare(use_case.BanditRequest(algo, task.value, perturb, seeds, steps, results, list(set_), tag, device,
                                                   workers, threads, compile_, _command(),
                                                   _tracking(track, wandb_project, wandb_entity, wandb_group, wandb_mode)))
    out = err_console if fmt is o.BanditFormat.json else console
    failed = []
    for specs in plan.groups.values():
        with ProgressBars(specs, out) as bars:
            failed += use_case.train_group(plan, specs, bars.on_event)
    if failed:
        err_console.print("error: training did not finish: " + "; ".join(failed) + "; fix the cause and rerun the same command",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    payload = use_case.report(plan)
    if fmt is o.BanditFormat.json:
        print(json.dumps(payload, indent=2))
    else:
        _print(show.bandit(payload, {name: specs[0].key.label for name, specs in plan.groups.items()}), console)


# -- sweep --------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench sweep --algos som,sac --envs Hopper-v4,Walker2d-v4 --seeds 5 --grid score_scale=5,10,25,50 --launcher ray --dry-run")
def sweep(algos: Annotated[list[str], typer.Option("--algos", metavar=o.NAMES, help="Algorithms (repeatable or comma-separated; `all`: every registered one).")],
          envs: Annotated[list[str], typer.Option("--envs", metavar=o.NAMES, help="Envs (repeatable or comma-separated; `paper`: the paper's nine tasks).")],
          seeds: Annotated[int, typer.Option("--seeds", help="Seeds per grid point.")] = 1,
          seed_start: o.SeedStart = 0,
          steps: o.Steps = None,
          set_: Annotated[list[str], typer.Option("--set", metavar="[ALGO:]KEY=VALUE", help="Override a config field for every algorithm, or for ALGO only (repeatable).")] = [],  # noqa: B006
          grid: Annotated[list[str], typer.Option("--grid", metavar="KEY=V1,V2", help="Sweep a config field (repeatable; A|B when values hold commas); each point is a run variant.")] = [],  # noqa: B006
          preset: Annotated[Optional[str], typer.Option("--preset", help="A named preset of every algorithm, applied before --set.")] = None,
          launcher: Annotated[o.Launcher, typer.Option("--launcher", help="local (process pool), ray or slurm (submitit; its local executor where no Slurm exists).")] = o.Launcher.local,
          dry_run: Annotated[bool, typer.Option("--dry-run", metavar=o.FLAG, help="Print the grid and its cost projection; run nothing.")] = False,
          results: Annotated[Path, typer.Option("--results", help="Results store folder (shared storage for ray/slurm clusters).")] = Path("results"),
          device: Annotated[str, typer.Option("--device", metavar="auto|cpu|cuda[:N]", callback=o._device, help=o.DEVICE_HELP + " With ray/slurm, auto is cuda when --gpus-per-run > 0 (the runs' machines, not this one, decide).")] = "auto",
          workers: Annotated[Optional[int], typer.Option("--workers", help="Runs at once (local: default 1, runs are long; slurm: array tasks at once, default CPU cores / --cpus-per-run; ray local instance: its CPUs, default all).")] = None,
          threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per run (default: local: cores / workers; ray, slurm: --cpus-per-run).")] = None,
          address: Annotated[Optional[str], typer.Option("--address", help="ray: `auto` or ray://HOST:PORT of a cluster (default: a local instance on 127.0.0.1).", rich_help_panel=o.CLUSTER)] = None,
          cpus_per_run: Annotated[int, typer.Option("--cpus-per-run", help="ray, slurm: CPUs requested per run.", rich_help_panel=o.CLUSTER)] = 1,
          gpus_per_run: Annotated[float, typer.Option("--gpus-per-run", help="ray, slurm: GPUs requested per run.", rich_help_panel=o.CLUSTER)] = 0,
          partition: Annotated[Optional[str], typer.Option("--partition", help="slurm: partition.", rich_help_panel=o.CLUSTER)] = None,
          time_: Annotated[str, typer.Option("--time", help="slurm: time limit per run (minutes, HH:MM:SS, D-HH:MM:SS); a preempted run resumes on the rerun.", rich_help_panel=o.CLUSTER)] = "24:00:00",
          eval_every: o.EvalEvery = 5_000, eval_episodes: o.EvalEpisodes = 10, checkpoint_every: o.CheckpointEvery = 50_000,
          log_every: o.LogEvery = 1_000, compile_: o.Compile = False, updates_per_step: o.UpdatesPerStep = None,
          track: o.Track = [], wandb_project: o.WandbProject = "sombench", wandb_entity: o.WandbEntity = None,  # noqa: B006
          wandb_group: o.WandbGroup = None, wandb_mode: o.WandbModeOpt = None, num_envs: o.NumEnvs = None,
          vector_mode: o.VectorMode = "sync") -> None:
    """Run a grid (algorithms x envs x seeds x --grid values) on a local pool, Ray or Slurm; skip finished runs, resume the others."""
    from rich.live import Live

    from sombench.app import sweep as use_case
    from sombench.app.common import needs_user
    from sombench.render import commands as show
    from sombench.render import sweep as sweep_view

    req = use_case.SweepRequest(list(algos), list(envs), seeds, seed_start, steps, list(set_), list(grid), preset, launcher.value,
                                results, device, workers, threads, address, cpus_per_run, gpus_per_run, partition, time_,
                                _schedule(eval_every, eval_episodes, checkpoint_every, log_every), compile_, _command(),
                                _tracking(track, wandb_project, wandb_entity, wandb_group, wandb_mode), updates_per_step,
                                num_envs, vector_mode)
    plan = use_case.prepare(req, dry_run=dry_run)
    if dry_run:
        from sombench.render.cost import projection_table

        console.print(sweep_view.grid_table(plan.specs, plan.notes))
        console.print(projection_table(use_case.projection(plan), plan.workers))
        return
    prepared = use_case.check(plan)
    title = f"sweep: {len(plan.specs)} runs on {prepared.launcher.describe()}"
    view = lambda outcomes, launched: sweep_view.render(use_case.run_rows(plan.specs, prepared.results, outcomes, launched), title)  # noqa: E731
    with Live(view({}, set()), console=console, refresh_per_second=2, transient=False) as live:
        outcomes = use_case.execute(prepared, lambda outs, launched: live.update(view(outs, launched)))
    if not console.is_terminal:
        console.line()  # Live leaves a piped output's last line open
    console.print(f"{show.outcome_counts(outcomes)}; results in {prepared.results}/", markup=False)
    bad = [(s, x) for s, x in zip(plan.specs, outcomes) if needs_user([x])]
    if bad:
        for spec, x in bad:
            err_console.print(f"{spec.env_id} {spec.key.label} seed {spec.seed}: {x['status']}: {x.get('reason', '')}",
                              markup=False, soft_wrap=True, highlight=False)
        err_console.print(show.SWEEP_RERUN, markup=False, soft_wrap=True)
        raise typer.Exit(1)


# -- regress ------------------------------------------------------------------------------------
@app.command(epilog="Example: sombench regress --suite ci   (after an intended change: sombench regress --suite ci --update)")
def regress(suite: Annotated[o.Suite, typer.Option("--suite", help="ci (~10 min on 2 cores) or nightly (more seeds, twice the steps).")] = o.Suite.ci,
            algos: Annotated[list[str], typer.Option("--algos", metavar=o.NAMES, help="Only these algorithms' entries (repeatable or comma-separated).")] = [],  # noqa: B006
            set_: Annotated[list[str], typer.Option("--set", metavar="KEY=VALUE", help="Override a config field in every entry run (e.g. to check that a sabotaged config fails).")] = [],  # noqa: B006
            update: Annotated[bool, typer.Option("--update", metavar=o.FLAG, help="Rewrite the bands of the entries run from these results, with provenance.")] = False,
            bands: Annotated[Optional[Path], typer.Option("--bands", help="Bands file (default: sombench/data/regress/bands.json in the repository).")] = None,
            results: Annotated[Optional[Path], typer.Option("--results", help="Results store for the runs (default: a temporary folder, removed afterwards).")] = None,
            workers: Annotated[Optional[int], typer.Option("--workers", help="Runs in parallel processes (default: CPU cores: the runs are small).")] = None,
            threads: Annotated[int, typer.Option("--threads", help="Torch threads per run (default 1: the bands were measured so).")] = 1,
            updates_per_step: o.UpdatesPerStep = None, track: o.Track = [], wandb_project: o.WandbProject = "sombench", wandb_entity: o.WandbEntity = None,  # noqa: B006
            wandb_group: o.WandbGroup = None, wandb_mode: o.WandbModeOpt = None, num_envs: o.NumEnvs = None,
            vector_mode: o.VectorMode = "sync") -> None:
    """Run a suite of small-budget runs of every registered algorithm and fail (exit 1) on a significant drop from the reference bands."""
    from rich.live import Live

    from sombench.app import regress as use_case
    from sombench.app.sweep import run_rows
    from sombench.render import sweep as sweep_view
    from sombench.render.regress import verdict_table

    plan = use_case.prepare(use_case.RegressRequest(suite.value, list(algos), list(set_), update, bands, results, workers,
                                                    threads, _command(), updates_per_step,
                                                    _tracking(track, wandb_project, wandb_entity, wandb_group, wandb_mode),
                                                    num_envs, vector_mode))
    if plan.missing:
        err_console.print(f"note: no {suite.value} entry for {', '.join(plan.missing)}", markup=False)
    title = f"sweep: {len(plan.flat)} runs on a local pool of {plan.workers} process(es)"
    view = lambda outcomes, launched: sweep_view.render(run_rows(plan.flat, plan.root, outcomes, launched), title)  # noqa: E731
    with Live(view({}, set()), console=console, refresh_per_second=2, transient=False) as live:
        result = use_case.execute(plan, lambda outs, launched: live.update(view(outs, launched)))
    if not console.is_terminal:
        console.line()  # Live leaves a piped output's last line open
    if result.updated is not None:
        console.print(f"updated {result.entries} band(s) of suite {result.suite} in {result.updated} ({result.elapsed_s:.0f} s)", markup=False)
        return
    title = (f"regress --suite {result.suite}" + (f" --set {' --set '.join(set_)}" if set_ else "")
             + f": {result.runs} runs in {result.elapsed_s:.0f} s")
    console.print(verdict_table(result.rows, title))
    if result.bad:
        err_console.print(f"{len(result.bad)} of {len(result.rows)} entries regressed or failed: "
                          + ", ".join(f"{r['entry'].algo} on {r['entry'].env} ({r['verdict']})" for r in result.bad),
                          markup=False, soft_wrap=True)
        raise typer.Exit(1)


# -- listings -----------------------------------------------------------------------------------
@app.command(epilog="Example: sombench algos   (one algorithm's config fields: sombench algos som --preset bandit)")
def algos(name: Annotated[Optional[str], typer.Argument(metavar="NAME", help="An algorithm: list its config fields (the keys of --set).")] = None,
          preset: Annotated[Optional[str], typer.Option("--preset", help="Show the defaults after this preset of NAME (marked *).")] = None) -> None:
    """List the registered algorithms and their presets, or one algorithm's config fields."""
    from sombench.app import catalog
    from sombench.render import commands as show

    if name is None:
        if preset is not None:
            raise InvalidValue("preset", "needs an algorithm NAME")
        console.print(show.algorithms(catalog.algorithms_list()))
        return
    console.print(show.config_fields(name, preset, catalog.config_fields(name, preset)))


@app.command(epilog="Example: sombench envs")
def envs() -> None:
    """List the paper's tasks and their training budgets (any Gymnasium Box-action id also runs)."""
    from sombench.app import catalog
    from sombench.render import commands as show

    _print(show.envs(catalog.paper_tasks(), catalog.bandit_tasks()))


# -- entry point --------------------------------------------------------------------------------
INTERRUPTED = "interrupted; rerun the same command to resume from the last checkpoint"


def error_line(exc: UserError) -> str:
    """The one line a structured error prints: an InvalidValue names its option (`--eval-every ...`)."""
    if isinstance(exc, InvalidValue):
        return f"error: --{exc.field.replace('_', '-')} {exc.problem}"
    return f"error: {exc}"


def stop_signal(exc: BaseException | None = None) -> int:
    """The number of the signal that stopped the command: the one a stop handler of train/executors caught
    (Typer may have turned its exception into exit code 130), else SIGINT's (2). Exit codes are 128 + it:
    130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, as shells report a process those signals ended."""
    executors = sys.modules.get("sombench.train.executors")  # loaded by every command that runs seeds
    caught = executors.STOPPED_BY if executors is not None else []
    return caught[-1] if caught else 2


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; bad input becomes one line on stderr and exit code 2, never a traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    _ARGV[:] = args
    if not args:
        args = ["--help"]
    try:
        code = app(args=args, prog_name="sombench", standalone_mode=False)
    except UserError as exc:
        err_console.print(error_line(exc), markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.TyperException as exc:  # usage errors: missing option, wrong type, unknown flag, a choice not offered
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {exc.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except ValueError as exc:  # a plug-in algorithm that clashes or cannot load (algorithms.RegistryError)
        registry = sys.modules.get("algorithms")
        if registry is None or not isinstance(exc, registry.RegistryError):
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        code = exc.exit_code
    if code == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into exit code 130 before it reaches us
        code = 128 + stop_signal()
        err_console.print(INTERRUPTED, markup=False, soft_wrap=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
