"""MFP: Mean Flow Policy with instantaneous velocity constraint (Zhan et al., ICLR 2026).

A MeanFlow actor u_theta(z, r, t, s) generates an action in one network call. There is no Q
gradient in the actor: it regresses, by the MeanFlow objective, onto the straight path from noise to
the best of N of its own samples as rated by the critic. Table 3 column of the SOM paper: 3x256 GELU,
actor and critic lr 1e-4, warm-up 3e4, batch 256, tau 0.005, reward scale 0.2, N = 32 particles.

Time convention. MFP's paper runs time from noise (0) to action (1): a = eps + u(eps, 0, 1, s) with
target velocity a* - eps. We map it to SOM's and MeanFlow's convention (algorithms/common/meanflow.py),
t' = 1 - t: time runs from the action (t = 0) to the noise (t = 1), z_t = (1 - t) a* + t eps, the
conditional velocity is v = eps - a* (MFP's a* - a(0), negated with the time), and a one-step sample
is a = eps - u(eps, 0, 1, s). The two parameterisations are the same family of functions
(u_MFP(z, r, t) = -u(z, 1 - t, 1 - r)), so nothing but the sign bookkeeping changes.

Per update:
  1. best-of-N:  for every s in the batch and every s', N one-step candidates, keep
                 a* = argmax min(Q1, Q2)        (one batched pass for both, current networks)
  2. critic:     y = r_scaled + gamma (1 - d) min_i Q_targ_i(s', a*(s')),  J_Q = sum_i E[0.5 (Q_i - y)^2]
  3. actor:      eps ~ N(0, I), (r, t) with r <= t, z_t = (1 - t) a* + t eps, v = eps - a*
                 L_MF  = || u(z_t, r, t) - sg(v - (t - r)(v . d_z u + d_t u)) ||^2    (MeanFlow, JVP)
                 L_IVC = || u(z_t, t, t) - v ||^2                  (instantaneous velocity constraint)
                 loss  = L_MF + lambda L_IVC,  lambda = 1
  4. targets:    Polyak with rate tau, every update.
Acting: a* of best-of-N (the env action is a*, Table 3 lists no exploration noise for MFP).
Evaluation mode: the same best-of-N (`--set eval_particles=1` scores the generator alone).

Every choice the paper leaves open is a config field below whose docstring says what was chosen and
why.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.buffer import Batch
from algorithms.common.config import BestOfNConfig, Fraction, NonNegative, OffPolicyConfig, OneOf, param
from algorithms.common.critics import TwinCritic, td_target, twin_critic_loss
from algorithms.common.meanflow import MeanFlowActor, MeanFlowPolicy, adaptive_weighted_loss, meanflow_target, sample_times
from algorithms.common.targets import polyak_update


@dataclasses.dataclass
class MFPConfig(BestOfNConfig, OffPolicyConfig):
    actor_lr: float = 1e-4
    """Table 3."""
    critic_lr: float = 1e-4
    """Table 3."""
    ivc_weight: float = param(1.0, NonNegative())
    """lambda of L_MF + lambda L_IVC (the MFP paper: 1)."""
    r_equals_t_fraction: float = param(0.0, Fraction())
    """Share of the batch whose MeanFlow term uses r = t. MeanFlow draws 75% with r = t; at r = t its loss
    is exactly L_IVC, which MFP adds explicitly for every sample with weight lambda, so the MeanFlow term
    here spends the whole batch on r < t. (r, t) are the min and max of two U(0, 1) draws (`sample_times`'
    'sorted_pair'; MFP has no public code and the SOM paper does not state its time sampler)."""
    loss_weight_power: float = param(0.0, NonNegative())
    """MeanFlow's adaptive weight 1 / sg(L + 0.01)^p on L_MF. MFP writes both terms as plain squared errors
    (p = 0), which also keeps lambda = 1 meaningful; the conditional velocity eps - a* is O(1) here (no
    score scale), so the plain loss has none of the blow-ups that led SOM to p = 1."""
    regression_target: str = param("best_of_n", OneOf(("best_of_n", "buffer")))
    """'best_of_n': a* is recomputed for the batch's states with the current actor and critic (the SOM
    paper: 'N candidate actions are sampled from the current policy and the one with the highest learned
    Q-value is retained'). 'buffer': regress onto the stored action (a best-of-N of an older policy); the
    SOM paper's related work also says MFP builds its targets 'from replay buffer samples'."""


def flow_path(a_star: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_t, v): the straight path z_t = (1 - t) a* + t eps and its velocity v = eps - a* (our time)."""
    return (1 - t) * a_star + t * eps, eps - a_star


def mfp_losses(
    u_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    a_star: torch.Tensor,
    eps: torch.Tensor,
    r: torch.Tensor,
    t: torch.Tensor,
    loss_weight_power: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_MF, L_IVC) for targets a* [B, d], noise eps [B, d] and times r <= t [B, 1].

    Both are per-sample squared norms summed over action dimensions, averaged over the batch.
    """
    a_star = a_star.detach()
    z, v = flow_path(a_star, eps, t)
    u, u_tgt = meanflow_target(u_fn, z, r, t, v)
    mf_loss = adaptive_weighted_loss(u, u_tgt, loss_weight_power)
    ivc_loss = ((u_fn(z, t, t) - v) ** 2).sum(dim=-1).mean()
    return mf_loss, ivc_loss


@register
class MFP(MeanFlowPolicy, OffPolicyAlgorithm):
    name = "mfp"
    description = "MFP: one-step MeanFlow actor regressed on best-of-N targets with an instantaneous velocity constraint."
    Config = MFPConfig
    presets = {
        **OffPolicyAlgorithm.presets,
        # `make demo`: Hopper-v4 for 8,000 env steps per seed on one CPU thread (1/625 of Table 1's 5M), beside SOM's
        # and SAC's demo presets at the same scale; everything else (learning rates 1e-4, N = 32, tau, gamma) stays
        # Table 3's. Width 3 x 64: Table 3's three hidden layers at a quarter of the 256 nodes (the same for all
        # three). batch 64: a quarter of 256, with the width; MFP's update scores 2 x B x N best-of-N candidates,
        # so at 256 one update costs ~3.5x more on a CPU core. warmup_steps 64: Table 3's 3e4 is 0.6% of 5M, 48
        # steps of 8,000, raised to one batch.
        "demo": {"hidden_sizes": (64, 64, 64), "batch_size": 64, "warmup_steps": 64},
    }
    generation_steps = 1
    prior_std = 1.0
    """MFP's input noise is N(0, I)."""

    def __init__(self, obs_dim: int, act_dim: int, config: MFPConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.actor = MeanFlowActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                 cfg.critic_action_scale).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)

    # acting: a* of best-of-N one-step candidates, no exploration noise (MeanFlowPolicy)

    # -- one update ---------------------------------------------------------------------------------
    compiled_methods = ("act_step", "update")  # no counters: the update is compiled whole

    def fit_critic(self, batch: Batch, next_action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One critic step towards r + gamma (1 - d) min Q_targ(s', next_action); returns (loss, Q [2, B],
        min Q_targ [B]), detached."""
        cfg = self.config
        with torch.no_grad():
            next_q = self.critic_target.min_q(batch.next_obs, next_action)
            target = td_target(batch.reward, next_q, batch.terminated, cfg.gamma, cfg.reward_scale)
        q = self.critic(batch.obs, batch.action)
        critic_loss = twin_critic_loss(q, target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        return critic_loss.detach(), q.detach(), next_q

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            next_action = self.best_of_n(batch.next_obs, self.config.num_particles)
        critic_loss, q, _ = self.fit_critic(batch, next_action)
        return {"critic_loss": critic_loss, "q_mean": q.mean()}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        b = batch.obs.shape[0]

        # 1. best-of-N for s (regression target) and s' (critic's next action) in one pass
        with torch.no_grad():
            both = self.best_of_n(torch.cat([batch.obs, batch.next_obs]), cfg.num_particles)
            a_star, next_action = both[:b], both[b:]

        # 2. critic
        critic_loss, q, next_q = self.fit_critic(batch, next_action)

        # 3. actor: MeanFlow + lambda * IVC towards a* (no Q gradient)
        if cfg.regression_target == "buffer":
            a_star = batch.action
        r, t = sample_times(b, cfg.r_equals_t_fraction, self.device)
        eps = torch.randn_like(a_star)
        mf_loss, ivc_loss = mfp_losses(lambda z, r_, t_: self.actor(z, r_, t_, batch.obs), a_star, eps, r, t,
                                       cfg.loss_weight_power)
        actor_loss = mf_loss + cfg.ivc_weight * ivc_loss
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        # 4. targets
        polyak_update(self.critic, self.critic_target, cfg.tau)

        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "mf_loss": mf_loss.detach(),
            "ivc_loss": ivc_loss.detach(),
            "q_mean": q.mean(),
            "target_q": next_q.mean(),
        }
