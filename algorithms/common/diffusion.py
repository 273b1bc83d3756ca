"""Discrete-time DDPM machinery for diffusion policies (Ho et al. 2020), shared by the diffusion
baselines (DACER now; SDAC, DPMD, QSM, QVPO, DIPO later). Step index i = 0..T-1, with i = 0 the
last denoising step (nearest the action) and i = T-1 the first (nearest the noise).

- `DDPMSchedule`: beta_i for the discretised VP-SDE (a `vp_beta_schedule`, beta from 0.1 to 10, as
  the DACER and Diffusion-QL lineages define it), the cosine schedule (Nichol and Dhariwal 2021) or the
  scaled linear schedule scale * linspace(1e-4, 0.999, T) that SDAC's and DPMD's reference code
  actually uses, and every coefficient of the forward kernel q(x_i | x_0) and the posterior
  q(x_{i-1} | x_i, x_0).
- `reverse_process`: the ancestral sampler x_{i-1} ~ N(mu_post(x_i, x0_hat), sigma_post^2) with the
  network predicting the noise and the predicted clean action x0_hat clipped to the action box
  at every step. It is differentiable end to end: DACER backpropagates Q through all T steps.
- `sinusoidal_embedding` and `TimeEmbedding`: the scaled sinusoidal step embedding of the relax
  code (dim 16, theta 10,000, scaled by 1 / sqrt(dim)), followed by Linear(2 dim)-act-Linear(dim);
  or the unscaled `SinusoidalPosEmb` of the Diffusion-QL lineage (QVPO's and DIPO's reference code),
  with a hidden width of its own (256 there).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Optional

import numpy as np
import torch
from torch import nn

from algorithms.common.capabilities import Generator
from algorithms.common.config import ConfigError, Interval, OneOf, OptionalOf, Positive, Validated, param
from algorithms.common.nets import activation, mlp


def vp_betas(steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> np.ndarray:
    """beta_i = 1 - exp(-beta_min / T - 0.5 (beta_max - beta_min) (2 i - 1) / T^2), i = 1..T: the
    exact one-step transition of the linear VP-SDE beta(t) = beta_min + t (beta_max - beta_min)
    over [(i - 1) / T, i / T] (relax's `vp_beta_schedule`, as used by DACER and Diffusion-QL)."""
    i = np.arange(1, steps + 1, dtype=np.float64)
    alpha = np.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * i - 1) / steps**2)
    return 1.0 - alpha


def linear_betas(steps: int, scale: float = 1.0, beta_start: float = 1e-4, beta_end: float = 0.999) -> np.ndarray:
    """beta_i = scale * linspace(beta_start, beta_end, T): relax's `linear_beta_schedule` times its
    `beta_schedule_scale` (mahaitongdae/diffusion_policy_online_rl, relax/utils/diffusion.py, the schedule
    its `GaussianDiffusion` builds; scripts/train_mujoco.py passes scale 0.8 for SDAC and DPMD)."""
    return scale * np.linspace(beta_start, beta_end, steps, dtype=np.float64)


def cosine_betas(steps: int, s: float = 0.008) -> np.ndarray:
    """The cosine schedule of Nichol and Dhariwal (2021), betas clipped to 0.999."""
    t = np.arange(0, steps + 1, dtype=np.float64) / steps
    abar = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    abar = abar / abar[0]
    return np.clip(1 - abar[1:] / abar[:-1], 0, 0.999)


class DDPMSchedule:
    """Coefficients of a discrete DDPM with T steps, as float32 tensors on `device` (float64 maths)."""

    def __init__(self, steps: int, schedule: str = "vp", device: torch.device | str = "cpu", linear_scale: float = 1.0):
        if schedule == "vp":
            betas = vp_betas(steps)
        elif schedule == "cosine":
            betas = cosine_betas(steps)
        elif schedule == "linear":
            betas = linear_betas(steps, linear_scale)
        else:
            raise ValueError(f"beta schedule must be 'vp', 'cosine' or 'linear', got {schedule!r}")
        self.steps = int(steps)
        alphas = 1.0 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.append(1.0, abar[:-1])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        coefs = {
            "betas": betas,
            "abar": abar,
            "sqrt_abar": np.sqrt(abar),
            "sqrt_one_minus_abar": np.sqrt(1.0 - abar),
            "sqrt_recip_abar": np.sqrt(1.0 / abar),
            "sqrt_recipm1_abar": np.sqrt(1.0 / abar - 1.0),
            "posterior_std": np.exp(0.5 * np.log(np.maximum(post_var, 1e-20))),
            "posterior_coef_x0": betas * np.sqrt(abar_prev) / (1.0 - abar),
            "posterior_coef_xt": (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
        }
        for name, value in coefs.items():
            setattr(self, name, torch.as_tensor(value, dtype=torch.float32, device=device))
        # python floats for the sampler loop: indexing a device tensor per step would cost a launch each
        self._host = {name: [float(x) for x in value] for name, value in coefs.items()}

    def q_sample(self, x0: torch.Tensor, noise: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) noise, for integer step indices i [B]."""
        return self.sqrt_abar[i].unsqueeze(-1) * x0 + self.sqrt_one_minus_abar[i].unsqueeze(-1) * noise

    def predict_x0(self, x: torch.Tensor, noise_pred: torch.Tensor, i: int, clip: float | None = 1.0) -> torch.Tensor:
        """x0_hat = x / sqrt(abar_i) - sqrt(1 / abar_i - 1) eps_hat, clipped to [-clip, clip]."""
        h = self._host
        x0 = h["sqrt_recip_abar"][i] * x - h["sqrt_recipm1_abar"][i] * noise_pred
        return x0 if clip is None else x0.clamp(-clip, clip)

    def posterior_mean(self, x: torch.Tensor, x0: torch.Tensor, i: int) -> torch.Tensor:
        """Mean of q(x_{i-1} | x_i, x0)."""
        h = self._host
        return h["posterior_coef_x0"][i] * x0 + h["posterior_coef_xt"][i] * x


def reverse_process(
    noise_model: Callable[[torch.Tensor, int], torch.Tensor],
    schedule: DDPMSchedule,
    x_init: torch.Tensor,
    clip: float | None = 1.0,
    generator: torch.Generator | None = None,
    return_path: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Ancestral DDPM sampling from x_{T} = x_init through steps i = T-1, ..., 0.

    noise_model(x, i) predicts the noise at integer step i. Each step: x0_hat = predict_x0 (clipped),
    x <- posterior_mean(x, x0_hat) + (i > 0) posterior_std_i z. The result is not clipped (callers clip
    after adding any exploration noise). Differentiable with respect to the model's parameters.
    With return_path, the list [x_T, x_{T-1}, ..., x_0] instead.
    """
    x = x_init
    path = [x]
    noise = torch.randn((schedule.steps, *x.shape), device=x.device, dtype=x.dtype, generator=generator)
    for i in reversed(range(schedule.steps)):
        x0 = schedule.predict_x0(x, noise_model(x, i), i, clip)
        x = schedule.posterior_mean(x, x0, i)
        if i > 0:
            x = x + schedule._host["posterior_std"][i] * noise[i]
        if return_path:
            path.append(x)
    return path if return_path else x


def sinusoidal_embedding(t: torch.Tensor, dim: int, theta: float = 10_000.0) -> torch.Tensor:
    """[sin(t f_j), cos(t f_j)] / sqrt(dim) with f_j = theta^(-j / (dim/2)), j < dim/2 (relax's
    `scaled_sinusoidal_encoding`). t [...] -> [..., dim]."""
    if dim % 2:
        raise ValueError("embedding dim must be even")
    half = dim // 2
    freqs = theta ** (-torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float().unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1) / math.sqrt(dim)


def position_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin(t f_j), cos(t f_j)] with f_j = exp(-j log(10,000) / (dim/2 - 1)), j < dim/2, unscaled: the
    `SinusoidalPosEmb` of the Diffusion-QL lineage (BellmanTimeHut/DIPO and wadx2019/qvpo, agent/helpers.py).
    t [...] -> [..., dim]."""
    if dim % 2 or dim < 4:
        raise ValueError("position embedding dim must be even and >= 4")
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    angles = t.float().unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeEmbedding(nn.Module):
    """Step index -> sinusoid(dim) -> Linear(hidden) -> act -> Linear(dim). Defaults: relax's scaled
    sinusoid and hidden = 2 dim (DACER's policy net); `frequencies="diffusion_ql"` with hidden 256 is the
    time MLP of QVPO's and DIPO's reference code (agent/model.py). Step embeddings are the same for every
    row, so each is computed once per call at batch size 1."""

    def __init__(self, dim: int = 16, act: str = "mish", hidden: int | None = None, frequencies: str = "relax"):
        super().__init__()
        self.dim = dim
        self.frequencies = frequencies
        hidden = hidden or 2 * dim
        self.net = nn.Sequential(nn.Linear(dim, hidden), activation(act)(), nn.Linear(hidden, dim))

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        if self.frequencies == "diffusion_ql":
            return self.net(position_embedding(steps, self.dim))
        return self.net(sinusoidal_embedding(steps, self.dim))


@dataclasses.dataclass
class DiffusionConfig(Validated):
    """The DDPM actor of the diffusion baselines (DACER, SDAC, DPMD, QSM, QVPO, DIPO)."""

    diffusion_steps: int = param(20, Positive(int))
    """T of the reverse process (Table 3: 20 for DACER, SDAC, DPMD, QSM and QVPO)."""
    beta_schedule: str = param("vp", OneOf(("vp", "cosine")))
    """'vp': the discretised VP-SDE betas (0.1 -> 10) of DACER's paper (relax/utils/diffusion.py of
    mahaitongdae/diffusion_policy_online_rl defines this `vp_beta_schedule` too, but its `GaussianDiffusion`
    never calls it); 'cosine': Nichol and Dhariwal's schedule (QVPO's and DIPO's). SDAC, DPMD and QSM also
    accept 'linear' (algorithms/common/diffusion_losses.py)."""
    prior_std: float = param(1.0, Positive())
    """Std of the starting noise a_T. 1 = the DDPM prior N(0, I) of the papers' reverse process; the relax
    reference code of DACER starts from 0.5 N(0, I) (`--set prior_std=0.5` reproduces it)."""
    time_dim: int = param(16, Interval(int, lo=2))
    """Width of the sinusoidal step embedding (relax code: 16, then Linear(32)-act-Linear(16)); even."""
    time_hidden: Optional[int] = param(None, OptionalOf(Positive(int)))
    """Hidden width of the step embedding's MLP, sinusoid -> Linear(time_hidden) -> act -> Linear(time_dim).
    None = 2 time_dim (relax's DACERPolicyNet: Linear(32) for time_dim 16). QVPO and DIPO set 256, their
    reference code's `nn.Linear(time_dim, hidden_size)` (agent/model.py, hidden_size 256)."""
    time_frequencies: str = param("relax", OneOf(("relax", "diffusion_ql")))
    """The sinusoid under the step embedding. 'relax': relax's `scaled_sinusoidal_encoding`, frequencies
    10,000^(-j / (dim/2)), scaled by 1 / sqrt(dim); 'diffusion_ql': the `SinusoidalPosEmb` of QVPO's and
    DIPO's reference code (agent/helpers.py), frequencies exp(-j log 10,000 / (dim/2 - 1)), unscaled."""

    def check(self) -> None:
        if self.time_dim % 2:
            raise ConfigError(f"time_dim must be even, got {self.time_dim}")
        if self.time_frequencies == "diffusion_ql" and self.time_dim < 4:
            raise ConfigError(f"time_frequencies=diffusion_ql needs time_dim >= 4, got {self.time_dim}")


class DiffusionActor(nn.Module):
    """eps_theta(s, a_i, i): the noise predictor, an MLP on [s, a_i, embedding(i)]."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: DiffusionConfig):
        super().__init__()
        self.time_embed = TimeEmbedding(cfg.time_dim, cfg.activation, cfg.time_hidden, cfg.time_frequencies)
        self.net = mlp(obs_dim + act_dim + cfg.time_dim, act_dim, cfg.hidden_sizes, cfg.activation)
        self.register_buffer("steps", torch.arange(cfg.diffusion_steps, dtype=torch.float32), persistent=False)

    def sample(self, obs: torch.Tensor, schedule: DDPMSchedule, prior_std: float, x_init: torch.Tensor | None = None,
               return_path: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """One reverse-process sample per row of obs [B, o] -> [B, d] (differentiable; not clipped), from
        x_init (default prior_std * N(0, I)); with return_path the T + 1 points from x_T to the action."""
        b = obs.shape[0]
        emb = self.time_embed(self.steps)  # all T step embeddings in one call, [T, time_dim]
        if x_init is None:
            x_init = prior_std * torch.randn((b, self.net[-1].out_features), device=obs.device)

        def noise_model(x: torch.Tensor, i: int) -> torch.Tensor:
            return self.net(torch.cat([obs, x, emb[i].expand(b, -1)], dim=-1))

        return reverse_process(noise_model, schedule, x_init, clip=1.0, return_path=return_path)


class DiffusionGenerator(Generator):
    """The generator interface (algorithms/common/capabilities.py) of a DDPM policy: the reverse process of
    `generating_actor()` (default `self.actor`, a DiffusionActor) under `self.schedule`, from noise
    N(0, prior_std^2 I), its result clipped to [-1, 1]; no exploration noise (the per-step posterior
    noise of the reverse process is still drawn)."""

    @property
    def noise_std(self) -> float:
        return float(self.config.prior_std)

    def generating_actor(self) -> DiffusionActor:
        return self.actor

    def generate(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.generating_actor().sample(obs, self.schedule, self.config.prior_std, x_init=noise).clamp(-1.0, 1.0)

    def rollout(self, obs: torch.Tensor, noise: torch.Tensor) -> list[torch.Tensor]:
        path = self.generating_actor().sample(obs, self.schedule, self.config.prior_std, x_init=noise, return_path=True)
        return path[:-1] + [path[-1].clamp(-1.0, 1.0)]
