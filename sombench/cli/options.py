"""Options shared by commands, declared once (type, flag, help). Where a default differs between
commands, the command's help says why. Choices are enums, so `--help` lists them and the parser
refuses anything else (one line, exit 2)."""

from __future__ import annotations

import enum
import importlib.util
import pkgutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from sombench.app.common import TRACKERS, WANDB_MODES
from sombench.app.latency import FORMATS as LATENCY_FORMATS
from sombench.app.results import STATS, STATUS_FORMATS, TABLE_FORMATS
from sombench.app.sweep import LAUNCHERS

NAMES = "NAME[,NAME...]"
SCHEDULE = "Schedule"
CLUSTER = "Ray and Slurm"
TRACKING = "Tracking"


def _algorithm_modules() -> list[str]:
    """The algorithm modules' names, found without importing them (the registry imports torch)."""
    spec = importlib.util.find_spec("algorithms")
    paths = list(spec.submodule_search_locations or []) if spec else []
    return sorted(m.name for m in pkgutil.iter_modules(paths) if m.name != "common" and not m.name.startswith("_"))


ALGO_HELP = f"Algorithm: {', '.join(_algorithm_modules())} (`sombench algos` lists them)."


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str enum over a use case's own tuple of choices, so the parser offers exactly what the use case accepts."""
    return enum.Enum(name, {v: v for v in values}, type=str)


TableFormat = _choices("TableFormat", TABLE_FORMATS)
StatusFormat = _choices("StatusFormat", STATUS_FORMATS)
LatencyFormat = _choices("LatencyFormat", LATENCY_FORMATS)


BanditFormat = _choices("BanditFormat", ("table", "json"))
Launcher = _choices("Launcher", LAUNCHERS)
Tracker = _choices("Tracker", TRACKERS)
WandbMode = _choices("WandbMode", WANDB_MODES)
Stats = _choices("Stats", STATS)
Suite = _choices("Suite", ("ci", "nightly"))
"""The suites of sombench/data/regress/suites.json (tests/test_cli_surface.py keeps them equal)."""
Task = _choices("Task", ("eight-gaussians", "two-moons", "checkerboard"))
"""The tasks of sombench/bandit/tasks.py TASKS (tests/test_cli_surface.py keeps them equal)."""


def _device(value: str) -> str:
    from sombench.app.common import check_device_name
    from sombench.errors import UserError

    try:
        return check_device_name(value)
    except UserError as exc:
        raise typer.BadParameter(str(exc.problem if hasattr(exc, "problem") else exc)) from None


DEVICE_HELP = "auto (cuda when torch sees a GPU), cpu, cuda or cuda:N."
FLAG = ""  # a boolean flag takes no value: show none in --help

# -- where and how -------------------------------------------------------------------------------
Results = Annotated[Path, typer.Option("--results", help="Results store folder.")]
Device = Annotated[str, typer.Option("--device", metavar="auto|cpu|cuda[:N]", callback=_device, help=DEVICE_HELP)]
Workers = Annotated[int, typer.Option("--workers", help="Seeds trained in parallel processes.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="Torch threads per seed (default: CPU cores / workers).")]
Compile = Annotated[bool, typer.Option("--compile", metavar=FLAG, help="torch.compile the act and update paths (CUDA graphs on CUDA); falls back to eager with one warning.")]

# -- what to run ---------------------------------------------------------------------------------
Algo = Annotated[str, typer.Option("--algo", metavar="NAME", help=ALGO_HELP)]
Env = Annotated[str, typer.Option("--env", help="Gymnasium id with a Box action space (see `sombench envs`).")]
Seeds = Annotated[int, typer.Option("--seeds", help="Number of seeds to run.")]
SeedStart = Annotated[int, typer.Option("--seed-start", help="First seed; runs seed_start .. seed_start+seeds-1.")]
Steps = Annotated[Optional[str], typer.Option("--steps", metavar="N", help="Env steps per seed, e.g. 500000 or 5e5 (default: the paper's budget for the env times the algorithm's factor).")]
Sets = Annotated[list[str], typer.Option("--set", metavar="KEY=VALUE", help="Override a config field (repeatable); `sombench algos NAME` lists the fields.")]
Tag = Annotated[Optional[str], typer.Option("--tag", help="Name this config's runs: results/<env>/<algo>@<tag>/ (default: derived from the --set values that differ from the defaults).")]
NumEnvs = Annotated[Optional[str], typer.Option("--num-envs", metavar="N", help="Training envs stepped together (Gymnasium vector envs; one batched acting call for all N): sets every algorithm's num_envs (default 1; relax's code steps 5). Budgets stay in env steps.")]
VectorMode = Annotated[str, typer.Option("--vector-mode", metavar="sync|async", help="Run the --num-envs envs in this process (sync) or one worker process each (async); same numbers either way.")]
UpdatesPerStep = Annotated[Optional[str], typer.Option("--updates-per-step", metavar="R", help="Updates per env step after warm-up (the update-to-data ratio; 1, 0.2, 2, ...): sets the replay-buffer algorithms' updates_per_step (default 1; relax's code makes 0.2).")]
Preset = Annotated[Optional[str], typer.Option("--preset", help="A named preset of the algorithm (e.g. bandit), applied before --set.")]

# -- schedule ------------------------------------------------------------------------------------
EvalEvery = Annotated[int, typer.Option("--eval-every", help="Env steps between evaluations.", rich_help_panel=SCHEDULE)]
EvalEpisodes = Annotated[int, typer.Option("--eval-episodes", help="Episodes per evaluation.", rich_help_panel=SCHEDULE)]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Env steps between checkpoints (taken at the next episode end).", rich_help_panel=SCHEDULE)]
LogEvery = Annotated[int, typer.Option("--log-every", help="Env steps per train.csv row (metrics averaged over the window).", rich_help_panel=SCHEDULE)]

# -- tracking ------------------------------------------------------------------------------------
Track = Annotated[list[Tracker], typer.Option("--track", metavar="tensorboard|wandb", help="Also log metrics, evaluations, SPS and the config to TensorBoard (event files in each run folder) or W&B (repeatable).", rich_help_panel=TRACKING)]
WandbProject = Annotated[str, typer.Option("--wandb-project", help="W&B project.", rich_help_panel=TRACKING)]
WandbEntity = Annotated[Optional[str], typer.Option("--wandb-entity", help="W&B entity (user or team; default: yours).", rich_help_panel=TRACKING)]
WandbGroup = Annotated[Optional[str], typer.Option("--wandb-group", help="W&B group (default: <env>/<algo>\\[@<variant>], a variant's seeds together).", rich_help_panel=TRACKING)]
WandbModeOpt = Annotated[Optional[WandbMode], typer.Option("--wandb-mode", help="online, or offline (written into the run folder; upload later with `wandb sync`). Default: W&B's (WANDB_MODE, else online).", rich_help_panel=TRACKING)]

# -- reading results -----------------------------------------------------------------------------
Envs = Annotated[list[str], typer.Option("--envs", metavar=NAMES, help="Only these envs (repeatable or comma-separated).")]
Algos = Annotated[list[str], typer.Option("--algos", metavar=NAMES, help="Only these algorithms, or exact variants such as som@score_scale=10 (repeatable or comma-separated).")]
NormRef = Annotated[Optional[str], typer.Option("--norm-ref", metavar="FILE|random|fixed", help="CSV of per-env min/max for Normalized, `random` (random-policy min), or `fixed` (random-policy min, the paper's best Table 1 mean as max; the default with --stats rliable).")]
