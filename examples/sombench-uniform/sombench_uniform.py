"""A uniform random policy as a sombench algorithm: the smallest complete plug-in.

It acts uniformly in a centred fraction `scale` of the action box and never trains, which makes it a
lower reference row beside the shipped algorithms (`sombench table`). Everything an algorithm needs is
here: a name, a description, a Config dataclass of validated fields, `act`, `observe` and `train_step`.
Its draws come from torch's global generator, which the harness seeds per run and saves in every
checkpoint, so its runs are reproducible and resume exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from algorithms.common.base import Algorithm, Choice
from algorithms.common.config import AlgorithmConfig, Fraction, param


@dataclasses.dataclass
class UniformConfig(AlgorithmConfig):
    scale: float = param(1.0, Fraction(open_low=True))
    """Actions are uniform in [-scale, scale]^d of the canonical box [-1, 1]^d (1: the whole box)."""


class UniformRandom(Algorithm):
    name = "uniform-random"
    description = "uniform random actions (a lower reference; the README's plug-in example)"
    Config = UniformConfig

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Shape (act_dim,), in [-scale, scale]; the same law in evaluation (there is nothing to exploit)."""
        return ((torch.rand(self.act_dim) * 2 - 1) * self.config.scale).numpy().astype(np.float32)

    def observe(self, obs: np.ndarray, choice: Choice, reward: float, next_obs: np.ndarray, terminated: bool,
                truncated: bool) -> None:
        pass  # nothing is learnt, so nothing is stored

    def train_step(self) -> dict[str, torch.Tensor] | None:
        return None
