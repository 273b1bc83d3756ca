"""What every use case shares: checking request fields, the device and thread defaults, building a run
variant's specs, and the store pipeline (check the store -> preflight every run -> create the store).

Errors are `sombench.errors.UserError`s naming request fields (`InvalidValue(field, problem)`); the CLI
prints them as one line naming its flag. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from sombench.errors import InvalidValue, UserError
from sombench.runs.spec import TRACKERS, WANDB_MODES, Tracking  # noqa: F401 - the CLI's choices and request type

DEVICES = ("auto", "cpu", "cuda")
"""Device names a request may give; `cuda:N` picks one GPU."""


def algorithm_class(name: str) -> type:
    """The registered class of `name`; UserError listing the registered names otherwise."""
    import algorithms

    registry = algorithms.load_all()
    if name not in registry:
        raise UserError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(registry))}")
    return registry[name]


def algorithm_names() -> list[str]:
    """Every registered algorithm's name, sorted (imports the algorithms)."""
    import algorithms

    return sorted(algorithms.load_all())


def check_positive(field: str, value: int | float | None) -> None:
    """InvalidValue unless `value` is None or > 0."""
    if value is not None and value <= 0:
        raise InvalidValue(field, f"must be a positive integer, got {value}")


def check_non_negative(field: str, value: int | float) -> None:
    if value < 0:
        raise InvalidValue(field, f"must be >= 0, got {value}")


MAX_COUNT = 10**12
"""The largest step count accepted: far beyond any budget (the paper's longest is 5e6), small enough
that times and progress arithmetic stay finite."""


def parse_count(text: str | int | None, field: str) -> int | None:
    """A positive step count as researchers write it: 500000, 500_000, 5e5 (None stays None), at most MAX_COUNT."""
    problem = f"expects a positive integer up to 1e12 (e.g. 500000 or 5e5), got {text!r}"
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool) and 0 < text <= MAX_COUNT:
        return text
    try:
        value = float(str(text).replace("_", ""))
    except ValueError:
        raise InvalidValue(field, problem) from None
    if not (value == value and value != float("inf")) or value != int(value) or not 0 < value <= MAX_COUNT:
        raise InvalidValue(field, problem)
    return int(value)


def check_device_name(name: str) -> str:
    """The device name, lower-cased; InvalidValue unless auto, cpu, cuda or cuda:N."""
    name = name.lower()
    if name not in DEVICES and not re.fullmatch(r"cuda:\d+", name):
        raise InvalidValue("device", f"{name!r}: unknown device; use auto, cpu, cuda or cuda:N")
    return name


def resolve_device(name: str) -> str:
    """`auto` -> cuda when torch sees a GPU, else cpu; UserError for cuda without one."""
    name = check_device_name(name)
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValue("device", "cuda was requested but torch sees no CUDA device; use cpu or auto")
    return name


def default_threads(threads: int | None, workers: int, runs: int) -> int:
    """Torch threads per run: the request's, else this machine's cores shared among the parallel runs."""
    return threads or max(1, (os.cpu_count() or 1) // max(1, min(workers, runs)))


_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]{0,47}$")


def check_tag(tag: str | None) -> None:
    if tag is not None and not _TAG.match(tag):
        raise InvalidValue("tag", f"{tag!r}: use 1-48 letters, digits and _ . = + - (it names a folder)")


def split_names(values: list[str] | None) -> list[str] | None:
    """Accept both repeated values and comma-separated ones (`--envs A --envs B`, `--envs A,B`)."""
    out = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return out or None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a run evaluates, checkpoints and logs, in env steps (and evaluation episodes)."""

    eval_every: int = 5_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    log_every: int = 1_000

    def check(self) -> None:
        for field in dataclasses.fields(self):
            check_positive(field.name, getattr(self, field.name))


RATIO_FIELD = "updates_per_step"
"""The config field `--updates-per-step` sets (algorithms/common/config.py OffPolicyConfig)."""


def has_update_ratio(algo: str) -> bool:
    """Whether `algo`'s config has an update-to-data ratio (the replay-buffer algorithms; not on-policy PPO)."""
    return any(f.name == RATIO_FIELD for f in dataclasses.fields(algorithm_class(algo).Config))


def ratio_sets(algo: str, value: str | float | None, *, required: bool, sets: list[str] = ()) -> list[str]:
    """The `--set` pair `--updates-per-step VALUE` stands for with `algo` ([] when VALUE is None). An
    algorithm without the field: InvalidValue when `required` (a run of that algorithm), else [] (a sweep or
    regress entry runs it at its own cadence; the caller notes it). InvalidValue too when `sets` (the request's
    `--set` pairs) also set the field."""
    if value is None:
        return []
    number = parse_float("updates-per-step", value)
    check_not_set_twice("updates-per-step", RATIO_FIELD, sets)
    if not 0 < number < float("inf"):  # NaN fails both comparisons
        raise InvalidValue("updates-per-step", f"{value}: give a positive ratio of updates to env steps, e.g. 1, 0.2 or 2")
    if not has_update_ratio(algo):
        if required:
            raise InvalidValue("updates-per-step", f"is not for {algo}: it is on-policy and updates once per rollout")
        return []
    return [f"{RATIO_FIELD}={value}"]


def parse_float(name: str, value: str | float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidValue(name, f"{value!r} is not a number") from None


def check_tracking(track) -> None:
    """UserError (one line, exit 2) when a `--track` backend is unknown, its package is not installed, or
    W&B would run online without an API key (it would stop to ask for one in every worker)."""
    for name in track.backends:
        if name not in TRACKERS:
            raise InvalidValue("track", f"{name!r}: choose from {', '.join(TRACKERS)}")
    if len(set(track.backends)) != len(track.backends):
        raise InvalidValue("track", f"{', '.join(track.backends)}: name each tracker once")
    if "wandb" in track.backends and not track.project.strip():
        raise InvalidValue("wandb-project", "is empty: give a project name (default sombench)")
    if track.wandb_mode is not None and track.wandb_mode not in WANDB_MODES:
        raise InvalidValue("wandb-mode", f"{track.wandb_mode!r}: choose from {', '.join(WANDB_MODES)}")
    from sombench.train.tracking import missing_package, wandb_login_problem

    for name in track.backends:
        problem = missing_package(name) or (wandb_login_problem(track.wandb_mode) if name == "wandb" else None)
        if problem:
            raise UserError(problem)


def build_specs(algo: str, env: str, seeds: list[int], steps: int, *, schedule: Schedule, device: str, threads: int,
                sets: list[str], preset: str | None, tag: str | None, compile: bool = False,
                command: tuple[str, ...] = (), track=None, vector_mode: str = "sync") -> list:
    """RunSpecs for seeds of one algorithm (variant) on one env; the preset and every `key=value` of
    `sets` are validated (UserError) before anything is written. `track`: a runs.spec.Tracking (None: none)."""
    from sombench.runs.spec import RunSpec, resolve_config

    config = resolve_config(algo, preset, list(sets))
    check_vector(algo, steps, config.num_envs, vector_mode)
    track = track or Tracking()
    check_tracking(track)
    return [RunSpec(algo=algo, env_id=env, seed=s, total_steps=steps, eval_every=schedule.eval_every,
                    eval_episodes=schedule.eval_episodes, checkpoint_every=schedule.checkpoint_every,
                    log_every=schedule.log_every, device=device, threads=threads, set_pairs=tuple(sets), preset=preset,
                    tag=tag, command=command, compile=compile, track=track, vector_mode=vector_mode)
            for s in seeds]


def check_vector(algo: str, steps: int, num_envs: int, vector_mode: str) -> None:
    """InvalidValue (one line) for a vector mode that is not one of VECTOR_MODES, or a budget that N envs cannot
    take whole: a vector step is N env steps, so `steps` must be a multiple of N."""
    from sombench.envs import VECTOR_MODES

    if vector_mode not in VECTOR_MODES:
        raise InvalidValue("vector-mode", f"{vector_mode!r}: give one of {', '.join(VECTOR_MODES)}")
    if steps % num_envs:
        lo, hi = steps - steps % num_envs, steps - steps % num_envs + num_envs
        budget = f"{lo} or {hi} env steps" if lo else f"{hi} env steps or more"
        raise InvalidValue("num-envs", f"{num_envs} ({algo}) does not divide the budget of {steps} env steps (a vector step is "
                                       f"{num_envs} env steps): give a budget of {budget}, or another number of envs")


NUM_ENVS_FIELD = "num_envs"
"""The config field `--num-envs` sets (algorithms/common/config.py AlgorithmConfig, every algorithm's)."""


MAX_ENVS = 4096
"""The most `--num-envs` accepted (each env is a simulator instance in memory, each async one a process)."""


def num_envs_sets(value: str | int | None, sets: list[str] = ()) -> list[str]:
    """The `--set` pair `--num-envs N` stands for ([] when None); InvalidValue unless N is an integer in
    [1, MAX_ENVS] written as one (not 1e3), or when `sets` also sets num_envs (two values for one field)."""
    if value is None:
        return []
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_ENVS:
        raise InvalidValue("num-envs", f"expects a whole number of envs from 1 to {MAX_ENVS}, got {value!r}")
    check_not_set_twice("num-envs", NUM_ENVS_FIELD, sets)
    return [f"{NUM_ENVS_FIELD}={int(text)}"]


def check_not_set_twice(option: str, field: str, sets: list[str]) -> None:
    """InvalidValue when `--set field=...` (any algorithm prefix) is given beside the option that sets that field."""
    for pair in sets:
        key = pair.split("=", 1)[0].strip()
        if key == field or key.endswith(f":{field}"):
            raise InvalidValue(option, f"and --set {pair} both set {field}: give one of them")


def prepare_store(specs: list, results: Path, *, report_locked: bool) -> dict[int, dict[str, Any]]:
    """Check that `results` is a writable store and every run can be started or resumed by its spec
    (runs/preflight.py); the outcomes already known (skipped, locked). Writes nothing."""
    from sombench.runs.preflight import preflight
    from sombench.runs.store import Store

    Store(results).check()
    return preflight(specs, results, report_locked=report_locked)


def open_store(results: Path) -> None:
    """Create the store (after `prepare_store` passed)."""
    from sombench.runs.store import Store

    Store(results).init()


def needs_user(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outcomes that need the user: failed, refused or locked runs."""
    from sombench.runs.outcome import NEEDS_USER

    return [o for o in outcomes if o["status"] in NEEDS_USER]


def raise_setup_errors(outcomes: list[dict[str, Any]]) -> None:
    """UserError (one line, exit 2) naming the first seed whose set-up failed before training (bad input the
    checks before the run could not see: the trainer left no folder for it), after the others ended."""
    failed = [o for o in outcomes if o.get("setup_error")]
    if failed:
        more = f" ({len(failed) - 1} more seed(s) likewise)" if len(failed) > 1 else ""
        raise UserError(failed[0]["reason"] + more)
