"""Algorithm configs: the fields every algorithm shares, declared once, and each field's domain.

A config is a dataclass of an algorithm's paper defaults. Every field declares the set of values it
accepts (its *domain*) with `param(default, domain)`; a subclass that only changes a default may
redeclare the field plainly (`activation: str = "mish"`) and inherits the domain from its base. A
config checks every field when it is built (`__post_init__`), so a bad value can never reach an
algorithm: the harness turns the error into one line and exit code 2 before it writes anything.
Cross-field rules go in a config class's own `check()`; every class's `check` runs.

    @dataclasses.dataclass
    class MyConfig(OffPolicyConfig):
        activation: str = "mish"                      # domain inherited: one of the activations
        num_steps: int = param(20, Positive(int))
        \"\"\"Why 20 (which table or reference).\"\"\"

Domains also name a few values outside themselves (`bad_examples`), which the tests feed through
the CLI for every field of every registered algorithm.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional


class ConfigError(ValueError):
    """A config value outside its field's domain (one line, naming the field and the domain)."""


# -- domains ------------------------------------------------------------------------------------
class Domain:
    """A set of accepted values. `problem(value)` is None if accepted, else why not (a short phrase)."""

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def bad_examples(self) -> list[str]:
        """Values, as a user would type them after `--set key=`, that this domain refuses."""
        return []


def _number(value: Any, kind: type) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {value!r}"
    if kind is int and not isinstance(value, int):
        return f"expected an integer, got {value!r}"
    if not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    return None


@dataclasses.dataclass(frozen=True)
class Interval(Domain):
    """Finite numbers in an interval; `lo`/`hi` None = unbounded, `lo_open`/`hi_open` exclude the end."""

    kind: type = float
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def problem(self, value: Any) -> str | None:
        bad = _number(value, self.kind)
        if bad:
            return bad
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return f"must be {self.describe()}, got {value!r}"
        if self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)):
            return f"must be {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{what} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{what} {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{what} {'<' if self.hi_open else '<='} {self.hi:g}"
        return f"a finite {what.split()[-1]}"

    def bad_examples(self) -> list[str]:
        out = ["abc"] + (["nan", "inf"] if self.kind is float else ["1.5"])
        if self.lo is not None:
            out.append(f"{self.lo:g}" if self.lo_open else f"{self.lo - (1 if self.kind is int else max(abs(self.lo), 1) * 0.5):g}")
        if self.hi is not None:
            out.append(f"{self.hi:g}" if self.hi_open else f"{self.hi + (1 if self.kind is int else max(abs(self.hi), 1) * 0.5):g}")
        return out


def Positive(kind: type = float) -> Interval:  # noqa: N802 (reads as a set's name)
    """> 0 (an integer >= 1 for int)."""
    return Interval(kind, lo=1, lo_open=False) if kind is int else Interval(kind, lo=0.0, lo_open=True)


def NonNegative(kind: type = float) -> Interval:  # noqa: N802
    return Interval(kind, lo=0)


def Fraction(open_low: bool = False, open_high: bool = False) -> Interval:  # noqa: N802
    """A number in [0, 1] (ends optionally open)."""
    return Interval(float, lo=0.0, hi=1.0, lo_open=open_low, hi_open=open_high)


def Finite() -> Interval:  # noqa: N802
    return Interval(float)


@dataclasses.dataclass(frozen=True)
class OneOf(Domain):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}"

    def bad_examples(self) -> list[str]:
        return ["xyz"]


@dataclasses.dataclass(frozen=True)
class Widths(Domain):
    """Hidden-layer widths: a non-empty tuple of positive integers."""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, tuple) or not value:
            return f"must be one or more positive integers (e.g. 256,256), got {value!r}"
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            return f"every width must be a positive integer, got {value!r}"
        return None

    def describe(self) -> str:
        return "one or more positive integers, comma-separated"

    def bad_examples(self) -> list[str]:
        return ["-3,0", "0", "", "256,abc"]


@dataclasses.dataclass(frozen=True)
class OptionalOf(Domain):
    """None (typed `none`) or a value of `inner`."""

    inner: Domain

    def problem(self, value: Any) -> str | None:
        return None if value is None else self.inner.problem(value)

    def describe(self) -> str:
        return f"none or {self.inner.describe()}"

    def bad_examples(self) -> list[str]:
        return [v for v in self.inner.bad_examples() if v.lower() != "none"]


@dataclasses.dataclass(frozen=True)
class Boolean(Domain):
    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"

    def describe(self) -> str:
        return "true or false"

    def bad_examples(self) -> list[str]:
        return ["maybe", "2"]


ACTIVATIONS = ("relu", "gelu", "mish", "tanh", "silu", "elu")
"""Names `algorithms.common.nets.activation` knows."""


def param(default: Any, domain: Domain) -> Any:
    """A config field with its default and domain (a dataclass field carrying the domain)."""
    return dataclasses.field(default=default, metadata={"domain": domain})


def field_domain(config_cls: type, name: str) -> Domain | None:
    """The domain of field `name`: from its own declaration or, if redeclared plainly, the nearest base's."""
    for klass in config_cls.__mro__:
        fields = getattr(klass, "__dataclass_fields__", {})
        if name in fields and "domain" in fields[name].metadata:
            return fields[name].metadata["domain"]
    return None


class Validated:
    """Mixin of every config dataclass: check each field against its domain, then `check()`."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            domain = field_domain(type(self), f.name)
            if domain is None:
                raise TypeError(f"{type(self).__name__}.{f.name} declares no domain; use param(default, domain)")
            bad = domain.problem(getattr(self, f.name))
            if bad:
                raise ConfigError(f"{f.name} {bad}")
        for klass in reversed(type(self).__mro__):  # every class's own rules, mixins included
            own = klass.__dict__.get("check")
            if own is not None:
                own(self)

    def check(self) -> None:
        """Rules across fields (raise ConfigError). Each config class's own `check` runs (bases first);
        do not call super().check()."""


# -- the shared fields --------------------------------------------------------------------------
@dataclasses.dataclass
class AlgorithmConfig(Validated):
    """Fields every algorithm has, with the SOM paper's Table 3 values (PPO overrides per Table 4)."""

    hidden_sizes: tuple[int, ...] = param((256, 256, 256), Widths())
    """Hidden widths of every MLP (Table 3: 3 x 256)."""
    activation: str = param("gelu", OneOf(ACTIVATIONS))
    """Hidden activation of every network (Table 3: GELU for SAC, SOM, MFP; Mish for the diffusion policies)."""
    actor_lr: float = param(3e-4, NonNegative())
    """Actor Adam learning rate (0 freezes the actor: the learning tests' control)."""
    critic_lr: float = param(3e-4, NonNegative())
    """Critic Adam learning rate."""
    gamma: float = param(0.99, Fraction(open_high=True))
    """Discount factor (Table 3), in [0, 1)."""
    reward_scale: float = param(0.2, Positive())
    """Rewards are multiplied by this inside the critic target (Table 3); logged returns are raw."""
    num_envs: int = param(1, Interval(int, lo=1, hi=4096))
    """N, the training envs stepped together (`--num-envs`): one vector step is N env steps, the policy acts
    on the N observations in one batched call, and every budget (`--steps`, warm-up, evaluation, the update
    ratio) counts env steps, not vector steps. 1 is the SB3 / CleanRL convention and sombench's default (the
    SOM paper does not state its number); relax, the code behind the SDAC and DPMD curves, steps 5
    (`scripts/train_mujoco.py`). Env k of a run is reset first with the run's seed for k = 0 and with
    SeedSequence([seed, k]) for k >= 1 (sombench.envs.vector_seeds), so N = 1 is the single-env run. At most 4,096
    (sombench.app.common.MAX_ENVS: each env is a simulator in memory, each async one a process)."""


@dataclasses.dataclass
class OffPolicyConfig(AlgorithmConfig):
    """Fields of the replay-buffer algorithms (Table 3)."""

    batch_size: int = param(256, Positive(int))
    """Minibatch size per update (Table 3)."""
    tau: float = param(0.005, Fraction(open_low=True))
    """Polyak rate of the target networks (Table 3), in (0, 1]."""
    buffer_size: int = param(1_000_000, Positive(int))
    """Replay capacity (Table 3)."""
    warmup_steps: int = param(30_000, NonNegative(int))
    """Env steps of uniform random actions before the first update (Table 3)."""
    updates_per_step: float = param(1.0, Positive())
    """R, the update-to-data ratio: updates per env step after warm-up (`--updates-per-step`). 1 is the
    SB3 / CleanRL convention and sombench's default; the SOM paper does not state its ratio. relax (the code
    behind the SDAC and DPMD curves, and SOM's alpha machinery) steps 5 envs and updates once per iteration,
    so R = 0.2 there (its `scripts/train_mujoco.py`). R is read as the decimal it is written as (0.2 = 1/5)
    and the env step that is the t-th after warm-up is followed by floor(R t) - floor(R (t - 1)) updates
    (`Algorithm.updates_after`): exactly R over the run, the same on every resume."""
    critic_updates: int = param(1, Positive(int))
    """Critic steps per update: `train_step` makes critic_updates - 1 critic-only steps (`critic_step`), each
    on its own batch, before the algorithm's `update` (critic, actor, targets, temperature: those stay once
    per update). 1 is every paper's and reference's setting and the default. The bandit preset makes 4: a
    critic's fit budget decides there which modes it resolves (docs/som-notes.md sections 9, 12 and 14). The
    extra steps are not in `update`, so `sombench latency` and the cost projection (which time one `update`)
    leave them out; not compiled."""
    critic_action_scale: float = param(1.0, Positive())
    """The critic sees actions multiplied by this (1: the [-1, 1] box as is, every paper's setting). A small
    MLP fits functions that vary on the scale of its inputs; reward features much narrower than the box (the
    eight-Gaussian bandit's 0.12-wide modes in [-1, 1] units) come out flat unless the input is stretched.
    The bandit preset stretches by 2.5, back to the bandit's own units (docs/som-notes.md sections 9 and 14)."""


@dataclasses.dataclass
class TemperatureConfig(Validated):
    """A learned temperature alpha (SAC's entropy weight; the noise scale of SOM, DACER and SDAC)."""

    alpha_lr: float = param(3e-4, NonNegative())
    """Temperature Adam learning rate."""
    init_alpha: float = param(1.0, Positive())
    """Initial alpha."""
    target_entropy_scale: float = param(-1.0, Finite())
    """Target entropy = scale * dim(A)."""


@dataclasses.dataclass
class BestOfNConfig(Validated):
    """Acting by best-of-N over the twin critic (algorithms/common/best_of_n.py)."""

    num_particles: int = param(32, Positive(int))
    """N: candidates per action, of which the one with the highest min(Q1, Q2) is kept (Table 3)."""
    eval_particles: Optional[int] = param(None, OptionalOf(Positive(int)))
    """N at evaluation; None = num_particles (evaluate as it acts). 1 scores the generator alone."""
