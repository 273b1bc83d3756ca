"""QVPO: Q-weighted Variational Policy Optimization (Ding et al., NeurIPS 2024).

The policy is a T = 20 step DDPM (cosine schedule). It is trained by a *Q-weighted* denoising loss
on its own samples: for each batch state, draw 64 actions from the current policy, weight them by
their advantage over the sampled mean, and fit the DDPM to the weighted actions. A second, smaller
weighted term on uniform random actions keeps the policy's entropy up (the paper's "entropy
regularisation" of a diffusion policy, whose density it cannot evaluate).

Per update (the order of the authors' code, `wadx2019/qvpo`, agent/qvpo.py `QVPO.train` with main.py's
`--weighted --aug` of its README):
  1. critic:  a' = best of `target_particles` (4) samples of the Polyak target actor at s' by min Q_targ;
              y = r_scaled + gamma (1 - d) min_i Q_targ_i(s', a');  J_Q = sum_i E[(Q_i - y)^2]
              (`F.mse_loss(q1, y) + F.mse_loss(q2, y)`); gradient norm clipped to 2.0.
  2. actor (after the critic's step, as the reference code orders it), on a fresh batch of states:
              a_1..a_64 ~ pi(.|s) (the full stochastic reverse process, clipped to [-1, 1]);
              q_j = min(Q1, Q2)(s, a_j),  V(s) = mean_j q_j;
              keep the `train_chosen` (1) samples with the highest q; weight w = max(q - V(s), 0);
              add `entropy_samples` (10) uniform actions per kept sample, each weighted w_ent(k) * w;
              L = mean over the M rows and d dims of  w_m (eps_theta(s_m, x_i, i) - eps)^2,
                  x_i = sqrt(abar_i) a_m + sqrt(1 - abar_i) eps,  i ~ U{0..T-1},  eps ~ N(0, I);
              gradient norm clipped to 2.0.
  3. targets: Polyak on the critic and the target actor with rate tau, every update.
The entropy weight w_ent decays linearly in env steps from 0.02 to 0.002 over the run's length (reference
main.py: max(0.002, 0.02 (1 - env_step / num_steps))), with env_step = warmup_steps + updates so far and the
run's length the harness gives (`run_steps`, the run's --steps; `default_run_steps` 5e6 outside a run).
Networks as the reference builds them (agent/model.py, agent/helpers.py): truncated-normal weights, zero
biases, Adam eps 1e-5, the step embedding's unscaled sinusoid and 256-wide time MLP. Each of these is a
config field; docs/baselines-vs-reference.md has the sources.

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
from algorithms.common.config import (BestOfNConfig, Boolean, ConfigError, Interval, NonNegative, OffPolicyConfig, OptionalOf,
                                      Positive, param)
from algorithms.common.critics import TwinCritic, td_target
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor, DiffusionConfig, DiffusionGenerator
from algorithms.common.diffusion_losses import DiffusionQLNetsConfig, clip_gradients, twin_mse_loss, weighted_ddpm_loss
from algorithms.common.nets import truncated_normal_init_
from algorithms.common.targets import polyak_update


def qvpo_weights(q: torch.Tensor, chosen: int) -> tuple[torch.Tensor, torch.Tensor]:
    """QVPO's advantage weights from q [B, K] (min Q of K policy samples per state): the indices
    [B, chosen] of the `chosen` highest q per state and their weights max(q - mean_K q, 0) [B, chosen]."""
    v = q.mean(dim=1, keepdim=True)
    top, idx = q.topk(chosen, dim=1)
    return idx, (top - v).clamp_min(0.0)


def entropy_weight(step: int, start: float, end: float, decay_steps: int | float) -> float:
    """The reference code's linear decay in env steps: min(start, max(end, start (1 - step / decay_steps)))."""
    return min(start, max(end, start * (1.0 - step / decay_steps)))


@dataclasses.dataclass
class QVPOConfig(DiffusionQLNetsConfig, BestOfNConfig, DiffusionConfig, OffPolicyConfig):
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
    """Next action in the critic target: best of this many policy samples, selected by the target critic
    (reference `--target_sample 4`)."""
    target_actor: bool = param(True, Boolean())
    """Whether the critic target's samples come from a Polyak-averaged copy of the actor (rate tau, every
    update). True: the authors' code (wadx2019/qvpo, agent/qvpo.py: `self.actor_target(next_states, ...,
    q_func=self.critic_target)`, `update_actor_target_every` 1). False: the current actor, as
    mahaitongdae/qvpo's `QVPOv2` does unless `--use_action_target` (a fork) and relax's QVPO port
    (relax/algorithm/qvpo.py) does. Chosen: the authors' code. Acting uses the current actor either way."""
    fresh_actor_batch: bool = param(True, Boolean())
    """Whether the actor's loss draws its own batch of states from the buffer. True: the reference's
    `action_aug` samples `self.memory.sample(batch_size)` anew (agent/qvpo.py); False: the critic's batch
    (used before)."""
    default_run_steps: int = param(5_000_000, Positive(int))
    """The run's length when the algorithm is used outside a run (latency, unit tests: `run_steps` unset); in a
    run the harness gives the run's own --steps, over which the reference decays (main.py's `num_steps`).
    5e6 is the SOM paper's budget on six of its nine tasks."""
    entropy_weight: float = param(0.02, NonNegative())
    """Initial weight of the uniform-action entropy term, as a multiple of the chosen sample's weight
    (reference `--entropy_alpha 0.02`). 0 turns the entropy term off."""
    entropy_weight_min: float = param(0.002, NonNegative())
    """The entropy weight decays linearly to this floor (reference main.py: 0.002)."""
    entropy_decay_steps: Optional[int] = param(None, OptionalOf(Positive(int)))
    """Env steps over which the entropy weight decays from entropy_weight to the floor. None = the run's length
    (`run_steps`), as the reference (main.py: `steps / num_steps`). A number fixes it (1e6 was the default before,
    which on a 5e6-step run reached the floor at a fifth of the run; relax's port decays over 2e5 updates)."""
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
    revision = 2  # issue 25: defaults moved to the reference code's (docs/baselines-vs-reference.md)
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
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                 cfg.critic_action_scale).to(self.device)
        if cfg.init == "truncated_normal":
            truncated_normal_init_(self.actor)
            truncated_normal_init_(self.critic)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if cfg.target_actor:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device, eps=cfg.adam_eps)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device, eps=cfg.adam_eps)
        self.updates = 0

    @property
    def particles(self) -> int:
        """Table 2's N for QVPO is 32: the evaluation best-of-N (it acts with best of 4)."""
        return int(self.config.eval_particles or self.config.num_particles)

    # -- the generator ---------------------------------------------------------------------------

    def current_entropy_weight(self) -> float:
        cfg = self.config
        run_steps = self.run_steps or cfg.default_run_steps
        decay_steps = run_steps if cfg.entropy_decay_steps is None else cfg.entropy_decay_steps
        num, den = self.update_ratio  # the reference decays over env steps: updates / R of them since warm-up
        return entropy_weight(cfg.warmup_steps + self.updates * den / num, cfg.entropy_weight, cfg.entropy_weight_min, decay_steps)

    def target_samples(self, obs: torch.Tensor) -> torch.Tensor:
        """Policy samples for the critic target's best-of-N: the target actor's (`target_actor`) or the current's."""
        actor = getattr(self, "actor_target", None) or self.actor
        return actor.sample(obs, self.schedule, self.config.prior_std).clamp(-1.0, 1.0)

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

    def train_step(self) -> dict[str, torch.Tensor]:
        """`critic_updates` - 1 critic steps, the critic's batch, then (`fresh_actor_batch`) the states of an
        independent batch for the actor."""
        cfg = self.config
        self.extra_critic_steps()
        batch = self.buffer.sample(cfg.batch_size)
        policy_obs = self.buffer.storage["obs"][self.buffer.sample_indices(cfg.batch_size)] if cfg.fresh_actor_batch else None
        return self.update(batch, policy_obs)

    def update(self, batch: Batch, policy_obs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One update; the actor's loss at states `policy_obs` (default: the batch's)."""
        ent_weight = self.current_entropy_weight()
        self.updates += 1  # the decaying weight is computed here and passed as a tensor, so the compiled step
        # sees one graph (a Python float that changes every update would recompile it)
        return self.update_step(batch, batch.obs if policy_obs is None else policy_obs, torch.tensor(ent_weight, device=self.device),
                                with_entropy=ent_weight > 0)

    def fit_critic(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One clipped critic step towards r + gamma (1 - d) min Q_targ(s', a'), a' the best of `target_particles`
        (target) policy samples by the target critic; returns (loss, Q [2, B]), detached."""
        cfg = self.config
        with torch.no_grad():
            next_action = best_of_n(self.target_samples, self.critic_target.min_q, batch.next_obs, cfg.target_particles)
            next_q = self.critic_target.min_q(batch.next_obs, next_action)
            target = td_target(batch.reward, next_q, batch.terminated, cfg.gamma, cfg.reward_scale)
        q = self.critic(batch.obs, batch.action)
        critic_loss = twin_mse_loss(q, target, cfg.critic_loss_weight)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        clip_gradients(self.critic, cfg.grad_clip)
        self.critic_opt.step()
        return critic_loss.detach(), q.detach()

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        critic_loss, q = self.fit_critic(batch)
        return {"critic_loss": critic_loss, "q_mean": q.mean()}

    def update_step(self, batch: Batch, policy_obs: torch.Tensor, ent_weight: torch.Tensor, with_entropy: bool) -> dict[str, torch.Tensor]:
        cfg = self.config

        # 1. critic: next action = best of target_particles (target) policy samples by the target critic
        critic_loss, q = self.fit_critic(batch)

        # 2. actor: Q-weighted denoising loss with the updated critic
        actor_loss, mean_weight = self.policy_loss(policy_obs, ent_weight, with_entropy)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        clip_gradients(self.actor, cfg.grad_clip)
        self.actor_opt.step()

        # 3. targets
        polyak_update(self.critic, self.critic_target, cfg.tau)
        if cfg.target_actor:
            polyak_update(self.actor, self.actor_target, cfg.tau)

        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "q_mean": q.mean(),
            "weight_mean": mean_weight,
            "entropy_weight": ent_weight,
        }
