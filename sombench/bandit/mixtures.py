"""Isotropic Gaussian mixtures in closed form: density, sampling, and the exact score of the mixture
diffused by a Gaussian kernel a_t = scale * a0 + std * eps (SOM Appendix G):

    p_t(a) = sum_k w_k N(a; scale mu_k, (scale^2 sigma_k^2 + std^2) I),
    grad log p_t(a) = sum_k rho_k(a) (scale mu_k - a) / (scale^2 sigma_k^2 + std^2).

The eight-Gaussian bandit reward (SOM Appendix F.1) is such a mixture, so the score estimator and
the SOM velocity field can be checked against this exact score.
"""

from __future__ import annotations

import math

import torch


class GaussianMixture:
    def __init__(self, means: torch.Tensor, sigmas: torch.Tensor, weights: torch.Tensor):
        self.means = means.double()
        self.sigmas = sigmas.double()
        self.weights = (weights / weights.sum()).double()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _log_components(self, a: torch.Tensor, scale, std) -> tuple[torch.Tensor, torch.Tensor]:
        """log(w_k N(a; scale mu_k, var_k I)) [..., K] and var_k [..., K] for points a [..., d]."""
        a = a.double()
        scale = torch.as_tensor(scale, dtype=torch.float64)
        std = torch.as_tensor(std, dtype=torch.float64)
        var = scale.unsqueeze(-1) ** 2 * self.sigmas**2 + std.unsqueeze(-1) ** 2  # [..., K]
        diff = a.unsqueeze(-2) - scale.unsqueeze(-1).unsqueeze(-1) * self.means  # [..., K, d]
        log_n = -0.5 * (diff**2).sum(-1) / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.log(self.weights) + log_n, var

    def log_prob(self, a: torch.Tensor, scale=1.0, std=0.0) -> torch.Tensor:
        """log p_t(a) under the kernel (scale, std); (1, 0) gives the mixture itself."""
        scale = torch.full(a.shape[:-1], float(scale)) if not torch.is_tensor(scale) else scale.reshape(a.shape[:-1])
        std = torch.full(a.shape[:-1], float(std)) if not torch.is_tensor(std) else std.reshape(a.shape[:-1])
        return torch.logsumexp(self._log_components(a, scale, std)[0], dim=-1)

    def score(self, a: torch.Tensor, scale, std) -> torch.Tensor:
        """Exact grad_a log p_t(a), a [B, d], scale and std [B] or [B, 1]."""
        scale = torch.as_tensor(scale, dtype=torch.float64).reshape(a.shape[:-1])
        std = torch.as_tensor(std, dtype=torch.float64).reshape(a.shape[:-1])
        log_c, var = self._log_components(a, scale, std)
        rho = torch.softmax(log_c, dim=-1)  # [B, K]
        pull = (scale.unsqueeze(-1).unsqueeze(-1) * self.means - a.double().unsqueeze(-2)) / var.unsqueeze(-1)
        return (rho.unsqueeze(-1) * pull).sum(-2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn((n, self.dim), dtype=torch.float64, generator=generator)
        return self.means[k] + self.sigmas[k].unsqueeze(-1) * noise


def eight_gaussians() -> GaussianMixture:
    """SOM Appendix F.1: centres sqrt(2)(cos 2 pi i/8, sin 2 pi i/8), sigma 0.3, weights 2 (even i) and 1 (odd i).
    The four high modes (even i) are the cardinal points E, N, W, S at radius sqrt(2)."""
    angles = torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8
    means = math.sqrt(2) * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    weights = torch.tensor([2.0 if i % 2 == 0 else 1.0 for i in range(8)])
    return GaussianMixture(means, torch.full((8,), 0.3, dtype=torch.float64), weights)  # float64: sigma exactly 0.3


HIGH_MODES = {"E": (math.sqrt(2), 0.0), "N": (0.0, math.sqrt(2)), "W": (-math.sqrt(2), 0.0), "S": (0.0, -math.sqrt(2))}


def mode_counts(points: torch.Tensor, radius: float = 0.5) -> dict[str, int]:
    """How many points lie within `radius` of each high mode (SOM Appendix H.3), keyed N/E/S/W."""
    pts = points.double()
    return {name: int(((pts - torch.tensor(c, dtype=torch.float64)).norm(dim=-1) <= radius).sum()) for name, c in HIGH_MODES.items()}


def eight_gaussians_reward(a: torch.Tensor, mixture: GaussianMixture | None = None) -> torch.Tensor:
    """The mixture density normalised by its maximum (attained at the high-mode centres), in [0, 1]."""
    mixture = mixture or eight_gaussians()
    peak = mixture.log_prob(mixture.means[:1]).exp()
    return (mixture.log_prob(a).exp() / peak).to(a.dtype)
