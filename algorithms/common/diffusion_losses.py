"""What SDAC, DPMD and QSM share: a 20-step DDPM actor (algorithms/common/diffusion.py) that acts by
best-of-N over a plain MSE twin critic, and trains its noise predictor eps_theta(s, x_i, i) by a
(weighted) regression at random diffusion steps. The three differ only in the regression's inputs,
targets and weights, which live in their own files; this module holds the common parts:

- `predict_noise`: eps_theta at per-row step indices (the training-time call of the actor's network).
- `weighted_ddpm_loss`: the (weighted) DDPM loss of QVPO and DIPO on given clean actions;
  `clip_gradients`.
- `weighted_noise_loss`: mean over rows and action dimensions of w * (eps_theta - target)^2, the
  `weighted_p_loss` / `reverse_samping_weighted_p_loss` of the relax reference code
  (mahaitongdae/diffusion_policy_online_rl, relax/utils/diffusion.py), QSM's loss with w = 1.
- `BestOfNDiffusionConfig`, `NoiseTemperatureConfig`: the shared Table 3 defaults.
- `BestOfNDiffusion`: actor, twin critic and targets, the generator interface, the policy's actions
  for training (best-of-N + exploration noise, as the reference's `get_action`), the MSE critic step
  and SDAC/DPMD's exploration-noise temperature step.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.best_of_n import BestOfNActing, best_of_n
from algorithms.common.buffer import Batch
from algorithms.common.config import BestOfNConfig, Boolean, OffPolicyConfig, Positive, TemperatureConfig, param
from algorithms.common.critics import TwinCritic, twin_critic_loss
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor, DiffusionConfig, DiffusionGenerator
from algorithms.common.targets import polyak_update
from algorithms.common.temperature import LogAlpha, gaussian_noise_entropy, noise_alpha_loss


# -- maths ------------------------------------------------------------------------------------------
def predict_noise(actor: DiffusionActor, obs: torch.Tensor, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """eps_theta(s, x, i) [B, d] for integer step indices i [B] (0 = the step nearest the action), the same
    network call as the reverse process of `DiffusionActor.sample` makes at step i."""
    emb = actor.time_embed(actor.steps)[i]  # all T embeddings once, then one row per sample
    return actor.net(torch.cat([obs, x, emb], dim=-1))


def weighted_noise_loss(noise_pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean over every row and action dimension of w * (eps_pred - target)^2.

    noise_pred [..., d] and target [..., d] broadcast against each other; weights [...] (one per row,
    shared by the row's d dimensions) or None for the plain mean squared error. The mean (not a sum over
    dimensions) is the relax reference code's `optax.squared_error(...).mean()`."""
    sq = (noise_pred - target) ** 2
    if weights is None:
        return sq.mean()
    return (weights.unsqueeze(-1) * sq).mean()


def random_steps(batch: int, steps: int, device: torch.device) -> torch.Tensor:
    """Diffusion step indices i ~ U{0, ..., T-1} (every reference: `randint(0, T)`)."""
    return torch.randint(0, steps, (batch,), device=device)


def weighted_ddpm_loss(actor: DiffusionActor, schedule: DDPMSchedule, obs: torch.Tensor, x0: torch.Tensor,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """The DDPM noise-prediction loss of Ho et al. at one uniformly drawn step per row, optionally weighted
    per row: mean over rows and action dims of w_m (eps_theta(s_m, x_i, i) - eps)^2 with
    x_i = sqrt(abar_i) x0_m + sqrt(1 - abar_i) eps (the `WeightedL2` of the Diffusion-QL lineage that
    QVPO's and DIPO's reference code share). weights [M] or None (= 1)."""
    i = random_steps(x0.shape[0], schedule.steps, x0.device)
    noise = torch.randn_like(x0)
    return weighted_noise_loss(predict_noise(actor, obs, schedule.q_sample(x0, noise, i), i), noise, weights)


def clip_gradients(module: torch.nn.Module, max_norm: float | None) -> None:
    """Clip the module's gradient norm to max_norm (None: no clipping)."""
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)


# -- configs ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class BestOfNDiffusionConfig(BestOfNConfig, DiffusionConfig, OffPolicyConfig):
    """Table 3's common column of SDAC, DPMD and QSM: 3 x 256, actor and critic lr 3e-4 (the shared
    defaults), 20 diffusion steps, N = 32, warm-up 3e4, batch 256, tau 0.005, reward scale 0.2."""

    activation: str = "mish"
    """Table 3: Mish for SDAC and DPMD (QSM overrides with ReLU)."""
    act_with_target_actor: bool = param(False, Boolean())
    """Whether acting uses a Polyak-averaged copy of the actor (SDAC and DPMD: True, see NoiseTemperatureConfig);
    False for QSM, whose reference acts with the current actor."""


@dataclasses.dataclass
class NoiseTemperatureConfig(TemperatureConfig):
    """SDAC and DPMD's exploration noise alpha * noise_scale * N(0, I) after best-of-N, with alpha tuned so
    the noise's closed-form entropy tracks the target (relax/network/diffv2.py `get_action`,
    relax/algorithm/sdac.py and dpmd.py `log_alpha_loss_fn`)."""

    alpha_lr: float = 7e-3
    """Table 3 (the reference training script's default, scripts/train_mujoco.py)."""
    init_alpha: float = 5.0
    """The reference initialises log alpha = log 5 (relax/network/diffv2.py); the papers do not state it."""
    target_entropy_scale: float = -0.9
    """Target entropy of the exploration noise = scale * dim(A) (Table 3)."""
    noise_scale: float = param(0.1, Positive())
    """Exploration noise alpha * noise_scale * N(0, I) after best-of-N (Table 3: noise scale 0.1)."""
    alpha_delay: int = param(250, Positive(int))
    """Updates between alpha steps (Table 3: alpha delay update 250); the first is at update 0, as the
    reference's `step % delay_alpha_update == 0` with step counting from 0."""
    policy_delay: int = param(2, Positive(int))
    """Actor Adam step every this many updates (first at update 0). Not in the papers' tables: the reference's
    `delay_update = 2` (relax/algorithm/sdac.py, dpmd.py)."""
    target_delay: int = param(2, Positive(int))
    """Polyak update of the target critics (and target actor) every this many updates (reference: the same
    `delay_update = 2`)."""
    act_with_target_actor: bool = param(True, Boolean())
    """Whether acting (`generate`, hence best-of-N acting and evaluation) uses a Polyak-averaged copy of the
    actor. The reference keeps a `target_policy` updated like the target critics and its SDAC and DPMD
    classes act with it (`get_action` -> `get_policy_params_to_save`); the training losses always sample
    the current actor, as there. False acts with the current actor. Not in either paper."""


# -- the algorithm scaffold -------------------------------------------------------------------------------
class BestOfNDiffusion(BestOfNActing, DiffusionGenerator, OffPolicyAlgorithm):
    """A DDPM actor acting by best-of-N over a plain MSE twin critic. Subclasses write `update`."""

    generation_steps = 20
    state_attributes = ("updates",)
    """Besides its networks, optimizers and buffer: the update counter (DPMD and SDAC time their delayed steps by it)."""

    def __init__(self, obs_dim: int, act_dim: int, config: BestOfNDiffusionConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, self.device)
        self.actor = DiffusionActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if cfg.act_with_target_actor:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.updates = 0

    # -- the generator (acting, evaluation, `sombench bandit`) ------------------------------------
    def generating_actor(self) -> DiffusionActor:
        """The actor that acts: the Polyak copy when `act_with_target_actor`, else the current actor."""
        target = getattr(self, "actor_target", None)
        return self.actor if target is None else target


    # -- training-time pieces -----------------------------------------------------------------------
    @torch.no_grad()
    def policy_actions(self, obs: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """The reference's `get_action` with the current actor: best of n (default num_particles) reverse-process
        samples by the current min(Q1, Q2), plus the exploration noise, clipped to [-1, 1]."""
        cfg = self.config

        def sample(states: torch.Tensor) -> torch.Tensor:
            return self.actor.sample(states, self.schedule, cfg.prior_std).clamp(-1.0, 1.0)

        action = best_of_n(sample, self.critic.min_q, obs, n or cfg.num_particles)
        sigma = self.exploration_std()
        if sigma is not None:
            action = action + sigma * torch.randn_like(action)
        return action.clamp(-1.0, 1.0)

    def critic_loss(self, batch: Batch, next_action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(J_Q, Q [2, B]): y = r_scaled + gamma (1 - d) min_j Q_targ_j(s', a'), J_Q = sum_j E[0.5 (Q_j - y)^2].
        Gradients are left in the critic (the caller steps when its losses have seen the critic)."""
        cfg = self.config
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, next_action).min(dim=0).values
            y = cfg.reward_scale * batch.reward + cfg.gamma * (1.0 - batch.terminated) * next_q
        q = self.critic(batch.obs, batch.action)
        loss = twin_critic_loss(q, y)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach(), q.detach()

    def update_targets(self) -> None:
        polyak_update(self.critic, self.critic_target, self.config.tau)
        if getattr(self, "actor_target", None) is not None:
            polyak_update(self.actor, self.actor_target, self.config.tau)


class NoiseTemperature:
    """Mixin for SDAC and DPMD: `self.temperature` (LogAlpha), its optimizer, the exploration noise std
    alpha * noise_scale and the delayed alpha step on the closed-form noise entropy."""

    def init_temperature(self) -> None:
        cfg = self.config
        self.temperature = LogAlpha(cfg.init_alpha).to(self.device)
        self.alpha_opt = adam(self.temperature.parameters(), cfg.alpha_lr, self.device)
        self.target_entropy = cfg.target_entropy_scale * self.act_dim

    def exploration_std(self) -> torch.Tensor:
        return self.temperature.alpha.detach() * self.config.noise_scale

    def temperature_step(self) -> None:
        """-log alpha * (H_target - H(alpha * noise_scale * N(0, I))): one Adam step."""
        cfg = self.config
        entropy = gaussian_noise_entropy(self.temperature.alpha, cfg.noise_scale, self.act_dim)
        loss = noise_alpha_loss(self.temperature.log_alpha, entropy, self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.alpha_opt.step()
