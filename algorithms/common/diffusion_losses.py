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
- `twin_mse_loss`: QVPO's and DIPO's critic loss, the sum of the two members' MSEs times a weight;
  `linear_lr_factor`, `set_learning_rate`: the reference's linear decay of the policy's rate.
- `BestOfNDiffusionConfig`, `NoiseTemperatureConfig`: the shared Table 3 defaults; `RelaxDiffusionConfig`:
  the DDPM of SDAC's and DPMD's reference code; `DiffusionQLNetsConfig`: how QVPO's and DIPO's reference
  code builds and trains its networks (docs/baselines-vs-reference.md).
- `BestOfNDiffusion`: actor, twin critic and targets, the generator interface, the policy's actions
  for training (best-of-N + exploration noise, as the reference's `get_action`), the MSE critic step
  and SDAC/DPMD's exploration-noise temperature step.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional

import torch

from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.best_of_n import BestOfNActing, best_of_n
from algorithms.common.buffer import Batch
from algorithms.common.config import (BestOfNConfig, Boolean, Fraction, NonNegative, OffPolicyConfig, OneOf, OptionalOf, Positive,
                                      TemperatureConfig, Validated, param)
from algorithms.common.critics import TwinCritic, td_target, twin_critic_loss
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


def twin_mse_loss(q: torch.Tensor, target: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """weight * sum over the two members of mean_b (Q_j - y)^2; q [2, B], target [B]. weight 1 is QVPO's and
    DIPO's reference `F.mse_loss(q1, y) + F.mse_loss(q2, y)`; 0.5 is SAC's J_Q (critics.twin_critic_loss)."""
    return weight * ((q - target.unsqueeze(0)) ** 2).mean(dim=1).sum()


def linear_lr_factor(step: int, start: int, steps: int, end_factor: float | None) -> float:
    """lr(step) / lr(0) of `optax.linear_schedule(lr, end_factor * lr, transition_steps=steps,
    transition_begin=start)` at the optimizer's step count `step` (0 for its first update): 1 up to `start`,
    then linearly to end_factor over `steps`, then end_factor. None: 1 (a constant rate)."""
    if end_factor is None:
        return 1.0
    done = min(max(step - start, 0), steps) / steps
    return 1.0 + done * (end_factor - 1.0)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's rate in place: a tensor rate is filled (the compiled step reads the same tensor,
    so a changing rate never recompiles it), a float replaced."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


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
    beta_schedule: str = param("vp", OneOf(("vp", "cosine", "linear")))
    """The DDPM's betas: 'vp' (0.1 -> 10, algorithms/common/diffusion.py), 'cosine', or 'linear' =
    linear_beta_scale * linspace(1e-4, 0.999, T), the schedule relax's `GaussianDiffusion` builds
    (mahaitongdae/diffusion_policy_online_rl, relax/utils/diffusion.py; SDAC and DPMD default to it, see
    RelaxDiffusionConfig)."""
    linear_beta_scale: float = param(0.8, Fraction(open_low=True))
    """The scale of the 'linear' schedule (ignored by the others): relax's `--beta_schedule_scale`, 0.8 in
    scripts/train_mujoco.py, which passes it to SDAC's and DPMD's network (relax/network/diffv2.py). At 20 steps
    alpha-bar runs from 0.99992 (first step) to 5.3e-6 (last)."""
    actor_lr_end_factor: Optional[float] = param(0.1, OptionalOf(Fraction()))
    """The actor's learning rate decays linearly from actor_lr to actor_lr_end_factor * actor_lr (none: constant).
    The relax reference builds every policy optimizer of SDAC, DPMD and its QSM on `optax.linear_schedule(lr,
    lr_schedule_end, transition_steps=5e4, transition_begin=2.5e4)` (relax/algorithm/sdac.py, dpmd.py, qsm.py)
    with `--lr 3e-4 --lr_schedule_end 3e-5` (scripts/train_mujoco.py): 0.1 at Table 3's 3e-4. A factor, not an
    absolute end, so that actor_lr=0 (the frozen-actor control) stays frozen. Table 3 gives only the initial
    rate; the SOM paper says nothing of a schedule."""
    actor_lr_decay_start: int = param(25_000, NonNegative(int))
    """Actor updates (the optimizer's own step count, as optax's schedule counts them: with SDAC's and DPMD's
    policy delay 2 these are every other update) before the decay starts (reference `transition_begin=2.5e4`)."""
    actor_lr_decay_steps: int = param(50_000, Positive(int))
    """Actor updates over which the rate decays to its end value (reference `transition_steps=5e4`)."""


@dataclasses.dataclass
class RelaxDiffusionConfig(Validated):
    """The DDPM of SDAC's and DPMD's reference code (mahaitongdae/diffusion_policy_online_rl, the code their
    paper's curves came from): what it builds, where the shared DDPM's defaults differ."""

    beta_schedule: str = "linear"
    """0.8 * linspace(1e-4, 0.999, 20): relax's `GaussianDiffusion` builds `beta_schedule_scale *
    linear_beta_schedule(T)` (relax/utils/diffusion.py; SDAC's and DPMD's network relax/network/diffv2.py
    passes scripts/train_mujoco.py's `--beta_schedule_type linear --beta_schedule_scale 0.8`); its
    `vp_beta_schedule` is defined but never called. `--set beta_schedule=vp` gives the VP 0.1 -> 10 betas used
    before (alpha-bar 0.983 -> 0.0064 instead of 0.99992 -> 5.3e-6)."""
    prior_std: float = 0.5
    """The reverse process starts from 0.5 N(0, I): relax's `p_sample`, `x = 0.5 * jax.random.normal(...)`
    (relax/utils/diffusion.py), for acting, the critic target's a' and SDAC's and DPMD's training samples alike.
    The papers write N(0, I) (`--set prior_std=1`)."""


@dataclasses.dataclass
class DiffusionQLNetsConfig(Validated):
    """How QVPO's and DIPO's reference code builds and trains its networks (wadx2019/qvpo and BellmanTimeHut/DIPO,
    agent/model.py, agent/helpers.py, agent/qvpo.py, agent/DiPo.py: the same code, QVPO's README says it is based
    on DIPO's). Neither paper nor the SOM paper's Table 3 says; the defaults are the reference code's."""

    time_hidden: Optional[int] = 256
    """The step embedding's MLP: SinusoidalPosEmb(32) -> Linear(32, 256) -> Mish -> Linear(256, 32) (agent/model.py,
    `hidden_size=256`); none = 2 time_dim, the relax width used before."""
    time_frequencies: str = "diffusion_ql"
    """The reference's `SinusoidalPosEmb`: frequencies exp(-j log 10,000 / 15), unscaled (agent/helpers.py);
    'relax' = the scaled sinusoid used before."""
    init: str = param("truncated_normal", OneOf(("truncated_normal", "torch")))
    """Weights of every linear layer (actor, its step embedding, both critics). 'truncated_normal': N(0, s^2)
    truncated to +-2 s, s = 1 / (2 sqrt(fan_in)), biases 0: the reference's `init_weights`, applied to its
    Model and Critic (algorithms/common/nets.py `truncated_normal_init_`); 'torch': nn.Linear's default
    (Kaiming-uniform), used before."""
    adam_eps: float = param(1e-5, Positive())
    """Adam epsilon of the actor's and the critic's optimizers: the reference's `torch.optim.Adam(..., eps=1e-5)`
    (agent/qvpo.py, agent/DiPo.py); 1e-8 is torch's default, used before."""
    critic_loss_weight: float = param(1.0, Positive())
    """J_Q = weight * sum over the two critics of mean (Q_j - y)^2. 1: the reference's
    `F.mse_loss(q1, y) + F.mse_loss(q2, y)`; 0.5: SAC's J_Q, used before. Adam is blind to the weight; the
    gradient clip (`grad_clip`, 2.0) is not: at 0.5 the clip acted as 4.0 in the reference's units."""


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
        self.schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, self.device, linear_scale=cfg.linear_beta_scale)
        self.actor = self.build_actor(obs_dim, act_dim).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                 cfg.critic_action_scale).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if cfg.act_with_target_actor:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        # a scheduled rate is a tensor, filled in place by `schedule_actor_lr`, so a compiled step never recompiles
        actor_lr = cfg.actor_lr if cfg.actor_lr_end_factor is None else torch.tensor(float(cfg.actor_lr), device=self.device)
        self.actor_opt = adam(self.actor.parameters(), actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.updates = 0

    def build_actor(self, obs_dim: int, act_dim: int) -> torch.nn.Module:
        """The actor network: a DDPM noise predictor (a subclass may build another sampler with `sample`)."""
        return DiffusionActor(obs_dim, act_dim, self.config)

    def schedule_actor_lr(self, actor_step: int) -> None:
        """Set the actor's rate for its `actor_step`-th update (0 = its first): actor_lr times the linear decay
        factor of the config (`actor_lr_end_factor`, `actor_lr_decay_start`, `actor_lr_decay_steps`)."""
        cfg = self.config
        if cfg.actor_lr_end_factor is None:
            return
        factor = linear_lr_factor(actor_step, cfg.actor_lr_decay_start, cfg.actor_lr_decay_steps, cfg.actor_lr_end_factor)
        set_learning_rate(self.actor_opt, cfg.actor_lr * factor)

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
            y = td_target(batch.reward, next_q, batch.terminated, cfg.gamma, cfg.reward_scale)
        q = self.critic(batch.obs, batch.action)
        loss = twin_critic_loss(q, y)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach(), q.detach()

    def critic_next_actions(self, next_obs: torch.Tensor) -> torch.Tensor:
        """The actions at s' the critic's target bootstraps with (SDAC, DPMD: `policy_actions`, as their updates)."""
        return self.policy_actions(next_obs)

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        critic_loss, q = self.critic_loss(batch, self.critic_next_actions(batch.next_obs))
        self.critic_opt.step()
        return {"critic_loss": critic_loss, "q_mean": q.mean()}

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
