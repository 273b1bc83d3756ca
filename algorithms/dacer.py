"""DACER: Diffusion Actor-Critic with Entropy Regulator (Wang et al., NeurIPS 2024).

The policy is the reverse process of a T = 20 step DDPM: starting from Gaussian noise,
a network eps_theta(s, a_i, i) predicts the noise, the predicted clean action is clipped to [-1, 1]
and the posterior mean plus posterior noise gives a_{i-1}. The actor maximises the critic through all
T denoising steps, like a reparameterised SAC actor without a log-probability:

    J_pi = -E_s[ min(mu_1, mu_2)(s, a_theta(s)) ],   a_theta = reverse process (+ exploration noise).

Since the policy has no tractable density, its entropy is estimated by fitting a 3-component Gaussian
mixture to 200 actions per state (algorithms/common/gmm_entropy.py), and a temperature
alpha regulates exploration through the added noise alpha * 0.15 * N(0, I):

    J(alpha) = -log alpha * (H_target - H_hat),  H_target = -0.9 dim(A),  one Adam step every 10,000 updates.

SOM paper Table 3 column: 3x256 Mish, actor/critic lr 3e-4, alpha lr 3e-2, alpha delay 10,000, 3
Gaussians, 200 action samples, 20 diffusion steps, warm-up 3e4, batch 256, tau 0.005, reward scale
0.2, one particle. Critic: the distributional twin critic (after DSAC-v2; algorithms/common/critics.py).
Details beyond the paper's text follow its reference code, `happy-yan/DACER-Diffusion-with-Online-RL`
(relax/algorithm/dacer.py, relax/network/dacer.py), and are named as such below.

Per update k = 0, 1, ... (as the DACER reference code orders it):
  1. critic target: a' = pi(s') (with exploration noise); DACER's distributional backups from the target
     critics; every critic loss and the actor loss below see the critic before this update's step.
  2. entropy:      if k % alpha_delay == 0, H_hat = GMM entropy of 200 noisy actions per batch state.
  3. actor:        if k % policy_delay == 0, one Adam step on J_pi through all T steps.
  4. alpha:        if k % alpha_delay == 0, one Adam step on J(alpha).
  5. targets:      if k % target_delay == 0, Polyak with rate tau.
Acting: the reverse process plus alpha * 0.15 * N(0, I), clipped to [-1, 1]. Evaluation mode: the
reverse process without the exploration noise (the reference sets log alpha = -inf), still sampled.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.best_of_n import repeat_states
from algorithms.common.buffer import Batch
from algorithms.common.config import Boolean, Interval, OffPolicyConfig, Positive, TemperatureConfig, param
from algorithms.common.critics import DistributionalTwinCritic, distributional_critic_loss, distributional_targets
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor, DiffusionConfig, DiffusionGenerator
from algorithms.common.gmm_entropy import gmm_entropy
from algorithms.common.targets import polyak_update
from algorithms.common.temperature import LogAlpha, noise_alpha_loss


@dataclasses.dataclass
class DACERConfig(TemperatureConfig, DiffusionConfig, OffPolicyConfig):
    activation: str = "mish"
    """Hidden activation of actor, time embedding and critic (Table 3: Mish)."""
    actor_lr: float = 3e-4
    """Table 3 (the reference code's default argument is 1e-4; the paper's table and SOM's Table 3 say 3e-4)."""
    alpha_lr: float = 3e-2
    """Table 3."""
    noise_scale: float = param(0.15, Positive())
    """Exploration noise alpha * noise_scale * N(0, I) (reference code: 0.15 on MuJoCo, 0.1 elsewhere)."""
    init_alpha: float = math.exp(1.2)
    """Initial alpha: the reference code initialises log alpha = 1.2 (its comment: '1.2 or 1.7'); not in the paper."""
    alpha_delay: int = param(10_000, Positive(int))
    """Updates between entropy estimates and alpha steps (Table 3: 10,000); the first is at update 0."""
    entropy_samples: int = param(200, Interval(int, lo=2))
    """Actions sampled per state for the GMM entropy estimate (Table 3: 200)."""
    gmm_components: int = param(3, Positive(int))
    """Components of the per-state Gaussian mixture (Table 3: 3)."""
    target_entropy_scale: float = -0.9
    """Target entropy = scale * dim(A) (Table 3)."""
    policy_delay: int = param(2, Positive(int))
    """Actor Adam step every this many updates (DACER, 'delay_update' 2 in the reference code)."""
    target_delay: int = param(2, Positive(int))
    """Critic target Polyak update every this many updates (reference code: 2)."""
    noisy_training_actions: bool = param(True, Boolean())
    """Whether the actions the actor loss maximises and the critic's next actions carry the exploration
    noise alpha * noise_scale * N(0, I). The reference code uses its noisy `get_action` for both (the
    critic learns the value of the exploring policy); the paper does not say. False drops the noise."""


@register
class DACER(DiffusionGenerator, OffPolicyAlgorithm):
    name = "dacer"
    description = "DACER: 20-step diffusion actor maximising Q through the reverse process, GMM entropy-regulated noise."
    Config = DACERConfig
    presets = {
        # The common bandit preset, and diffusion_steps 10: the SOM paper rolls DACER out "with their full
        # 10-step rollouts" on its bandits (Figures 5, 13 and 14's captions), not Table 3's 20. alpha_delay 100:
        # Table 3's 10,000 updates between temperature steps exceed a whole bandit run (3,500 updates at 4,000
        # steps), so alpha never steps, the training-action noise stays at 0.15 x e^1.2 = 0.50 (1.24 bandit
        # units) and the actor maximises the reward smoothed by it, whose maximum is the origin
        # (docs/som-notes.md section 11, analytic); at 100 alpha steps 35 times within the run. Section 11
        # named the value before this measurement; section 15: 0 of 3 seeds leave the origin at 10,000, all
        # 3 settle on one mode at 100.
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "diffusion_steps": 10, "alpha_delay": 100},
    }
    generation_steps = 20
    update_cycle = 2
    state_attributes = ("mean_std", "entropy", "last_actor_loss", "updates")
    """Besides its networks, optimizers and buffer: the critics' running sigma, the last GMM entropy estimate
    and actor loss (reported until the next estimate and actor step), and the update counter."""

    def __init__(self, obs_dim: int, act_dim: int, config: DACERConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, self.device)
        self.actor = DiffusionActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = DistributionalTwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                               cfg.critic_action_scale).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.temperature = LogAlpha(cfg.init_alpha).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.alpha_opt = adam(self.temperature.parameters(), cfg.alpha_lr, self.device)
        self.mean_std = torch.full((2,), -1.0, device=self.device)  # running sigma of each critic, unset
        self.entropy = torch.zeros((), device=self.device)  # the last GMM estimate
        self.last_actor_loss = torch.zeros((), device=self.device)  # reported every update (the window averages)
        self.target_entropy = cfg.target_entropy_scale * act_dim
        self.updates = 0

    # -- the policy ------------------------------------------------------------------------------
    def policy(self, obs: torch.Tensor, noisy: bool = True) -> torch.Tensor:
        """The reverse process, plus alpha * noise_scale * N(0, I) if noisy, clipped to [-1, 1]."""
        cfg = self.config
        action = self.actor.sample(obs, self.schedule, cfg.prior_std)
        if noisy:
            sigma = self.temperature.alpha.detach() * cfg.noise_scale
            action = action + sigma * torch.randn_like(action)
        return action.clamp(-1.0, 1.0)

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The acting path on tensors: the reverse process, noisy unless deterministic; [B, o] -> [B, d]."""
        return self.policy(obs, noisy=not deterministic)

    @torch.compiler.disable  # a GMM fit on the host every alpha_delay updates: compiled code calls it as is
    @torch.no_grad()
    def estimate_entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """DACER's entropy estimate: GMM entropy of `entropy_samples` noisy actions for each state of obs (host sync)."""
        cfg = self.config
        n = cfg.entropy_samples
        actions = self.policy(repeat_states(obs, n)).view(obs.shape[0], n, self.act_dim)
        return torch.tensor(gmm_entropy(actions, cfg.gmm_components), device=self.device)

    # -- one update ------------------------------------------------------------------------------
    compiled_methods = ("act_step", "update_step")

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        k = self.updates
        self.updates += 1  # the delays are decided here, outside the compiled step (a counter would recompile it)
        return self.update_step(batch, alpha_step=k % cfg.alpha_delay == 0, policy_step=k % cfg.policy_delay == 0,
                                target_step=k % cfg.target_delay == 0)

    def critic_gradients(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The distributional critic loss (DSAC-v2 / DACER) at the policy's next actions, backpropagated into the
        critic (the caller steps it) and the running sigma updated; returns (loss, mu, sigma), each detached."""
        cfg = self.config
        with torch.no_grad():
            next_action = self.policy(batch.next_obs, cfg.noisy_training_actions)
            t_mu, t_sigma = self.critic_target(batch.next_obs, next_action)
            y, y_sample = distributional_targets(t_mu, t_sigma, cfg.reward_scale * batch.reward, batch.terminated, cfg.gamma)
        mu, sigma = self.critic(batch.obs, batch.action)
        critic_loss, new_mean_std = distributional_critic_loss(mu, sigma, y, y_sample, self.mean_std, cfg.tau)
        self.mean_std.copy_(new_mean_std)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        return critic_loss.detach(), mu.detach(), sigma.detach()

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        critic_loss, mu, sigma = self.critic_gradients(batch)
        self.critic_opt.step()
        return {"critic_loss": critic_loss, "q_mean": mu.mean(), "q_std": sigma.mean()}

    def update_step(self, batch: Batch, alpha_step: bool, policy_step: bool, target_step: bool) -> dict[str, torch.Tensor]:
        cfg = self.config
        noisy = cfg.noisy_training_actions

        # 1. critic loss (distributional, DSAC-v2 / DACER)
        critic_loss, mu, sigma = self.critic_gradients(batch)

        # 2. entropy estimate, every alpha_delay updates
        if alpha_step:
            self.entropy = self.estimate_entropy(batch.obs)

        # 3. actor through all T denoising steps, against the critic before its step
        if policy_step:
            self.critic.requires_grad_(False)
            actor_loss = -self.critic.min_q(batch.obs, self.policy(batch.obs, noisy)).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.critic.requires_grad_(True)
            self.actor_opt.step()
            self.last_actor_loss = actor_loss.detach()
        self.critic_opt.step()

        # 4. temperature from the entropy estimate
        alpha = self.temperature.alpha.detach()
        if alpha_step:
            alpha_loss = noise_alpha_loss(self.temperature.log_alpha, self.entropy, self.target_entropy)
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()

        # 5. targets
        if target_step:
            polyak_update(self.critic, self.critic_target, cfg.tau)

        return {
            "critic_loss": critic_loss,
            "actor_loss": self.last_actor_loss,
            "q_mean": mu.mean(),
            "q_std": sigma.mean(),
            "alpha": alpha,
            "entropy": self.entropy.detach(),
        }
