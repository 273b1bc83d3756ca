"""The contract between the harness and an algorithm.

The harness (sombench.train.trainer) only ever calls:

    algo = Cls(obs_dim, act_dim, config, device)
    algo.act(obs, deterministic) -> action in [-1, 1]^d                 (numpy, one observation)
    algo.explore(obs) -> Choice(action, record)                         (the training loop's action)
    algo.observe(obs, choice, reward, next_obs, terminated, truncated)  (one transition)
    algo.explore_batch(obs [N, o]) / algo.observe_batch(...)            (N envs at once: `num_envs`)
    algo.train_step() -> dict of 0-d tensors | None                     (`updates_after(t)` times per env step)
    algo.state_dict() / algo.load_state_dict(state)                     (checkpoints)

`act` is the policy alone (evaluation with `deterministic`, latency, the bandit's samples): it keeps
nothing between calls. The training loop acts with `explore`, which returns a `Choice`: the action
and an opaque `record` of how it was chosen, and hands that same `Choice` back to `observe` (with its
action clipped to [-1, 1], which changes nothing for an action already in the box). By default
`explore` is `act(obs, deterministic=False)` with no record; PPO records its unclipped Gaussian
sample, whose log-probability its ratio needs. During warm-up the harness draws uniform actions
itself and observes `Choice(action)` (record None), so `observe` must accept a Choice it did not
make. No algorithm keeps the last action to match it back against what `observe` receives.

`terminated` is a true terminal state (no bootstrapping); `truncated` is the time limit's cut (the
value bootstraps through it; on-policy methods need it to close an episode for GAE). Off-policy
algorithms get `observe` and `train_step` from `OffPolicyAlgorithm` (replay buffer, uniform
sampling, `update(batch) -> metrics`). Metrics are detached tensors so the hot loop never waits on
the device; the harness reads them once per logging window.

What a checkpoint holds is explicit: every module, optimizer and replay buffer attribute (their own
`state_dict`), plus the attributes each class names in `state_attributes` (counters and the tensors
it updates while training). Everything else is derived from the config in `__init__` and recomputed
on resume, never restored (SAC's and SOM's `target_entropy`, SOM's `w` and `prior_std`).

Table 2's metadata is typed class data: `generation_steps` (T_d), `update_cycle`, and the `particles`
property (N). Optional capabilities are mixins in algorithms/common/capabilities.py that the harness
tests with isinstance: `Generator` (the generator alone, for the bandit figures), `ScoreField`, and
`QValued` (a critic's value of an action; every `OffPolicyAlgorithm` is one).
"""

from __future__ import annotations

import fractions
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from algorithms.common.buffer import Batch, ReplayBuffer
from algorithms.common.capabilities import QValued
from algorithms.common.config import AlgorithmConfig, ConfigError, OffPolicyConfig


class Choice(NamedTuple):
    """An action of the training loop and the record `observe` receives back with it."""

    action: np.ndarray
    """The action in [-1, 1]^d, shape [act_dim] (float32): what the env receives, after its affine map."""
    record: Any = None
    """Opaque to the harness: what the algorithm needs in `observe` about how it chose `action` (PPO: the
    unclipped sample, shape [act_dim]); None when the algorithm did not choose it (warm-up's uniform actions)."""


class Algorithm(ABC):
    """Base class of every registered algorithm."""

    name: ClassVar[str]
    """Registry name, used on the command line."""
    description: ClassVar[str]
    """One line for `sombench algos`."""
    Config: ClassVar[type[AlgorithmConfig]]
    """The dataclass of this algorithm's paper defaults (algorithms/common/config.py)."""
    generation_steps: ClassVar[int | None] = None
    """T_d of the paper's Table 2: network evaluations to generate one action (None: not a generative policy)."""
    update_cycle: ClassVar[int] = 1
    """Updates after which the work pattern repeats (e.g. 2 for a policy delay of 2); latency averages over it."""
    budget_factor: ClassVar[dict[str, int]] = {}
    """Env id -> multiple of the env's paper budget this algorithm trains for (the SOM paper trains PPO
    5x longer on three tasks); `sombench run` defaults to it and `sombench table` compares at it."""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    """Named config values for a setting other than the paper's MuJoCo runs (e.g. "bandit", which
    `sombench bandit` applies before the user's --set); each key must be a field of `Config`, each value
    in its domain (both checked), and the reason for each value is written beside it."""

    state_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes a checkpoint holds beyond the modules, optimizers and replay buffer (which are always
    saved): counters (bool, int, float) and tensors the algorithm changes while training. A class names
    only its own; those of its base classes are added (`checkpointed_attributes`). An attribute not named
    is derived from the config in `__init__` and recomputed on resume. Naming one of another type (None,
    a tuple, an array) makes `state_dict` raise TypeError."""

    revision: ClassVar[int] = 1
    """The behaviour's revision: raised when a default changes what the algorithm does (issue 25 moved SDAC's,
    DPMD's, QSM's, QVPO's and DIPO's defaults to their reference code's: 2). A run records it in its identity,
    and a run stored under another revision is refused rather than resumed with new behaviour (fields added
    since a run was stored are otherwise filled with their current defaults)."""
    compiled_methods: ClassVar[tuple[str, ...]] = ()
    """The methods holding this algorithm's tensor work (act and update paths) that `compile` wraps with
    torch.compile: tensors and Python flags in, no Python counters read or written, no host syncs."""

    def __init__(self, obs_dim: int, act_dim: int, config: Any, device: torch.device):
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.config = config
        self.device = torch.device(device)
        self.run_steps: int | None = None
        """The run's length in env steps, which the harness sets before the first step (`--steps`); None
        outside a run (latency, unit tests). Schedules that span a run read it (QVPO's entropy decay)."""

    @property
    def particles(self) -> int:
        """N of the paper's Table 2: candidates drawn per action (1 unless best-of-N acting says otherwise)."""
        return 1

    @property
    def warmup_steps(self) -> int:
        """Env steps of uniform random actions before `train_step` is first called (none by default)."""
        return 0

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)

    def compile(self, warn=None) -> list[str]:
        """torch.compile this instance's `compiled_methods` (algorithms/common/compile.py); returns the names
        compiled, [] when the device cannot compile (after one warning). Eager results are unchanged."""
        from algorithms.common.compile import compile_methods, warn_once

        compiled, _ = compile_methods(self, self.compiled_methods, self.device, warn or warn_once)
        return compiled

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The acting path on tensors: observations [B, o] -> actions [B, d] in [-1, 1]^d (`deterministic` is the
        evaluation mode); `--compile` compiles it. An algorithm implements this, or `act` alone (then acting on
        a batch calls `act` once per observation)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither act_step nor act")

    def _acts_on_batches(self) -> bool:
        return type(self).act_step is not Algorithm.act_step

    @torch.inference_mode()
    def act_batch(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions [N, d] in [-1, 1]^d for observations [N, o]: one `act_step` call on the batch (one forward
        pass; best-of-K acting draws N x K candidates at once, a reverse process runs on N samples at once).
        With N = 1 it draws exactly what `act` draws."""
        obs = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if not self._acts_on_batches():
            return np.stack([self.act(o, deterministic) for o in obs])
        return self.act_step(torch.as_tensor(obs, device=self.device), deterministic).cpu().numpy()

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """An action [d] in [-1, 1]^d for one observation [o]; `deterministic` is the evaluation mode."""
        if not self._acts_on_batches():
            raise NotImplementedError(f"{type(self).__name__} implements neither act_step nor act")
        return self.act_batch(np.asarray(obs, dtype=np.float32).reshape(1, -1), deterministic)[0]

    def explore(self, obs: np.ndarray) -> Choice:
        """The training loop's action for one observation, with the record `observe` gets back (by
        default `act(obs, deterministic=False)`, no record: the same draws as that call)."""
        return Choice(self.act(obs, deterministic=False))

    def explore_batch(self, obs: np.ndarray) -> list[Choice]:
        """The training loop's actions for N envs' observations [N, o], one Choice per env. By default one
        `act_batch` call (one batched forward pass), no records; an algorithm that overrides `explore` alone
        gets `explore` once per observation. With N = 1 it draws exactly what `explore(obs[0])` draws."""
        if type(self).explore is not Algorithm.explore:
            return [self.explore(o) for o in obs]
        return [Choice(a) for a in self.act_batch(obs, deterministic=False)]

    @abstractmethod
    def observe(self, obs: np.ndarray, choice: Choice, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool) -> None:
        """Record one transition: `choice` is what `explore` returned, its action clipped to [-1, 1]^d (or
        a warm-up action with record None); `terminated` excludes truncation."""

    def observe_batch(self, obs: np.ndarray, choices: list[Choice], rewards: np.ndarray, next_obs: np.ndarray,
                      terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Record one vector step: N transitions, one per env (obs and next_obs [N, o], the rest [N]), in env
        order; `next_obs` row k is env k's own next observation, its final one when the env's episode ended
        (never the reset's). By default `observe` once per env."""
        for k in range(len(choices)):
            self.observe(obs[k], choices[k], float(rewards[k]), next_obs[k], bool(terminated[k]), bool(truncated[k]))

    @abstractmethod
    def train_step(self) -> dict[str, torch.Tensor] | None:
        """Called `updates_after(t)` times after the t-th env step past warm-up (once by default); returns
        metrics or None if it did not train."""

    def updates_after(self, trained_steps: int) -> int:
        """How many times the harness calls `train_step` after the env step that is the `trained_steps`-th
        (1-based) past warm-up: 1 (an on-policy algorithm decides in `train_step` when its rollout is full)."""
        return 1

    # -- checkpointing -------------------------------------------------------------------------
    _SAVED_WHOLE = (nn.Module, torch.optim.Optimizer, ReplayBuffer)
    """Attribute types saved through their own state_dict without being named in `state_attributes`."""

    @classmethod
    def checkpointed_attributes(cls) -> tuple[str, ...]:
        """The `state_attributes` of this class and its bases, bases first, each name once."""
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            names.update(dict.fromkeys(vars(klass).get("state_attributes", ())))
        return tuple(names)

    def _state_items(self):
        """(name, kind, value) of what a checkpoint holds: 'state_dict' for every module, optimizer and
        replay buffer attribute, then 'tensor' or 'number' for each checkpointed attribute."""
        for key, value in vars(self).items():
            if isinstance(value, self._SAVED_WHOLE):
                yield key, "state_dict", value
        for key in self.checkpointed_attributes():
            if not hasattr(self, key):
                raise AttributeError(f"{type(self).__name__}.state_attributes names {key!r}, which the instance does not have")
            value = getattr(self, key)
            if isinstance(value, self._SAVED_WHOLE):
                continue  # saved above, whole
            if isinstance(value, torch.Tensor):
                yield key, "tensor", value
            elif isinstance(value, (bool, int, float)):
                yield key, "number", value
            else:
                raise TypeError(f"{type(self).__name__}.{key} is a {type(value).__name__}: a checkpoint holds tensors, "
                                "bool, int and float attributes (recompute anything else from the config in __init__)")

    def state_dict(self) -> dict[str, Any]:
        """Like torch's, it holds references to live tensors (the replay buffer's rows included): serialise
        it (torch.save) before the algorithm trains on, or it changes underneath you."""
        state: dict[str, Any] = {}
        for key, kind, value in self._state_items():
            if kind == "state_dict":
                state[key] = value.state_dict()
            elif kind == "tensor":
                state[key] = value.detach()
            else:
                state[key] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved: tensors are copied into the live ones (keeping their device and
        identity), optimizers given copies, numbers set; nothing keeps a tensor of `state` (a checkpoint's
        may be views of the mapped file: sombench.runs.checkpoint.load). Checkpoints written before the
        lists were explicit also hold numbers now derived from the config (SOM's `w`): they are checked
        equal to the recomputed value, not restored."""
        items = list(self._state_items())
        expected = {key for key, _, _ in items}
        stale = {key for key in set(state) - expected if self._is_recomputed(key, state[key])}
        if set(state) - stale != expected:
            raise ValueError(f"checkpoint does not match {type(self).__name__}: keys differ by "
                             f"{sorted(expected ^ (set(state) - stale))}")
        for key, kind, value in items:
            if isinstance(value, torch.optim.Optimizer):
                value.load_state_dict(_owned(state[key]))  # an optimizer keeps the tensors it is given
            elif kind == "state_dict":
                value.load_state_dict(state[key])
            elif kind == "tensor":
                with torch.no_grad():
                    value.copy_(state[key])
            else:
                setattr(self, key, state[key])

    def _is_recomputed(self, key: str, stored: Any) -> bool:
        """Whether `stored` is an older checkpoint's copy of a derived number: ValueError if it differs
        from the value this instance computed from the same config."""
        if not isinstance(stored, (bool, int, float)) or not isinstance(vars(self).get(key), (bool, int, float)):
            return False
        if stored != getattr(self, key):
            raise ValueError(f"checkpoint's {type(self).__name__}.{key} = {stored!r}, but the config gives {getattr(self, key)!r}")
        return True


class OffPolicyAlgorithm(Algorithm, QValued):
    """An algorithm trained from a uniform replay buffer, one update per env step after warm-up.

    Its critic is `self.critic`, a twin critic of algorithms/common/critics.py (`min_q(obs, a)`)."""

    critic: nn.Module
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # The critic settings every off-policy algorithm's bandit runs share (issue 28: equal terms), each
        # measured on fresh critics fitted to uniform bandit data, for both critic classes (docs/som-notes.md
        # section 14) and, for SOM and DACER, in the online loop (sections 9, 11, 12). An algorithm's own
        # bandit preset adds only what is its own.
        "bandit": {
            "warmup_steps": 500,  # the MuJoCo warm-ups (3e4, 1e5) exceed a whole bandit run; 500 uniform
            # actions already cover the box
            "critic_action_scale": 2.5,  # the critic sees the bandit's own units (the box [-2.5, 2.5]^2): in
            # [-1, 1] units the 0.12-wide modes come out as one hump (section 9: 0 of 4 peaks on uniform data
            # for the distributional critic, 4 of 4 at x2.5; section 11: DACER's early hump at the origin)
            "critic_lr": 1e-3,  # Table 3's rates (1e-4, 3e-4) are set for millions of updates; a bandit run
            # makes a few thousand (section 9: lr 1e-3 and x2.5 together give corr(Q, r) 0.91 against 0.69)
            "critic_updates": 4,  # the fit budget decides the peak heights, and the generator follows the
            # heights (section 12: one step per env step leaves the least-visited mode's peak at half the
            # true 0.2; four bring all four within 3%)
        },
    }

    def __init__(self, obs_dim: int, act_dim: int, config: OffPolicyConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        if config.critic_updates > 1 and type(self).critic_step is OffPolicyAlgorithm.critic_step:
            raise ConfigError(f"critic_updates must be 1 for {self.name}: it has no critic_step (set critic_updates=1)")
        self.buffer = ReplayBuffer(config.buffer_size, obs_dim, act_dim, self.device)
        ratio = fractions.Fraction(str(config.updates_per_step)).limit_denominator(10**6)
        self.update_ratio = (ratio.numerator, ratio.denominator)
        """R = updates_per_step as (numerator, denominator), the decimal it is written as."""

    @property
    def warmup_steps(self) -> int:
        return int(self.config.warmup_steps)

    def observe(self, obs, choice, reward, next_obs, terminated, truncated) -> None:
        self.buffer.add(obs, choice.action, reward, next_obs, terminated)  # truncation bootstraps: not stored

    def train_step(self) -> dict[str, torch.Tensor]:
        self.extra_critic_steps()
        return self.update(self.buffer.sample(self.config.batch_size))

    def extra_critic_steps(self) -> None:
        """`critic_updates` - 1 critic-only steps (`critic_step`), each on a fresh batch; nothing when it is 1
        (no batch is drawn, so the random streams are those of a run without the field)."""
        for _ in range(self.config.critic_updates - 1):
            self.critic_step(self.buffer.sample(self.config.batch_size))

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One step of the critic alone, as the critic's part of `update` makes it (its next actions, its
        target, its loss, one optimizer step), without the actor, temperature or target networks: what
        `critic_updates` > 1 adds before each update. An algorithm that cannot separate it leaves this
        unimplemented and refuses critic_updates > 1 (a ConfigError when built)."""
        raise NotImplementedError(f"{type(self).__name__} has no critic_step, so critic_updates must be 1")

    def updates_after(self, trained_steps: int) -> int:
        """floor(R t) - floor(R (t - 1)) for R = `updates_per_step` as an exact fraction (config.py): the
        updates made by env step t are floor(R t), so the ratio is exact over the run and depends on t alone."""
        num, den = self.update_ratio
        return num * trained_steps // den - num * (trained_steps - 1) // den

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One training update on `batch`; returns detached scalar metrics."""

    def q_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.critic.min_q(obs, actions)


def _owned(obj: Any) -> Any:
    """`obj` (nested dicts, lists and tuples) with every tensor replaced by a copy of it."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _owned(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_owned(v) for v in obj)
    return obj


def adam(params, lr: float, device: torch.device, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for this device (CPU and CUDA in torch >= 2.4)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, **kwargs)
