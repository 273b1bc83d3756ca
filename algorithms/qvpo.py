"""QVPO: Q-weighted Variational Policy Optimization (Ding et al., NeurIPS 2024).

The policy is a T = 20 step DDPM (cosine schedule). It is trained by a *Q-weighted* denoising loss
on its own samples: for each batch state, draw 64 actions from the current policy, weight them by
their advantage over the sampled mean, and fit the DDPM to the weighted actions. A second, smaller
weighted term on uniform random actions keeps the policy's entropy up (the paper's "entropy
regularisation" of a diffusion policy, whose density it cannot evaluate).

Per update (the order of the reference code, `mahaitongdae/qvpo`, agent/qvpo.py, QVPOv2):
  1. critic:  a' = best of `target_particles` (4) policy samples at s' by min Q_targ;
              y = r_scaled + gamma (1 - d) min_i Q_targ_i(s', a');  J_Q = sum_i E[0.5 (Q_i - y)^2];
              gradient norm clipped to 2.0.
  2. actor (after the critic's step, as the reference code orders it):
              a_1..a_64 ~ pi(.|s) (the full stochastic reverse process, clipped to [-1, 1]);
              q_j = min(Q1, Q2)(s, a_j),  V(s) = mean_j q_j;
              keep the `train_chosen` (1) samples with the highest q; weight w = max(q - V(s), 0);
              add `entropy_samples` (10) uniform actions per kept sample, each weighted w_ent(k) * w;
              L = mean over the M rows and d dims of  w_m (eps_theta(s_m, x_i, i) - eps)^2,
                  x_i = sqrt(abar_i) a_m + sqrt(1 - abar_i) eps,  i ~ U{0..T-1},  eps ~ N(0, I);
              gradient norm clipped to 2.0.
  3. targets: Polyak on the critic with rate tau (no target actor: QVPOv2's default).
The entropy weight w_ent decays linearly in env steps from 0.02 to 0.002 (reference main.py:
max(0.002, 0.02 (1 - env_step / total_steps))), with env_step = warmup_steps + updates so far.

Acting: best of `num_particles` (4) samples by min(Q1, Q2); evaluation: best of `eval_particles` (32),
still with the reverse process's per-step noise (the reference's `deterministic` flag is off).
Table 3 column: Mish, lr 3e-4 (actor and critic), 20 diffusion steps, 32 particles, warm-up 3e4,
batch 256, tau 0.005, reward scale 0.2. Table 2: T_d = 20, N = 32.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.best_of_n import BestOfNActing, best_of_n, repeat_states
from algorithms.common.buffer import Batch
from algorithms.common.config import (BestOfNConfig, ConfigError, Interval, NonNegative, OffPolicyConfig, OptionalOf, Positive,
                                      param)
from algorithms.common.critics import TwinCritic, twin_critic_loss
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor, DiffusionConfig, DiffusionGenerator
from algorithms.common.diffusion_losses import clip_gradients, weighted_ddpm_loss
from algorithms.common.targets import polyak_update


def qvpo_weights(q: torch.Tensor, chosen: int) -> tuple[torch.Tensor, torch.Tensor]:
    """QVPO's advantage weights from q [B, K] (min Q of K policy samples per state): the indices
    [B, chosen] of the `chosen` highest q per state and their weights max(q - mean_K q, 0) [B, chosen]."""
    v = q.mean(dim=1, keepdim=True)
    top, idx = q.topk(chosen, dim=1)
    return idx, (top - v).clamp_min(0.0)


def entropy_weight(step: int, start: float, end: float, decay_steps: int) -> float:
    """The reference code's linear decay in env steps: min(start, max(end, start (1 - step / decay_steps)))."""
    return min(start, max(end, start * (1.0 - step / decay_steps)))


@dataclasses.dataclass
class QVPOConfig(BestOfNConfig, DiffusionConfig, OffPolicyConfig):
    activation: str = "mish"
    """Table 3: Mish (actor, step embedding and critic)."""
    beta_schedule: str = "cosine"
    """QVPO's DDPM uses the cosine schedule (reference main.py `--beta_schedule cosine`)."""
    time_dim: int = 32
    """Sinusoidal step embedding width: 32 in the reference code's noise network (agent/model.py)."""
    num_particles: int = 4
    """Acting: best of 4 policy samples by min(Q1, Q2) (the paper's efficient behaviour policy; reference
    `--behavior_sample 4`)."""
    eval_particles: Optional[int] = 32
    """Evaluation: best of 32 (Table 3's 32 particles; reference `--eval_sample 32`)."""
    train_samples: int = param(64, Interval(int, lo=2))
    """Policy samples per state for the Q-weighted loss (reference `--train_sample 64`); >= 2 so that
    the mean over them is an estimate of V(s)."""
    train_chosen: int = param(1, Positive(int))
    """How many of those samples per state enter the loss: the `train_chosen` highest by Q (reference
    `--chosen 1`: only the best, weighted by its advantage over the mean of all 64)."""
    target_particles: int = param(4, Positive(int))
    """Next action in the critic target: best of this many samples of the current policy, selected by the
    target critic (reference `--target_sample 4`, no target actor)."""
    entropy_weight: float = param(0.02, NonNegative())
    """Initial weight of the uniform-action entropy term, as a multiple of the chosen sample's weight
    (reference `--entropy_alpha 0.02`). 0 turns the entropy term off."""
    entropy_weight_min: float = param(0.002, NonNegative())
    """The entropy weight decays linearly to this floor (reference main.py: 0.002)."""
    entropy_decay_steps: int = param(1_000_000, Positive(int))
    """Env steps over which the entropy weight decays from entropy_weight to the floor. The reference
    decays over its run's length (`--num_steps`, 1e6); the benchmark's MuJoCo runs are 1e6 steps."""
    entropy_samples: int = param(10, NonNegative(int))
    """Uniform random actions in [-1, 1]^d per chosen sample in the entropy term (reference: 10)."""
    grad_clip: Optional[float] = param(2.0, OptionalOf(Positive()))
    """Gradient-norm clip of actor and critic updates (reference `--ac_grad_norm 2.0`); none = no clip."""

    def check(self) -> None:
        if self.train_chosen > self.train_samples:
            raise ConfigError(f"train_chosen ({self.train_chosen}) must be <= train_samples ({self.train_samples})")
        if self.entropy_weight_min > self.entropy_weight:
            raise ConfigError(f"entropy_weight_min ({self.entropy_weight_min:g}) must be <= entropy_weight ({self.entropy_weight:g})")


@register
class QVPO(BestOfNActing, DiffusionGenerator, OffPolicyAlgorithm):
    name = "qvpo"
    description = "QVPO: 20-step DDPM fitted by an advantage-weighted denoising loss on 64 own samples, uniform-action entropy term."
    Config = QVPOConfig
    generation_steps = 20
    presets = {
        # eval_particles 1: on the bandit, evaluation scores the generator alone (mode counts, learning tests).
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "eval_particles": 1},
    }

    state_attributes = ("updates",)
    """Besides its networks, optimizers and buffer: the update counter (it sets the decaying entropy weight)."""

    def __init__(self, obs_dim: int, act_dim: int, config: QVPOConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, self.device)
        self.actor = DiffusionActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.updates = 0

    @property
    def particles(self) -> int:
        """Table 2's N for QVPO is 32: the evaluation best-of-N (it acts with best of 4)."""
        return int(self.config.eval_particles or self.config.num_particles)

    # -- the generator ---------------------------------------------------------------------------

    def current_entropy_weight(self) -> float:
        cfg = self.config
        return entropy_weight(cfg.warmup_steps + self.updates, cfg.entropy_weight, cfg.entropy_weight_min, cfg.entropy_decay_steps)

    # -- one update ------------------------------------------------------------------------------
    def policy_loss(self, obs: torch.Tensor, ent_weight: torch.Tensor | float, with_entropy: bool | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Q-weighted denoising loss on `train_samples` policy samples per state of obs [B, o],
        plus the entropy term; returns (loss, mean weight of the chosen samples)."""
        cfg = self.config
        if with_entropy is None:  # the update passes it, decided on the host, so its compiled step never syncs
            with_entropy = float(ent_weight) > 0
        b, k, c = obs.shape[0], cfg.train_samples, cfg.train_chosen
        with torch.no_grad():
            states = repeat_states(obs, k)
            actions = self.generate(states)
            q = self.critic.min_q(states, actions).view(b, k)
            idx, w = qvpo_weights(q, c)
            chosen = actions.view(b, k, -1).gather(1, idx.unsqueeze(-1).expand(-1, -1, self.act_dim)).reshape(b * c, -1)
            chosen_obs = repeat_states(obs, c)
            w = w.reshape(b * c)
            x0, s, weights = [chosen], [chosen_obs], [w]
            if cfg.entropy_samples and with_entropy:
                n = cfg.entropy_samples
                x0.append(torch.empty((b * c * n, self.act_dim), device=obs.device).uniform_(-1.0, 1.0))
                s.append(chosen_obs.repeat(n, 1))
                weights.append(ent_weight * w.repeat(n))
        loss = weighted_ddpm_loss(self.actor, self.schedule, torch.cat(s), torch.cat(x0), torch.cat(weights))
        return loss, w.mean()

    compiled_methods = ("act_step", "update_step")

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        ent_weight = self.current_entropy_weight()
        self.updates += 1  # the decaying weight is computed here and passed as a tensor, so the compiled step
        # sees one graph (a Python float that changes every update would recompile it)
        return self.update_step(batch, torch.tensor(ent_weight, device=self.device), with_entropy=ent_weight > 0)

    def update_step(self, batch: Batch, ent_weight: torch.Tensor, with_entropy: bool) -> dict[str, torch.Tensor]:
        cfg = self.config

        # 1. critic: next action = best of target_particles policy samples by the target critic
        with torch.no_grad():
            next_action = best_of_n(self.generate, self.critic_target.min_q, batch.next_obs, cfg.target_particles)
            next_q = self.critic_target.min_q(batch.next_obs, next_action)
            target = cfg.reward_scale * batch.reward + cfg.gamma * (1.0 - batch.terminated) * next_q
        q = self.critic(batch.obs, batch.action)
        critic_loss = twin_critic_loss(q, target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        clip_gradients(self.critic, cfg.grad_clip)
        self.critic_opt.step()

        # 2. actor: Q-weighted denoising loss with the updated critic
        actor_loss, mean_weight = self.policy_loss(batch.obs, ent_weight, with_entropy)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        clip_gradients(self.actor, cfg.grad_clip)
        self.actor_opt.step()

        # 3. critic targets
        polyak_update(self.critic, self.critic_target, cfg.tau)

        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "q_mean": q.detach().mean(),
            "weight_mean": mean_weight,
            "entropy_weight": ent_weight,
        }
