"""MeanFlow (Geng et al.): the average-velocity identity and its training target.

Convention (MeanFlow's, kept by SOM): time runs from the action (t = 0) to noise (t = 1);
u(z, r, t) is the average of the forward-time velocity v over [r, t], so z_r = z_t - (t - r) u and a
one-step sample is a = eps - u(eps, 0, 1). The MeanFlow identity u = v - (t - r) du/dt, with the
total derivative du/dt = v . d_z u + d_t u, gives the regression target (SOM Eq. 7)

    u_tgt = sg(v - (t - r) (v . d_z u + d_t u)),

computed with one forward-mode Jacobian-vector product of u along the tangent (v, 0, 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import jvp

from algorithms.common.best_of_n import BestOfNActing
from algorithms.common.nets import mlp


TIME_SAMPLINGS = ("uniform_t", "sorted_pair")


def sample_times(batch: int, equal_fraction: float, device, generator: torch.Generator | None = None,
                 mode: str = "sorted_pair") -> tuple[torch.Tensor, torch.Tensor]:
    """(r, t), each [B, 1], with r <= t, and r = t for a fraction `equal_fraction` of the batch.

    mode 'uniform_t': t ~ U(0, 1) and r ~ U(0, t), so t is uniform as SOM's Eq. 7 writes it
    (E_{t ~ U(0, 1)}). mode 'sorted_pair': the min and max of two U(0, 1) draws, so t ~ Beta(2, 1)
    (density 2t, weighted toward the noise end) and r ~ Beta(1, 2); this conditions two uniforms on their
    order (one reading of Algorithm 1's "sample t, r ~ U(0, 1) with r <= t"), as MeanFlow's code sorts its
    two (logit-normal) draws."""
    draws = torch.rand((batch, 2), device=device, generator=generator)
    if mode == "uniform_t":
        t = draws[:, :1]
        r = draws[:, 1:] * t
    elif mode == "sorted_pair":
        r, t = draws.min(dim=1, keepdim=True).values, draws.max(dim=1, keepdim=True).values
    else:
        raise ValueError(f"time sampling must be one of {TIME_SAMPLINGS}, got {mode!r}")
    equal = torch.rand((batch, 1), device=device, generator=generator) < equal_fraction
    return torch.where(equal, t, r), t


def meanflow_target(
    u_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    r: torch.Tensor,
    t: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(z, r, t) with its graph, the stop-gradient target u_tgt). jvp runs in fp32 (no autocast)."""
    v = v.detach()
    u, dudt = jvp(u_fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    target = v - (t - r) * dudt
    return u, target.detach()


def adaptive_weighted_loss(u: torch.Tensor, target: torch.Tensor, power: float, c: float = 0.01) -> torch.Tensor:
    """MeanFlow's adaptive loss: per-sample squared error L weighted by 1 / sg(L + c)^power
    (power 0: plain mean squared error, Eq. 7 as printed; MeanFlow's reference code uses 1)."""
    per_sample = ((u - target) ** 2).sum(dim=-1)
    if power == 0:
        return per_sample.mean()
    return (per_sample / (per_sample.detach() + c) ** power).mean()


class MeanFlowActor(nn.Module):
    """u_theta(z, r, t, s) of a one-step MeanFlow policy (SOM, MFP): an MLP on the noisy action, the raw
    times (r, t) and the state, concatenated. `cfg` gives `hidden_sizes` and `activation` (Table 3).

    action_scale c: the network works in action units stretched by c, u(z, r, t, s) = net(c z, r, t, s) / c
    (1: the action box's own units). A velocity is a length per unit time, so input and output scale
    together and the map it represents is the same function of z; only the network's units change."""

    def __init__(self, obs_dim: int, act_dim: int, cfg, action_scale: float = 1.0):
        super().__init__()
        self.net = mlp(act_dim + 2 + obs_dim, act_dim, cfg.hidden_sizes, cfg.activation)
        self.action_scale = float(action_scale)
        self._one_step_times: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        c = self.action_scale
        if c == 1.0:
            return self.net(torch.cat([z, r, t, obs], dim=-1))
        return self.net(torch.cat([c * z, r, t, obs], dim=-1)) / c

    def one_step(self, eps: torch.Tensor, obs: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
        """One-step generation a = eps - u(eps, 0, 1, s), clipped to the action box [-clip, clip] (the
        algorithms' [-1, 1]; labs/som_lab.py works in the bandit's own units). The (r, t) = (0, 1) columns
        are cached per batch size, so acting allocates nothing it can reuse."""
        key = (eps.shape[0], eps.device)
        times = self._one_step_times.get(key)
        if times is None:
            times = (eps.new_zeros((eps.shape[0], 1)), eps.new_ones((eps.shape[0], 1)))
            self._one_step_times[key] = times
        return (eps - self(eps, *times, obs)).clamp(-clip, clip)


class MeanFlowPolicy(BestOfNActing):
    """Acting and the generator interface of a one-step MeanFlow policy (SOM, MFP): `self.actor` is a
    `MeanFlowActor`, `self.prior_std` the std of its input noise. Acts by best-of-N (BestOfNActing)."""

    actor: MeanFlowActor
    prior_std: float

    @property
    def noise_std(self) -> float:
        return self.prior_std

    def generate(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One-step generation a = eps - u(eps, 0, 1, s), clipped to [-1, 1]; obs [B, o] -> [B, d]."""
        if noise is None:
            noise = self.prior_std * torch.randn((obs.shape[0], self.act_dim), device=obs.device)
        return self.actor.one_step(noise, obs)

    def samples_at(self, obs: torch.Tensor, noise: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
        """MeanFlow's jump from the noise (t = 1) to time t: z_t = eps - (1 - t) u(eps, t, 1, s).
        t = 0 is `generate` (clipped to the box); intermediate samples are not clipped."""
        n = noise.shape[0]
        out = []
        for t in times:
            if t <= 0.0:
                out.append(self.generate(obs, noise))
            elif t >= 1.0:
                out.append(noise)
            else:
                r = torch.full((n, 1), float(t), device=noise.device)
                out.append(noise - (1.0 - t) * self.actor(noise, r, torch.ones_like(r), obs))
        return out
