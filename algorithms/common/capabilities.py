"""Optional capabilities of an algorithm, as mixins the harness recognises with isinstance.

`sombench bandit` draws a generative policy's map from noise to action (arrow plots), counts where
fresh noise lands, shows intermediate samples, the critic's landscape and a score field. It never
looks inside an algorithm: an algorithm opts in by inheriting the mixin and implementing its
abstract methods. All tensors are on the algorithm's device; callers run these under
torch.no_grad() (except `score_field`, which needs autograd).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch


class Generator(ABC):
    """A generative policy: input noise N(0, noise_std^2 I) -> an action in [-1, 1]^d."""

    noise_std: float = 1.0
    """Standard deviation of the generator's input noise, in the [-1, 1] action units."""

    @abstractmethod
    def generate(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One generation pass from `noise` [B, d] (drawn here when None) at states `obs` [B, o] to actions
        [B, d] in [-1, 1]^d: the generator alone (no best-of-N selection, no exploration noise)."""

    def rollout(self, obs: torch.Tensor, noise: torch.Tensor) -> list[torch.Tensor]:
        """The generation path [noise, intermediate samples ..., action]. Default: one step."""
        return [noise, self.generate(obs, noise)]

    def samples_at(self, obs: torch.Tensor, noise: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
        """The sample at each sampler time in `times` (1 = the noise, 0 = the action). Default: the
        rollout point nearest to t, reading the rollout's points as equally spaced from t = 1 to 0."""
        path = self.rollout(obs, noise)
        return [path[round((1.0 - t) * (len(path) - 1))] for t in times]


class ScoreField(ABC):
    """A score-based policy: an estimate of grad_a log p_t(a_t | s) and the kernel it smooths with."""

    @abstractmethod
    def score_field(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The score [B, d] at noisy actions a_t [B, d] and times t [B, 1], in the [-1, 1] units."""

    @abstractmethod
    def diffusion_kernel(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, std) of the forward kernel a_t = scale * a_0 + std * eps, in the [-1, 1] units."""


class QValued(ABC):
    """An algorithm with an action-value critic."""

    @abstractmethod
    def q_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The critic's value [B] of `actions` [B, d] at `obs` [B, o] (for twin critics, min(Q1, Q2))."""


@dataclasses.dataclass
class UpdatePhase:
    """One part of an update, runnable on its own, for `sombench latency --breakdown`."""

    name: str
    run: Callable[[], Any]
    """Runs this part once, on the algorithm itself (it may step optimizers, as the update does)."""
    products: list[tuple[int, int, int, int]]
    """(groups, M, K, N) of the matrix products of its network evaluations (algorithms/common/nets.py
    `matmul_shapes`): the floor its time is compared against."""
    parent: str | None = None
    """The phase this one is part of (shown indented, not added to the sum)."""
    per_update: float = 1.0
    """How often it runs per update (1/2 for a step taken every second update)."""


class Profiled(ABC):
    """An algorithm whose update `sombench latency --breakdown` can time part by part, and whose acting
    it can compare with the bare network calls acting is made of."""

    @abstractmethod
    def update_breakdown(self, batch) -> list[UpdatePhase]:
        """The parts of one update on `batch` (top-level parts add up to the update)."""

    @abstractmethod
    def bare_forwards(self, batch: int) -> dict[str, Callable[[], torch.Tensor]]:
        """The network calls of one acting call, bare, at the acting batch `batch`: name -> call."""
