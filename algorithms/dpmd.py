"""DPMD: Diffusion Policy Mirror Descent (Ma et al., ICML 2025, "Efficient Online Reinforcement Learning
for Diffusion Policy", the same paper as SDAC).

A mirror-descent step toward pi_new(a|s) ~ pi_old(a|s) exp(Q(s, a) / alpha) fitted by a weighted
denoising loss: the policy's own samples, each weighted by the exponentiated (normalised) Q, are the
regression data of the T = 20 step DDPM (algorithms/common/diffusion.py).

Per update k = 0, 1, ... (after the reference, `mahaitongdae/diffusion_policy_online_rl`,
relax/algorithm/dpmd.py):
  1. critic:  a' = policy(s') (best-of-N + exploration noise, current actor and critic),
              y = r_scaled + gamma (1 - d) min_j Q_targ_j(s', a'),  J_Q = sum_j E[0.5 (Q_j(s, a) - y)^2];
              one Adam step.
  2. weights: q = min(Q1, Q2)(s', a') with the critic after its step,
              w = exp( clip((q - m) / s, -3, 3) / alpha ),  m, s: running mean and std of q, then
              m <- m + 0.001 (mean(q) - m),  s <- s + 0.001 (std(q) - s)   (every update; start 0 and 1)
  3. actor, if k % policy_delay == 0: i ~ U{0..T-1}, eps ~ N(0, I), x_i = sqrt(abar_i) a' + sqrt(1 - abar_i) eps,
              L = mean over (b, dims) of w_b (eps_theta(s', x_i, i) - eps)^2
  4. alpha step on the exploration-noise entropy every alpha_delay updates; targets (critics and the
     acting copy of the actor) every target_delay updates.
Acting: best of N = 32 reverse-process samples by min(Q1, Q2), plus alpha * 0.1 * N(0, I), clipped.
Evaluation: the same best-of-N without the noise.

Two bugs of the reference are not reproduced; this file implements the intended maths:
- it normalises with `q_min - running_mean / running_std`, i.e. q - (m / s) by operator precedence,
  where (q - m) / s is meant (the clip at +-3 is a clip in standard deviations);
- it applies the critic's Adam update twice per update (once right after the gradients, and again with
  the same gradients in the shared `param_update` block); here the critic takes one step per update.
The regression data are the critic target's (s', a') pairs, as in the reference: the policy's samples at
the batch's next states, so no second best-of-N pass is needed.

Table 3 column: 3x256 Mish, actor and critic lr 3e-4, alpha lr 7e-3, alpha delay 250, noise scale 0.1,
target entropy -0.9 dim(A), 20 diffusion steps, N = 32, warm-up 3e4, batch 256, tau 0.005, reward
scale 0.2. What neither paper fixes is a config field, with its source; from the reference, as SDAC's:
the actor's rate decays linearly from 3e-4 to 3e-5 between its 25,000th and 75,000th step, the betas
are 0.8 * linspace(1e-4, 0.999, 20) and the reverse process starts from 0.5 N(0, I)
(algorithms/common/diffusion_losses.py: BestOfNDiffusionConfig, RelaxDiffusionConfig;
docs/baselines-vs-reference.md).
"""

from __future__ import annotations

import dataclasses

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm
from algorithms.common.buffer import Batch
from algorithms.common.config import Fraction, Positive, param
from algorithms.common.diffusion_losses import (BestOfNDiffusion, BestOfNDiffusionConfig, NoiseTemperature, NoiseTemperatureConfig,
                                                RelaxDiffusionConfig, predict_noise, random_steps, weighted_noise_loss)


@dataclasses.dataclass
class DPMDConfig(RelaxDiffusionConfig, NoiseTemperatureConfig, BestOfNDiffusionConfig):
    weight_clip: float = param(3.0, Positive())
    """The normalised Q is clipped to [-c, c] before exponentiation (the reference's `clip(-3., 3.)`)."""
    q_stats_rate: float = param(0.001, Fraction(open_low=True))
    """Rate of the running mean and std of Q, m <- m + rate (batch mean - m) (the reference's 0.001)."""


def dpmd_weights(q: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor | float,
                 clip: float = 3.0) -> torch.Tensor:
    """w = exp(clip((q - m) / s, -c, c) / alpha) [B] (the intended maths; see the module docstring)."""
    return torch.exp(((q.detach() - mean) / std).clamp(-clip, clip) / alpha)


def running_stats(mean: torch.Tensor, std: torch.Tensor, q: torch.Tensor, rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(m + rate (mean(q) - m), s + rate (std(q) - s)), std of the batch with divisor B (jnp.std's)."""
    q = q.detach()
    return mean + rate * (q.mean() - mean), std + rate * (q.std(unbiased=False) - std)


@register
class DPMD(NoiseTemperature, BestOfNDiffusion):
    name = "dpmd"
    revision = 2  # issue 25: defaults moved to the reference code's (docs/baselines-vs-reference.md)
    description = "DPMD: 20-step DDPM actor fitted to its own samples weighted by exp(normalised Q / alpha), best-of-N."
    Config = DPMDConfig
    generation_steps = 20
    update_cycle = 2  # the actor trains every policy_delay = 2 updates
    presets = {
        # The bandit's rewards are at most 1, so with Table 3's reward scale 0.2 every Q is <= 0.2 and the
        # weights exp(5 Q / alpha) are nearly uniform (SDAC's generator scored 0.04 after 2,500 steps):
        # 20 brings Q to the tens, the magnitude it has on MuJoCo (rewards ~1-10 per step, 1 / (1 - gamma)
        # = 100, times 0.2). init_alpha 1: the exploration noise alpha * 0.1 starts at 0.1 of the box, not
        # 0.5. eval_particles 1: evaluation scores the generator alone (mode counts, learning tests).
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "reward_scale": 20.0, "init_alpha": 1.0, "eval_particles": 1},
        # How relax, the code behind the published SDAC and DPMD curves, steps its envs: 5 vector envs and one
        # update per iteration, so one update per 5 env steps (mahaitongdae/diffusion_policy_online_rl,
        # scripts/train_mujoco.py and relax/trainer/off_policy.py). The SOM paper does not state its own ratio.
        "relax": {"num_envs": 5, "updates_per_step": 0.2},
    }

    state_attributes = ("q_mean", "q_std", "last_actor_loss")
    """Besides BestOfNDiffusion's: the running mean and std of Q and the last actor loss (reported until the next actor step)."""

    def __init__(self, obs_dim: int, act_dim: int, config: DPMDConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        self.init_temperature()
        self.q_mean = torch.zeros((), device=self.device)  # the reference starts the running mean at 0
        self.q_std = torch.ones((), device=self.device)  # and the running std at 1
        self.last_actor_loss = torch.zeros((), device=self.device)

    def actor_loss(self, obs: torch.Tensor, action: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted DDPM loss on the policy's samples `action` [B, d] at states obs [B, o]."""
        i = random_steps(obs.shape[0], self.schedule.steps, self.device)
        noise = torch.randn_like(action)
        x_t = self.schedule.q_sample(action, noise, i)
        return weighted_noise_loss(predict_noise(self.actor, obs, x_t, i), noise, weights)

    compiled_methods = ("act_step", "update_step")

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        k = self.updates
        self.updates += 1  # the delays are decided here, outside the compiled step (a counter would recompile it)
        policy_step = k % cfg.policy_delay == 0
        if policy_step:
            self.schedule_actor_lr(k // cfg.policy_delay)  # the schedule counts actor steps, as optax's does
        return self.update_step(batch, policy_step=policy_step, alpha_step=k % cfg.alpha_delay == 0,
                                target_step=k % cfg.target_delay == 0)

    def update_step(self, batch: Batch, policy_step: bool, alpha_step: bool, target_step: bool) -> dict[str, torch.Tensor]:
        cfg = self.config

        # 1. critic, one step
        next_action = self.policy_actions(batch.next_obs)
        critic_loss, q_data = self.critic_loss(batch, next_action)
        self.critic_opt.step()

        # 2. weights from the stepped critic and the running statistics before this batch
        alpha = self.temperature.alpha.detach()
        with torch.no_grad():
            q = self.critic.min_q(batch.next_obs, next_action)
            weights = dpmd_weights(q, self.q_mean, self.q_std, alpha, cfg.weight_clip)
            new_mean, new_std = running_stats(self.q_mean, self.q_std, q, cfg.q_stats_rate)
            self.q_mean.copy_(new_mean)
            self.q_std.copy_(new_std)

        # 3. actor
        if policy_step:
            actor_loss = self.actor_loss(batch.next_obs, next_action, weights)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self.last_actor_loss = actor_loss.detach()

        # 4. temperature and targets
        if alpha_step:
            self.temperature_step()
        if target_step:
            self.update_targets()

        return {
            "critic_loss": critic_loss,
            "actor_loss": self.last_actor_loss,
            "q_mean": q_data.mean(),
            "alpha": alpha,
            "weight_mean": weights.mean(),
        }
