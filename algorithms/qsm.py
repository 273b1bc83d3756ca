"""QSM: Q-Score Matching (Psenka, Escontrela, Abbeel and Ma, ICML 2024, "Learning a Diffusion Model
Policy from Rewards via Q-Score Matching").

The score of a diffusion policy is regressed onto the action gradient of the critic: at a noisy
replay action a~_i the noise predictor (the score up to the factor -sqrt(1 - abar_i)) is matched to
-M_q grad_a Q(s, a~_i), so the reverse process climbs Q. Not the Langevin "QSM" of the DACER
repository (relax/algorithm/qsm.py there), which fits a score network by Langevin dynamics.

Per update (after the reference, `Alescontrela/score_matching_rl`,
jaxrl5/agents/score_matching/score_matching_learner.py: `update_q`, then `update_actor`):
  1. critic:  a' = policy(s') (best-of-N + exploration noise, current actor and critic),
              y = r_scaled + gamma (1 - d) min_j Q_targ_j(s', a'),  J_Q = sum_j E[0.5 (Q_j(s, a) - y)^2];
              one Adam step, then Polyak targets (rate tau, every update).
  2. actor:   i ~ U{0..T-1}, eps ~ N(0, I), a~_i = sqrt(abar_i) a + sqrt(1 - abar_i) eps (a: the replay action)
              g = 0.5 (grad_a Q_1 + grad_a Q_2)(s, a~_i)   (the critics after step 1)
              L = mean over (b, dims) of (eps_theta(s, a~_i, i) - (-M_q sg(g)))^2,  M_q = 50
Acting: best of N = 32 reverse-process samples by min(Q1, Q2), plus 0.1 N(0, I), clipped.
Evaluation: the same best-of-N without the noise.

Table 3 column: 3x256 ReLU, actor and critic lr 3e-4, 20 diffusion steps, N = 32, warm-up 3e4, batch
256, tau 0.005, reward scale 0.2 (no alpha, no delays). The reference decays the actor's lr on a cosine
over 2e6 steps, uses 2 x 512 networks, T = 5, a learnable Fourier time embedding and clips x_i at every
sampler step; we keep Table 3's constant lr and sizes and the shared DDPM actor of the diffusion baselines
(algorithms/common/diffusion.py: VP betas, the predicted clean action clipped at every step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Optional

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm
from algorithms.common.buffer import Batch
from algorithms.common.config import NonNegative, OptionalOf, Positive, param
from algorithms.common.diffusion_losses import BestOfNDiffusion, BestOfNDiffusionConfig, predict_noise, random_steps, weighted_noise_loss


@dataclasses.dataclass
class QSMConfig(BestOfNDiffusionConfig):
    activation: str = "relu"
    """Table 3: ReLU."""
    q_grad_scale: float = param(50.0, NonNegative())
    """M_q, the global scale of grad_a Q in the target -M_q grad_a Q (the reference's score_matching_config:
    50, 'probably the most important parameter to tune'; 0 turns the actor into a plain noise regressor)."""
    exploration_noise: float = param(0.1, NonNegative())
    """Std of the Gaussian noise added to the acting action and to the critic target's next action (the
    reference's `* 0.1` in `sample_actions` and `update_q`). Table 3 leaves QSM's noise scale blank."""
    target_particles: Optional[int] = param(None, OptionalOf(Positive(int)))
    """Candidates for the critic target's next action a'. None = num_particles: the critic evaluates the
    policy that acts (best-of-N + noise), as the SDAC/DPMD reference does, since Table 3 gives QSM N = 32.
    The QSM reference has no best-of-N and samples one action (+ noise): `--set target_particles=1`."""


def qsm_target(critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], obs: torch.Tensor, noisy_action: torch.Tensor,
               m_q: float) -> torch.Tensor:
    """-M_q * g [B, d], g = the mean over the twin critic's members of grad_a Q_j(s, a) at a = noisy_action.

    critic(obs, a) -> [2, B]. Each row's gradient is that of its own Q (the rows are independent), so one
    backward pass of the sum over rows and members gives every row's sum of the two gradients."""
    a = noisy_action.detach().requires_grad_(True)
    q = critic(obs, a)
    (grad,) = torch.autograd.grad(q.sum(), a)
    return (-m_q * grad / q.shape[0]).detach()


@register
class QSM(BestOfNDiffusion):
    name = "qsm"
    description = "QSM: 20-step DDPM actor whose noise prediction is regressed onto -M_q grad_a Q, best-of-N acting."
    Config = QSMConfig
    generation_steps = 20
    update_cycle = 1
    presets = {
        # eval_particles 1: on the bandit, evaluation scores the generator alone (mode counts, learning tests).
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "eval_particles": 1},
    }

    def exploration_std(self) -> float:
        return float(self.config.exploration_noise)

    def actor_loss(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, target): the Q-score matching loss at noisy versions of the replay actions `action` [B, d]."""
        i = random_steps(obs.shape[0], self.schedule.steps, self.device)
        noisy = self.schedule.q_sample(action, torch.randn_like(action), i)
        self.critic.requires_grad_(False)  # input gradients only
        try:
            target = qsm_target(self.critic, obs, noisy, self.config.q_grad_scale)
        finally:
            self.critic.requires_grad_(True)
        return weighted_noise_loss(predict_noise(self.actor, obs, noisy, i), target), target

    compiled_methods = ("act_step", "update_step")

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1  # counted outside the compiled step (a counter would recompile it)
        return self.update_step(batch)

    def update_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config

        # 1. critic, then targets
        next_action = self.policy_actions(batch.next_obs, cfg.target_particles)
        critic_loss, q = self.critic_loss(batch, next_action)
        self.critic_opt.step()
        self.update_targets()

        # 2. actor on the replay actions, against the stepped critic
        actor_loss, target = self.actor_loss(batch.obs, batch.action)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "q_mean": q.mean(),
            "target_norm": target.norm(dim=-1).mean(),
        }
