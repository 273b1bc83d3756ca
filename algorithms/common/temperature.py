"""Temperature (alpha) helpers.

Two conventions appear among the algorithms:
- SAC's entropy temperature, tuned on the policy's own log-probabilities (Haarnoja et al. 2018b,
  Eq. 18): J(alpha) = E[-alpha (log pi(a|s) + H_target)], optimised through log alpha.
- The exploration-noise temperature of SDAC/DPMD/SOM (relax reference code): the entropy is the
  closed form entropy of the added Gaussian noise alpha * noise_scale * N(0, I), and log alpha
  takes an Adam step on -log_alpha * (H_target - H) every few hundred updates.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LogAlpha(nn.Module):
    """A learnable log-temperature; `alpha` is its exponential."""

    def __init__(self, init_alpha: float):
        super().__init__()
        if init_alpha <= 0:
            raise ValueError("init_alpha must be positive")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_alpha), dtype=torch.float32))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()


def sac_alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(alpha) = E[-log_alpha * sg(log pi + H_target)] (log-parameterised, as in SAC's reference code)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def gaussian_noise_entropy(alpha: torch.Tensor, noise_scale: float, act_dim: int) -> torch.Tensor:
    """Entropy of N(0, (noise_scale * alpha)^2 I_d): 0.5 d log(2 pi e (noise_scale alpha)^2)."""
    return 0.5 * act_dim * torch.log(2 * math.pi * math.e * (noise_scale * alpha) ** 2)


def noise_alpha_loss(log_alpha: torch.Tensor, entropy: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-log_alpha * sg(H_target - H): raises alpha when the noise entropy is below target."""
    return -(log_alpha * (target_entropy - entropy.detach()))
