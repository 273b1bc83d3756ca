"""QSM: Q-Score Matching (Psenka, Escontrela, Abbeel and Ma, ICML 2024, "Learning a Diffusion Model
Policy from Rewards via Q-Score Matching"), in the two implementations the SOM paper may have run
(`method`; docs/baselines-vs-reference.md has the evidence):

'langevin': relax's QSM (mahaitongdae/diffusion_policy_online_rl, relax/algorithm/qsm.py,
relax/network/qsm.py, relax/utils/langevin.py; run by its scripts/train_mujoco.py with 3 x 256 ReLU
networks, 20 sampler steps and 32 particles: Table 3's QSM column). A score network s_phi(s, a) (an MLP
on [s, a]) is regressed onto the action gradient of the critic at the replay actions, and the policy is
Langevin dynamics on it:
  1. critic:  a' = best of N Langevin samples at s' by the current min(Q1, Q2) (no added noise),
              y = r_scaled + gamma (1 - d) min_j Q_targ_j(s', a'); one Adam step, then Polyak targets.
  2. actor:   g = grad_a Q_j(s, a) / reward_scale of the member j with the smaller Q_j(s, a) (the critics
              after step 1; raw-reward units, `q_grad_raw_reward`), at the replay action a;
              L = mean over (b, dims) of (s_phi(s, a) - g)^2.
  Sampler: x_0 ~ N(0, I); for t = 0..T-1, delta_t = 1 - t / T:
              x <- clip(x + delta_t / 2 * s_phi(s, x) + sqrt(delta_t) z_t, -1, 1).
  Acting and evaluation: best of N = 32 Langevin samples by min(Q1, Q2); no added noise.

'score_matching' (default): Psenka et al.'s own method (`Alescontrela/score_matching_rl`). The score of a
diffusion policy is regressed onto the action gradient of the critic: at a noisy replay action a~_i the
noise predictor (the score up to the factor -sqrt(1 - abar_i)) is matched to -M_q grad_a Q(s, a~_i), so
the reverse process climbs Q.

Per update of 'score_matching' (after the reference, `Alescontrela/score_matching_rl`,
jaxrl5/agents/score_matching/score_matching_learner.py: `update_q`, then `update_actor`):
  1. critic:  a' = policy(s') (best-of-N + exploration noise, current actor and critic),
              y = r_scaled + gamma (1 - d) min_j Q_targ_j(s', a'),  J_Q = sum_j E[0.5 (Q_j(s, a) - y)^2];
              one Adam step, then Polyak targets (rate tau, every update).
  2. actor:   i ~ U{0..T-1}, eps ~ N(0, I), a~_i = sqrt(abar_i) a + sqrt(1 - abar_i) eps (a: the replay action)
              g = 0.5 (grad_a Q_1 + grad_a Q_2)(s, a~_i) / reward_scale   (the critics after step 1, in the
              reference's raw-reward units: `q_grad_raw_reward`)
              L = mean over (b, dims) of (eps_theta(s, a~_i, i) - (-M_q sg(g)))^2,  M_q = 50
Acting: best of N = 32 reverse-process samples by min(Q1, Q2), plus 0.1 N(0, I), clipped.
Evaluation: the same best-of-N without the noise.

Table 3 column: 3x256 ReLU, actor and critic lr 3e-4, 20 diffusion steps, N = 32, warm-up 3e4, batch
256, tau 0.005, reward scale 0.2 (no alpha, no delays); the actor's rate is constant (`actor_lr_end_factor`).
Psenka's code decays it on a cosine over 2e6 steps, uses 2 x 512 networks, T = 5, a learnable Fourier time
embedding and clips x_i at every sampler step; 'score_matching' keeps Table 3's sizes and the shared DDPM
actor of the diffusion baselines (algorithms/common/diffusion.py: VP betas, the predicted clean action
clipped at every step).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Optional

import torch
from torch import nn

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm
from algorithms.common.buffer import Batch
from algorithms.common.config import Boolean, NonNegative, OneOf, OptionalOf, Positive, param
from algorithms.common.diffusion import DDPMSchedule
from algorithms.common.diffusion_losses import BestOfNDiffusion, BestOfNDiffusionConfig, predict_noise, random_steps, weighted_noise_loss
from algorithms.common.nets import mlp


@dataclasses.dataclass
class QSMConfig(BestOfNDiffusionConfig):
    activation: str = "relu"
    """Table 3: ReLU."""
    method: str = param("score_matching", OneOf(("score_matching", "langevin")))
    """Which QSM. 'score_matching': Psenka et al.'s code (Alescontrela/score_matching_rl; a DDPM whose noise
    prediction is regressed onto -M_q grad_a Q at noisy replay actions), the method of the paper the SOM paper
    cites. 'langevin': relax's QSM (mahaitongdae/diffusion_policy_online_rl, relax/algorithm/qsm.py; a score
    network s_phi(s, a) regressed onto grad_a Q at the replay actions, Langevin sampling), which its
    scripts/train_mujoco.py runs with ReLU everywhere, 3 x 256, 20 steps and 32 particles: Table 3's QSM column.
    Psenka's code has a ReLU critic but a Mish actor, 2 x 512 and T = 5 with one sample; 3 x 256, 20 steps and 32
    particles are also what Table 3 gives every best-of-N diffusion baseline, i.e. the SOM protocol, so both are
    plausible. Chosen: the reference code's method, 'score_matching' (docs/baselines-vs-reference.md)."""
    q_grad_scale: float = param(50.0, NonNegative())
    """'score_matching': M_q, the global scale of grad_a Q in the target -M_q grad_a Q (the reference's
    score_matching_config: 50, 'probably the most important parameter to tune'; 0 turns the actor into a plain
    noise regressor)."""
    q_grad_raw_reward: bool = param(True, Boolean())
    """Whether the actor's target uses the gradient of Q in raw-reward units, grad_a Q / reward_scale. Both
    references train their critic on unscaled rewards: Psenka's `update_q` bootstraps `batch["rewards"]`, so its
    M_q = 50 acts on raw-reward gradients, and relax's QSM (unlike its SDAC and DPMD) never applies a reward scale,
    so its score network fits raw-reward gradients, whose size against the Langevin noise sets how far the sampler
    climbs. Our critic learns Table 3's 0.2-scaled rewards; without this the 'score_matching' target -M_q grad_a Q
    acts as M_q = 50 * 0.2 = 10 in the reference's units (as before) and the 'langevin' drift is a fifth of the
    reference's. False: the scaled critic's gradient."""
    actor_lr_end_factor: Optional[float] = None
    """Constant actor rate (none), as before: Table 3 gives 3e-4 and the two references disagree. Psenka's code
    decays it on a cosine to 0 over 2e6 steps (`optax.cosine_decay_schedule`, not implemented); relax's QSM
    linearly to 3e-5 between its 25,000th and 75,000th step, like its SDAC (`--set actor_lr_end_factor=0.1`)."""
    exploration_noise: Optional[float] = param(None, OptionalOf(NonNegative()))
    """Std of the Gaussian noise added to the acting action and to the critic target's next action. None = the
    method's reference: 0.1 for 'score_matching' (the `* 0.1` in `sample_actions` and `update_q`), 0 for
    'langevin' (relax's QSM `get_action` adds none). Table 3 leaves QSM's noise scale blank."""
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


def min_member_gradient(critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], obs: torch.Tensor,
                        action: torch.Tensor) -> torch.Tensor:
    """g [B, d]: grad_a Q_j(s, a) of the member j with the smaller Q_j(s, a), row by row (relax's QSM:
    `jnp.where(q1 < q2, q1_score, q2_score)`; ties take member 2, as there). critic(obs, a) -> [2, B] must accept
    a [2, B, d] action (each member then reads its own copy; the twin critic is one ensemble), so one backward
    pass gives both members' gradients."""
    a = action.detach().unsqueeze(0).expand(2, -1, -1).clone().requires_grad_(True)
    q = critic(obs.unsqueeze(0).expand(2, -1, -1), a)  # [2, B]: member j at its own copy a[j]
    (grad,) = torch.autograd.grad(q.sum(), a)
    return torch.where((q[0] < q[1]).unsqueeze(-1), grad[0], grad[1]).detach()


class LangevinScoreActor(nn.Module):
    """relax's QSM policy: a score network s_phi(s, a) -> R^d (QScoreNet: an MLP on [s, a], relax/network/blocks.py)
    sampled by `diffusion_steps` steps of Langevin dynamics (relax/utils/langevin.py `LangevinDynamics.sample`)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: "QSMConfig"):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, act_dim, cfg.hidden_sizes, cfg.activation)
        self.act_dim = act_dim
        self.steps = int(cfg.diffusion_steps)

    def score(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1))

    def sample(self, obs: torch.Tensor, schedule: DDPMSchedule | None = None, prior_std: float = 1.0,
               x_init: torch.Tensor | None = None, return_path: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """One Langevin sample per row of obs [B, o] -> [B, d], from x_init (default prior_std N(0, I)):
        x <- clip(x + delta_t / 2 * s_phi(s, x) + sqrt(delta_t) z_t, -1, 1), delta_t = 1 - t / T, t = 0..T-1.
        With return_path the T + 1 points. `schedule` is unused (the DDPM's; the generator interface passes it)."""
        b = obs.shape[0]
        x = prior_std * torch.randn((b, self.act_dim), device=obs.device) if x_init is None else x_init
        noise = torch.randn((self.steps, b, self.act_dim), device=obs.device)
        path = [x]
        for t in range(self.steps):
            delta = 1.0 - t / self.steps
            x = (x + 0.5 * delta * self.score(obs, x) + math.sqrt(delta) * noise[t]).clamp(-1.0, 1.0)
            if return_path:
                path.append(x)
        return path if return_path else x


@register
class QSM(BestOfNDiffusion):
    name = "qsm"
    revision = 2  # issue 25: defaults moved to the reference code's (docs/baselines-vs-reference.md)
    description = "QSM: 20-step DDPM actor whose noise prediction is regressed onto -M_q grad_a Q, best-of-N acting."
    Config = QSMConfig
    generation_steps = 20
    update_cycle = 1
    presets = {
        # eval_particles 1: on the bandit, evaluation scores the generator alone (mode counts, learning tests).
        # q_grad_scale 10: M_q acts on raw-reward gradients (q_grad_raw_reward), and the bandit's reward, 1 at
        # modes of width 0.3 in a box 2.5 wide, is far steeper per unit action than MuJoCo's: at M_q = 50 the
        # targets throw the samples against the box (generator 0.008 after 2,000 steps, measured); 10 is the
        # value the bandit runs had in effect before (50 times the reward scale 0.2).
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "eval_particles": 1, "q_grad_scale": 10.0},
    }

    def build_actor(self, obs_dim: int, act_dim: int) -> nn.Module:
        if self.config.method == "langevin":
            return LangevinScoreActor(obs_dim, act_dim, self.config)
        return super().build_actor(obs_dim, act_dim)

    def exploration_std(self) -> float:
        cfg = self.config
        if cfg.exploration_noise is not None:
            return float(cfg.exploration_noise)
        return 0.1 if cfg.method == "score_matching" else 0.0

    def actor_loss(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, target): the method's loss at the replay actions `action` [B, d]: 'langevin', the score network's
        regression onto the smaller member's grad_a Q at `action`; 'score_matching', the Q-score matching loss at
        noisy versions of `action`."""
        cfg = self.config
        self.critic.requires_grad_(False)  # input gradients only
        try:
            if cfg.method == "langevin":
                target = min_member_gradient(self.critic, obs, action)
                if cfg.q_grad_raw_reward:
                    target = target / cfg.reward_scale
                return ((self.actor.score(obs, action) - target) ** 2).mean(), target
            i = random_steps(obs.shape[0], self.schedule.steps, self.device)
            noisy = self.schedule.q_sample(action, torch.randn_like(action), i)
            m_q = cfg.q_grad_scale / cfg.reward_scale if cfg.q_grad_raw_reward else cfg.q_grad_scale
            target = qsm_target(self.critic, obs, noisy, m_q)
        finally:
            self.critic.requires_grad_(True)
        return weighted_noise_loss(predict_noise(self.actor, obs, noisy, i), target), target

    compiled_methods = ("act_step", "update_step")

    def critic_next_actions(self, next_obs: torch.Tensor) -> torch.Tensor:
        """The critic target's actions: best of `target_particles` current-actor samples (QSM's own count)."""
        return self.policy_actions(next_obs, self.config.target_particles)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.schedule_actor_lr(self.updates)  # the actor steps every update
        self.updates += 1  # counted outside the compiled step (a counter would recompile it)
        return self.update_step(batch)

    def update_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # 1. critic, then targets
        critic_loss, q = self.critic_loss(batch, self.critic_next_actions(batch.next_obs))
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
