"""What a run is: its spec (algorithm, env, seed, budget, schedule, config) and the identity a rerun
must match to resume it. A spec resolves its config, variant name and key once, on first use, and keeps
them (the sweep's live table reads every run's key at every refresh).

The algorithm registry is imported on first use, not with this module: the store and the analysis
layer import `RunKey` and friends without torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any

from sombench.errors import InvalidValue
from sombench.overrides import apply_overrides


TRACKERS = ("tensorboard", "wandb")
"""The experiment trackers a run can log to (`--track`); sombench/train/tracking.py writes them."""

WANDB_MODES = ("online", "offline")


@dataclasses.dataclass(frozen=True)
class Tracking:
    """Where a run's metrics go besides its CSVs (`--track`, `--wandb-*`). Not part of a run's identity:
    logging changes no number, so a run started without tracking may be resumed with it (the rows already
    stored are sent first) and the other way round."""

    backends: tuple[str, ...] = ()
    """A subset of TRACKERS, in the order given."""
    project: str = "sombench"
    """W&B project (`--wandb-project`)."""
    entity: str | None = None
    """W&B entity, a user or team (`--wandb-entity`); None: the logged-in user's default."""
    group: str | None = None
    """W&B group (`--wandb-group`); None: `<env>/<algo>[@<variant>]`, so a variant's seeds are grouped."""
    wandb_mode: str | None = None
    """`online` or `offline` (`--wandb-mode`); None: W&B's own default (the WANDB_MODE variable, else online).
    Offline runs are written into the run folder and uploaded later with `wandb sync`."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines one seed's run. Picklable, so worker processes can take it."""

    algo: str
    env_id: str
    seed: int
    total_steps: int
    eval_every: int = 5_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    log_every: int = 1_000
    device: str = "cpu"
    threads: int = 1
    set_pairs: tuple[str, ...] = ()
    preset: str | None = None
    """A named preset of the algorithm (its class's `presets`) applied before `set_pairs`."""
    tag: str | None = None
    """The run variant's name (`--tag`); None derives it from the config (see `variant`)."""
    command: tuple[str, ...] = ()
    """The command line that started this run (recorded, not part of its identity)."""
    compile: bool = False
    """torch.compile the algorithm's act and update paths (`--compile`). Not part of the identity: compiled
    and eager runs agree within float tolerance (tests/test_compile.py), so either may resume the other;
    config.json records which segments of the run were compiled."""
    track: Tracking = Tracking()
    """Experiment trackers (`--track`); not part of the identity."""
    vector_mode: str = "sync"
    """How the `num_envs` training envs run (`--vector-mode`, sombench.envs.VECTOR_MODES): in the trainer's process
    or one worker process each. Not part of the identity: both step the same envs from the same seeds and give
    the same numbers (tests/test_vector_envs.py), so either may resume the other; config.json records it."""

    # Derived values, computed on first use and kept in the instance's __dict__ (functools.cached_property
    # writes there directly, so the frozen dataclass allows it). They are no fields: eq, hash and repr
    # ignore them, dataclasses.replace recomputes them for the new spec, and a pickled spec carries its
    # fields only (__getstate__), so what travels to a worker is what travelled before.
    @functools.cached_property
    def _config(self):
        return resolve_config(self.algo, self.preset, list(self.set_pairs))

    @functools.cached_property
    def _reference_config(self):
        """The algorithm's defaults with the preset applied: what `variant` and upgrades compare against."""
        return self._config if not self.set_pairs else resolve_config(self.algo, self.preset, [])

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the fields only, as before the caches existed: a worker process recomputes them once."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def config(self):
        """The resolved algorithm config (validated; computed once per spec). Treat it as read-only: it is
        shared by every caller of this spec."""
        return self._config

    @functools.cached_property
    def variant(self) -> str | None:
        """The folder suffix after `algo@`: the tag, or the fields that differ from the algorithm's
        defaults (with the preset applied), or None when there are none."""
        return self.tag or variant_name(self._config, self._reference_config)

    @functools.cached_property
    def key(self):
        from sombench.runs.store import RunKey

        return RunKey(self.env_id, self.algo, self.variant, self.seed)

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun to resume this run (not device, threads or checkpointing)."""
        return {
            "algo": self.algo,
            "env": self.env_id,
            "seed": self.seed,
            "total_steps": self.total_steps,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "log_every": self.log_every,
            "algo_config": json_ready(dataclasses.asdict(self.config())),
            "algo_revision": algorithm_class(self.algo).revision,
        }


def algorithm_class(algo: str) -> type:
    """The registered class of `algo` (KeyError if none). The package's modules are imported (scanned) once
    per process; later look-ups read the registry, which a test may extend by `algorithms.register`."""
    import algorithms

    cls = algorithms.REGISTRY.get(algo)
    if cls is None:
        _load_registry()
        cls = algorithms.REGISTRY[algo]
    return cls


@functools.cache
def _load_registry() -> None:
    import algorithms

    algorithms.load_all()


def resolve_config(algo: str, preset: str | None, pairs: list[str]):
    """The algorithm's config: defaults, then the named preset, then `key=value` pairs (all validated)."""
    cls = algorithm_class(algo)
    base = None
    if preset is not None:
        if preset not in cls.presets:
            have = ", ".join(sorted(cls.presets)) or "none"
            raise InvalidValue("preset", f"{preset!r}: {algo} has no such preset (its presets: {have})")
        base = dict(cls.presets[preset])
    return apply_overrides(cls.Config, pairs, base, base_name=f"{algo}'s preset {preset!r}")[0]


_VARIANT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.=+-x")
MAX_VARIANT = 64


def _value_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_value_text(v) for v in value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_name(config: Any, reference: Any) -> str | None:
    """`key=value` for each field where `config` differs from `reference`, joined by '+', sorted by key
    (e.g. `score_scale=10+num_score_samples=16`; widths as `64x64`); a short hash `cfg-1a2b3c4d` of
    those differences when that is longer than 64 characters or holds characters unsafe in a folder name."""
    ours, ref = dataclasses.asdict(config), dataclasses.asdict(reference)
    diff = {k: ours[k] for k in sorted(ours) if ours[k] != ref.get(k)}
    if not diff:
        return None
    text = "+".join(f"{k}={_value_text(v)}" for k, v in diff.items())
    if len(text) <= MAX_VARIANT and set(text) <= _VARIANT_CHARS:
        return text
    digest = hashlib.sha1(json.dumps(json_ready(diff), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"cfg-{digest}"


def upgrade_identity(stored: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """A stored identity with the config fields added to the algorithm since the run was stored filled in
    with their class defaults (not a preset's): a field's default keeps the behaviour the code had before the field existed
    (fields are added that way), so such a run is the same config and stays resumable. Where a change of
    defaults broke that rule, the algorithm's `revision` was raised; an identity stored without one is of
    revision 1, so a run of an older revision differs and is refused, not resumed with new behaviour."""
    stored = json_ready(stored)
    stored.setdefault("algo_revision", 1)  # stored before revisions were recorded: the first
    # the class's defaults, not the preset's: a field the run did not have behaved as its default then, even
    # where a preset now sets it (the bandit preset's critic_updates 4 is not what a run stored before it did)
    defaults = json_ready(dataclasses.asdict(algorithm_class(spec.algo).Config()))
    config = stored.get("algo_config")
    if isinstance(config, dict):
        stored["algo_config"] = {**{k: v for k, v in defaults.items() if k not in config}, **config}
    return stored


def json_ready(obj: Any) -> Any:
    """Tuples become lists, as JSON will make them, so identities compare equal after a round trip."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj
