"""Soft Actor-Critic (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications").

Table 3 column of the SOM paper: 3x256 GELU networks, actor/critic/alpha lr 3e-4, target entropy
-dim(A), reward scale 0.2, warm-up 3e4, batch 256, tau 0.005, one particle (no best-of-N).

Per update (Algorithm 1 of Haarnoja et al.):
  1. critic:  y = r_scaled + gamma (1 - d) [min_i Q_targ_i(s', a') - alpha log pi(a'|s')],  a' ~ pi(.|s')
              J_Q = sum_i E[0.5 (Q_i(s, a) - y)^2]                                     (Eq. 5)
  2. actor:   J_pi = E[alpha log pi(a|s) - min_i Q_i(s, a)],  a = tanh(mu + sigma xi)     (Eq. 7)
  3. alpha:   J(alpha) = E[-alpha (log pi(a|s) + H_target)]                             (Eq. 18)
  4. targets: Polyak with rate tau, every update.

Evaluation mode (`deterministic=True`): the squashed mean tanh(mu(s)), as in the authors' code.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.buffer import Batch
from algorithms.common.capabilities import Generator
from algorithms.common.config import ConfigError, Finite, OffPolicyConfig, TemperatureConfig, param
from algorithms.common.critics import TwinCritic, td_target, twin_critic_loss
from algorithms.common.nets import mlp
from algorithms.common.targets import polyak_update
from algorithms.common.temperature import LogAlpha, sac_alpha_loss


@dataclasses.dataclass
class SACConfig(TemperatureConfig, OffPolicyConfig):
    """Table 3's SAC column: GELU, actor/critic/alpha lr 3e-4 and target entropy -dim(A) are the shared
    defaults of algorithms/common/config.py. init_alpha 1.0: Table 3 is silent, 1.0 is the value of the
    authors' softlearning code."""

    log_std_min: float = param(-20.0, Finite())
    """Lower clamp of the Gaussian log-std, as in the authors' softlearning code."""
    log_std_max: float = param(2.0, Finite())
    """Upper clamp of the Gaussian log-std, as in the authors' softlearning code."""

    def check(self) -> None:
        if self.log_std_max <= self.log_std_min:
            raise ConfigError(f"log_std_max ({self.log_std_max:g}) must be > log_std_min ({self.log_std_min:g})")


class TanhGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mu(s), sigma(s)^2)); log-probabilities with the tanh change of variables."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig):
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, cfg.hidden_sizes, cfg.activation)
        self.log_std_min, self.log_std_max = cfg.log_std_min, cfg.log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability, summed over dimensions."""
        mean, log_std = self(obs)
        noise = torch.randn_like(mean)
        pre_tanh = mean + log_std.exp() * noise
        action = torch.tanh(pre_tanh)
        # log N(pre_tanh; mean, std) - sum log(1 - tanh^2), the latter in the stable softplus form
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre_tanh - nn.functional.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob


@register
class SAC(Generator, OffPolicyAlgorithm):
    name = "sac"
    description = "Soft Actor-Critic: tanh-Gaussian actor, twin critics, learned entropy temperature."
    Config = SACConfig
    presets = {
        **OffPolicyAlgorithm.presets,
        # `make demo`: Hopper-v4 for 8,000 env steps per seed on one CPU thread (1/625 of Table 1's 5M), beside SOM's
        # and MFP's demo presets at the same scale; everything else (learning rates, alpha_lr 3e-4, target entropy
        # -dim(A), tau, gamma) stays Table 3's. SAC's alpha steps every update, so its schedule needs no rescaling.
        # Width 3 x 64: Table 3's three hidden layers at a quarter of the 256 nodes (the same for all three).
        # batch 64: a quarter of 256, with the width. warmup_steps 64: Table 3's 3e4 is 0.6% of 5M, 48 steps
        # of 8,000, raised to one batch.
        "demo": {"hidden_sizes": (64, 64, 64), "batch_size": 64, "warmup_steps": 64},
    }

    def __init__(self, obs_dim: int, act_dim: int, config: SACConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.actor = TanhGaussianActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                 cfg.critic_action_scale).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.temperature = LogAlpha(cfg.init_alpha).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.alpha_opt = adam(self.temperature.parameters(), cfg.alpha_lr, self.device)
        self.target_entropy = cfg.target_entropy_scale * act_dim

    compiled_methods = ("act_step", "update")  # no counters: the update is compiled whole

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The acting path on tensors: tanh(mean) in evaluation, a policy sample otherwise; [B, o] -> [B, d]."""
        return torch.tanh(self.actor(obs)[0]) if deterministic else self.actor.sample(obs)[0]

    def generate(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """SAC is not a generative policy: its stand-in for the generator (algorithms/common/capabilities.py)
        is its stochastic policy sample tanh(mu(s) + sigma(s) * noise), noise ~ N(0, I), without best-of-N."""
        mean, log_std = self.actor(obs)
        noise = torch.randn_like(mean) if noise is None else noise
        return torch.tanh(mean + log_std.exp() * noise)

    def fit_critic(self, batch: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One critic step on the soft Bellman residual (Eq. 5); returns (loss, Q [2, B]), detached."""
        cfg = self.config
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs)
            next_q = self.critic_target.min_q(batch.next_obs, next_action) - alpha * next_log_prob
            target = td_target(batch.reward, next_q, batch.terminated, cfg.gamma, cfg.reward_scale)
        q = self.critic(batch.obs, batch.action)
        critic_loss = twin_critic_loss(q, target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        return critic_loss.detach(), q.detach()

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        critic_loss, q = self.fit_critic(batch, self.temperature.alpha.detach())
        return {"critic_loss": critic_loss, "q_mean": q.mean()}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        alpha = self.temperature.alpha.detach()

        # 1. critic (Eq. 5)
        critic_loss, q = self.fit_critic(batch, alpha)

        # 2. actor (Eq. 7); the critic is frozen so no weight gradients are computed for it
        self.critic.requires_grad_(False)
        action, log_prob = self.actor.sample(batch.obs)
        actor_loss = (alpha * log_prob - self.critic.min_q(batch.obs, action)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)

        # 3. temperature (Eq. 18)
        alpha_loss = sac_alpha_loss(self.temperature.log_alpha, log_prob, self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        # 4. targets
        polyak_update(self.critic, self.critic_target, cfg.tau)

        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "alpha": alpha,
            "entropy": -log_prob.detach().mean(),
            "q_mean": q.mean(),
        }
