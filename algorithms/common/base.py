"""The contract between the harness and an algorithm.

The harness (sombench.runner) only ever calls:

    algo = Cls(obs_dim, act_dim, config, device)
    algo.act(obs, deterministic) -> action in [-1, 1]^d      (numpy, one observation)
    algo.observe(obs, action, reward, next_obs, terminated)  (one transition, action in [-1, 1]^d)
    algo.train_step() -> dict of 0-d tensors | None          (once per env step after warm-up)
    algo.state_dict() / algo.load_state_dict(state)          (checkpoints)

`update(batch) -> metrics` is the algorithm's gradient step on one batch; off-policy algorithms get
`observe` and `train_step` for free from `OffPolicyAlgorithm` (replay buffer + uniform sampling).
Metrics are returned as detached tensors so the hot loop never waits on the device; the harness
reads them once per logging window.

Optional (`sombench bandit` only): `generate(obs, noise)`, `rollout(obs, noise)`, `samples_at(obs,
noise, times)`, `noise_std`, `q_value(obs, actions)`, `score_field(obs, a_t, t)`,
`diffusion_kernel(t)`; see "the generator alone" below.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from algorithms.common.buffer import Batch, ReplayBuffer


@dataclasses.dataclass
class OffPolicyConfig:
    """Settings shared by the off-policy algorithms, with the SOM paper's Table 3 values."""

    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Hidden widths of every MLP (Table 3: 3 x 256)."""
    batch_size: int = 256
    """Minibatch size per update (Table 3)."""
    gamma: float = 0.99
    """Discount factor (Table 3)."""
    tau: float = 0.005
    """Polyak rate of the target networks (Table 3)."""
    reward_scale: float = 0.2
    """Rewards are multiplied by this inside the critic target (Table 3); logged returns are raw."""
    buffer_size: int = 1_000_000
    """Replay capacity (Table 3)."""
    warmup_steps: int = 30_000
    """Env steps of uniform random actions before the first update (Table 3)."""


class Algorithm(ABC):
    """Base class of every registered algorithm."""

    name: ClassVar[str]
    """Registry name, used on the command line."""
    description: ClassVar[str]
    """One line for `sombench algos`."""
    Config: ClassVar[type]
    """The dataclass of this algorithm's paper defaults."""
    generation_steps: ClassVar[int | None] = None
    """T_d of the paper's Table 2: network evaluations to generate one action (None: not a generative policy)."""
    update_cycle: ClassVar[int] = 1
    """Updates after which the work pattern repeats (e.g. 2 for a policy delay of 2); latency averages over it."""

    def __init__(self, obs_dim: int, act_dim: int, config: Any, device: torch.device):
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.config = config
        self.device = torch.device(device)

    @property
    def particles(self) -> int:
        """N of the paper's Table 2: best-of-N candidates per action (the config's `num_particles`, else 1)."""
        return int(getattr(self.config, "num_particles", 1))

    @property
    def warmup_steps(self) -> int:
        """Env steps of uniform random actions before `train_step` is first called."""
        return int(getattr(self.config, "warmup_steps", 0))

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)

    @abstractmethod
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """An action in [-1, 1]^d for one observation; `deterministic` is the evaluation mode."""

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One training update on `batch`; returns detached scalar metrics."""

    @abstractmethod
    def observe(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        """Record one transition (action in [-1, 1]^d; `terminated` excludes truncation)."""

    @abstractmethod
    def train_step(self) -> dict[str, torch.Tensor] | None:
        """Called once per env step after warm-up; returns metrics or None if it did not train."""

    # -- optional: the generator alone (sombench bandit's figures and mode counts) ---------------
    # A generative policy maps input noise to an action. `sombench bandit` draws that map (arrow
    # plots), counts where fresh noise lands, and shows intermediate samples; it never looks inside
    # an algorithm, so an algorithm opts in by overriding `generate` (and, if its path from noise to
    # action has more than one step, `rollout` and `samples_at`). All tensors are on self.device;
    # callers run these under torch.no_grad().

    noise_std: float = 1.0
    """Standard deviation of the generator's input noise N(0, noise_std^2 I) in the [-1, 1] action units."""

    def generate(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One generation pass from `noise` [B, d] at states `obs` [B, o] to actions [B, d] in [-1, 1]^d:
        the generator alone (no best-of-N selection, no exploration noise). Default: not generative."""
        raise NotImplementedError(f"{type(self).__name__} does not implement generate(obs, noise)")

    def rollout(self, obs: torch.Tensor, noise: torch.Tensor) -> list[torch.Tensor]:
        """The generation path: [noise, intermediate samples ..., action]. Default: one step,
        [noise, generate(obs, noise)]; a K-step sampler returns its K + 1 points."""
        return [noise, self.generate(obs, noise)]

    def samples_at(self, obs: torch.Tensor, noise: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
        """The sample at each sampler time in `times` (1 = the noise, 0 = the action). Default: the
        rollout point nearest to t, reading the rollout's points as equally spaced from t = 1 to 0."""
        path = self.rollout(obs, noise)
        return [path[round((1.0 - t) * (len(path) - 1))] for t in times]

    def q_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The critic's value [B] of `actions` [B, d] at `obs` [B, o], for Q-landscape figures. Default:
        `self.critic.min_q` (the common twin critics'); NotImplementedError if there is none."""
        critic = getattr(self, "critic", None)
        if critic is None or not hasattr(critic, "min_q"):
            raise NotImplementedError(f"{type(self).__name__} has no critic with min_q")
        return critic.min_q(obs, actions)

    def score_field(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A score-based policy's estimate of grad_a log p_t(a_t | s) [B, d] at times t [B, 1], in the
        [-1, 1] units (needs autograd: do not call under no_grad). Default: none."""
        raise NotImplementedError(f"{type(self).__name__} has no score field")

    def diffusion_kernel(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, std) of the forward kernel a_t = scale * a_0 + std * eps that `score_field` smooths
        with, in the [-1, 1] units. Default: none."""
        raise NotImplementedError(f"{type(self).__name__} has no diffusion kernel")

    @classmethod
    def implements_generate(cls) -> bool:
        """Whether this algorithm overrides `generate` (else figures fall back to `act`)."""
        return cls.generate is not Algorithm.generate

    # -- checkpointing -------------------------------------------------------------------------
    # Every attribute that is a module, an optimizer, a replay buffer, a tensor or a plain number is
    # saved, so an algorithm's file never has to list its own state (and cannot forget any).
    _NOT_STATE = ("obs_dim", "act_dim", "device", "config")

    def _state_items(self):
        for key, value in vars(self).items():
            if key in self._NOT_STATE or key.startswith("__"):
                continue
            if isinstance(value, (nn.Module, torch.optim.Optimizer, ReplayBuffer)):
                yield key, "state_dict", value
            elif isinstance(value, torch.Tensor):
                yield key, "tensor", value
            elif isinstance(value, (bool, int, float)):
                yield key, "number", value

    def state_dict(self) -> dict[str, Any]:
        """Like torch's, it holds references to live tensors: serialise it (torch.save) before the
        algorithm trains on, or it changes underneath you."""
        state: dict[str, Any] = {}
        for key, kind, value in self._state_items():
            if kind == "state_dict":
                state[key] = value.state_dict()
            elif kind == "tensor":
                state[key] = value.detach().clone()
            else:
                state[key] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {key for key, _, _ in self._state_items()}
        if set(state) != expected:
            raise ValueError(f"checkpoint does not match {type(self).__name__}: keys differ by {sorted(expected ^ set(state))}")
        for key, kind, value in list(self._state_items()):
            if kind == "state_dict":
                value.load_state_dict(state[key])
            elif kind == "tensor":
                with torch.no_grad():
                    value.copy_(state[key])
            else:
                setattr(self, key, state[key])


class OffPolicyAlgorithm(Algorithm):
    """An algorithm trained from a uniform replay buffer, one update per env step after warm-up."""

    def __init__(self, obs_dim: int, act_dim: int, config: OffPolicyConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        self.buffer = ReplayBuffer(config.buffer_size, obs_dim, act_dim, self.device)

    def observe(self, obs, action, reward, next_obs, terminated) -> None:
        self.buffer.add(obs, action, reward, next_obs, terminated)

    def train_step(self) -> dict[str, torch.Tensor]:
        return self.update(self.buffer.sample(self.config.batch_size))


def adam(params, lr: float, device: torch.device, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for this device (CPU and CUDA in torch >= 2.4)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, **kwargs)
