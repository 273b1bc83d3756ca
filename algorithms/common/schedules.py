"""Forward noising processes for score-based policies: the VP-SDE (SOM Section 3.2, Eq. 1) and the
VE-SDE (SOM Appendix B, Eq. 9-10). Time t in [0, 1]: t = 0 is the action, t = 1 is noise.

Each schedule gives
- `perturb(a0, eps, t)`: a sample of the forward kernel p_t(a_t | a0);
- `proposal(a_t, t)`: mean and std of the Gaussian proposal for a0 given a_t used by the
  Monte Carlo score (SOM Eq. 5; iDEM under VE), i.e. the kernel read as a density in a0;
- `pf_ode_drift(a_t, score, t)`: the probability-flow ODE velocity da_t/dt (SOM Eq. 2)
  f(t) a_t - 0.5 g(t)^2 score, in forward time.
"""

from __future__ import annotations

import math

import torch


class VPSchedule:
    """beta(t) = beta_min + t (beta_max - beta_min) (the standard linear VP schedule of Song et al.
    2021, 0.1 -> 20; the SOM paper does not give its values); abar(t) = exp(-int_0^t beta)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min, self.beta_max = beta_min, beta_max

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def abar(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2))

    def perturb(self, a0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.abar(t)
        return abar.sqrt() * a0 + (1 - abar).sqrt() * eps

    def proposal(self, a_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N(a_t / sqrt(abar), (1 - abar) / abar): SOM Eq. 5's proposal for a_{0|t}."""
        abar = self.abar(t)
        return a_t / abar.sqrt(), ((1 - abar) / abar).sqrt()

    def pf_ode_drift(self, a_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """-0.5 beta(t) (a_t + score): SOM Eq. 6 with f = -beta/2, g^2 = beta."""
        return -0.5 * self.beta(t) * (a_t + score)

    def marginal_kernel(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, std) with a_t = scale * a0 + std * eps (for analytic scores in tests and figures)."""
        abar = self.abar(t)
        return abar.sqrt(), (1 - abar).sqrt()


class VESchedule:
    """sigma(t) = sigma_min (sigma_max / sigma_min)^t, the geometric schedule of Song et al. 2021 and
    iDEM (the SOM paper does not give its values); a_t = a0 + sigma(t) eps (Eq. 10)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 1.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._log_ratio = math.log(sigma_max / sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def dsigma2_dt(self, t: torch.Tensor) -> torch.Tensor:
        return 2 * self.sigma(t) ** 2 * self._log_ratio

    def perturb(self, a0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return a0 + self.sigma(t) * eps

    def proposal(self, a_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N(a_t, sigma(t)^2): iDEM's proposal (SOM Eq. 4)."""
        return a_t, self.sigma(t)

    def pf_ode_drift(self, a_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """-0.5 d(sigma^2)/dt * score (Appendix B.2)."""
        return -0.5 * self.dsigma2_dt(t) * score

    def marginal_kernel(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones_like(t), self.sigma(t)
