"""DIPO: DIffusion POlicy (Yang et al., 2023, "Policy Representation via Diffusion Probability Model
for Reinforcement Learning").

DIPO improves the *data* rather than the policy directly: the actions stored in the replay buffer
are pushed uphill on the critic by a few steps of gradient ascent and written back, and the policy,
a T = 100 step DDPM, is fitted to the improved actions by plain behaviour cloning (the DDPM loss).

Per update (the order of the reference code, `BellmanTimeHut/DIPO`, agent/DiPo.py):
  1. critic:  batch B from the buffer; a' ~ pi_targ(.|s') (the target actor's stochastic reverse process);
              y = r_scaled + gamma (1 - d) min_i Q_targ_i(s', a');  J_Q = sum_i E[(Q_i - y)^2] (the
              reference's sum of the two MSEs, `critic_loss_weight`); gradient norm clipped to 2.0.
  2. action gradient (with the updated critic): an independent batch B' of (s, a) from the buffer's
              policy-action column; `action_gradient_steps` (Table 3: 30) Adam steps (lr 0.03, fresh
              optimizer state per batch) on -sum_b min(Q1, Q2)(s_b, a_b), the gradient's norm clipped to
              0.1 dim(A) before each step, a clamped to [-1, 1] after each; the improved actions are
              written back into the rows of B' they came from (`write_back`, below).
  3. actor:   L = E[(eps_theta(s, x_i, i) - eps)^2] on the improved (s, a) (behaviour cloning),
              gradient norm clipped to 2.0.
  4. targets: Polyak with rate tau on the critic and the target actor, every update.
Acting: one sample of the reverse process (no best-of-N, no added noise). Evaluation: the same from
fresh a_T noise but without the per-step posterior noise (reference: noise_ratio 0 when evaluating).

Table 3 column: Mish, lr 3e-4 (actor and critic), 100 diffusion steps, 30 action gradient steps, one
particle, warm-up 3e4, batch 256, tau 0.005, reward scale 0.2. Table 2: T_d = 100, N = 1. Networks as the
reference builds them (agent/model.py, agent/helpers.py): truncated-normal weights, zero biases, Adam eps
1e-5, the step embedding's unscaled sinusoid and 256-wide time MLP.

The write-back: in the original code `DiffusionMemory.replace` does `np.copyto(self.best_actions[idxs],
...)`; fancy indexing returns a copy, so nothing is written back and every ascent starts from the executed
action. relax's port (mahaitongdae/diffusion_policy_online_rl, relax/algorithm/dipo.py, with the 30 steps
of Table 3) writes back, as the DIPO paper describes, so a row sampled again continues its ascent. We write
back by default; `write_back=false` reproduces the original code (docs/baselines-vs-reference.md has the
evidence and the measured drift of the written-back actions).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.buffer import Batch, PolicyActionReplayBuffer
from algorithms.common.config import Boolean, NonNegative, OffPolicyConfig, OneOf, OptionalOf, Positive, param
from algorithms.common.critics import TwinCritic, td_target
from algorithms.common.diffusion import DDPMSchedule, DiffusionActor, DiffusionConfig, DiffusionGenerator
from algorithms.common.targets import polyak_update
from algorithms.common.diffusion_losses import DiffusionQLNetsConfig, clip_gradients, twin_mse_loss, weighted_ddpm_loss
from algorithms.common.nets import truncated_normal_init_


@dataclasses.dataclass
class DIPOConfig(DiffusionQLNetsConfig, DiffusionConfig, OffPolicyConfig):
    activation: str = "mish"
    """Table 3: Mish."""
    diffusion_steps: int = 100
    """Table 3: 100 diffusion steps (T_d of Table 2)."""
    beta_schedule: str = "cosine"
    """The reference code's default (`--beta_schedule cosine`); the paper does not name one."""
    time_dim: int = 32
    """Sinusoidal step embedding width: 32 in the reference code's noise network (agent/model.py)."""
    action_gradient_steps: int = param(30, NonNegative(int))
    """Gradient-ascent steps on each sampled replay action per update (Table 3: 30; the reference code's
    default is 20). 0 = plain behaviour cloning of the buffer (the ascent is switched off)."""
    action_lr: float = param(0.03, NonNegative())
    """Adam learning rate of the action ascent (reference `--action_lr 0.03`)."""
    action_adam_eps: float = param(1e-5, Positive())
    """Adam epsilon of the action ascent (the reference code creates it with eps=1e-5)."""
    action_grad_ratio: Optional[float] = param(0.1, OptionalOf(Positive()))
    """The ascent gradient's norm is clipped to action_grad_ratio * dim(A) before each Adam step (reference
    `--ratio 0.1`); none = no clipping."""
    action_grad_clip_scope: str = param("batch", OneOf(("batch", "action")))
    """What that norm is taken over. 'batch': the whole [B, d] gradient at once, as the reference code
    calls clip_grad_norm_ on the batch tensor; 'action': each action's own gradient row."""
    separate_policy_actions: bool = param(True, Boolean())
    """Where improved actions are written. True: a second action column of the buffer that only the
    policy reads, so the critic keeps learning Q of the actions the environment received (the reference
    keeps a DiffusionMemory beside its ReplayMemory). False: overwrite the executed action itself (then
    the critic's Bellman targets pair improved actions with the executed actions' rewards)."""
    write_back: bool = param(True, Boolean())
    """Whether the improved actions are written back into the rows they came from, so that a row sampled
    again continues its ascent from where the last one stopped. True: relax's DIPO
    (mahaitongdae/diffusion_policy_online_rl, relax/algorithm/dipo.py `diffusion_buffer.replace`, the port
    whose 30 action-gradient steps Table 3 gives; the original's default is 20) and the DIPO paper's
    description. False: the original code's behaviour (BellmanTimeHut/DIPO, agent/replay_memory.py
    `np.copyto(self.best_actions[idxs], ...)` writes into a temporary copy), so every ascent starts from the
    executed action. Chosen: True, the code whose settings Table 3 reports (docs/baselines-vs-reference.md)."""
    target_actor: bool = param(True, Boolean())
    """Critic target's next action from a Polyak-averaged copy of the actor (reference: actor_target,
    tau, every update). False: from the current actor."""
    deterministic_eval: bool = param(True, Boolean())
    """Evaluation drops the reverse process's per-step noise (reference: noise_ratio 0 at evaluation);
    acting always keeps it. False: evaluate with the stochastic sampler."""
    grad_clip: Optional[float] = param(2.0, OptionalOf(Positive()))
    """Gradient-norm clip of actor and critic updates (reference `--ac_grad_norm 2.0`); none = no clip."""


def clip_action_gradient(grad: torch.Tensor, max_norm: float, scope: str) -> None:
    """In place: scale `grad` [B, d] so its L2 norm (over the whole batch, or per row) is <= max_norm,
    with torch's clip_grad_norm_ convention coef = min(1, max_norm / (norm + 1e-6))."""
    if scope == "batch":
        norm = grad.norm()
    else:
        norm = grad.norm(dim=-1, keepdim=True)
    grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))


@register
class DIPO(DiffusionGenerator, OffPolicyAlgorithm):
    name = "dipo"
    revision = 2  # issue 25: defaults moved to the reference code's (docs/baselines-vs-reference.md)
    description = "DIPO: replay actions improved by 30 Adam steps on min Q and written back; 100-step DDPM fitted to them by cloning."
    Config = DIPOConfig
    generation_steps = 100

    def __init__(self, obs_dim: int, act_dim: int, config: DIPOConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        if cfg.separate_policy_actions:
            self.buffer = PolicyActionReplayBuffer(cfg.buffer_size, obs_dim, act_dim, self.device)
        self.policy_column = PolicyActionReplayBuffer.COLUMN if cfg.separate_policy_actions else "action"
        self.schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, self.device)
        self.actor = DiffusionActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                 cfg.critic_action_scale).to(self.device)
        if cfg.init == "truncated_normal":
            truncated_normal_init_(self.actor)
            truncated_normal_init_(self.critic)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device, eps=cfg.adam_eps)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device, eps=cfg.adam_eps)

    # -- the policy ------------------------------------------------------------------------------

    def sample_without_step_noise(self, obs: torch.Tensor) -> torch.Tensor:
        """The reverse process from a_T ~ prior_std N(0, I) taking the posterior mean at every step."""
        actor, sched = self.actor, self.schedule
        b = obs.shape[0]
        emb = actor.time_embed(actor.steps)
        x = self.config.prior_std * torch.randn((b, self.act_dim), device=obs.device)
        for i in reversed(range(sched.steps)):
            eps = actor.net(torch.cat([obs, x, emb[i].expand(b, -1)], dim=-1))
            x = sched.posterior_mean(x, sched.predict_x0(x, eps, i), i)
        return x.clamp(-1.0, 1.0)

    compiled_methods = ("act_step", "update_with")  # no counters: the update is compiled whole

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The acting path on tensors; [B, o] -> [B, d]."""
        if deterministic and self.config.deterministic_eval:
            return self.sample_without_step_noise(obs)
        return self.generate(obs)

    # -- the action ascent -----------------------------------------------------------------------
    @torch.compiler.disable  # a fresh Adam on fresh action tensors every update: compiled, each update would
    # recompile (dynamo's cache is keyed on the optimizer's parameters), so the ascent runs eagerly under --compile
    def improve_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """`action_gradient_steps` clipped Adam steps of ascent on min(Q1, Q2)(obs, a) from `actions`,
        each followed by a clamp to [-1, 1]; returns the improved actions (detached)."""
        cfg = self.config
        a = actions.detach().clone().requires_grad_(True)
        if cfg.action_gradient_steps == 0:
            return a.detach()
        opt = torch.optim.Adam([a], lr=cfg.action_lr, eps=cfg.action_adam_eps)
        max_norm = None if cfg.action_grad_ratio is None else cfg.action_grad_ratio * self.act_dim
        self.critic.requires_grad_(False)
        try:
            for _ in range(cfg.action_gradient_steps):
                opt.zero_grad(set_to_none=True)
                (-self.critic.min_q(obs, a).sum()).backward()
                if max_norm is not None:
                    clip_action_gradient(a.grad, max_norm, cfg.action_grad_clip_scope)
                opt.step()
                with torch.no_grad():
                    a.clamp_(-1.0, 1.0)
        finally:
            self.critic.requires_grad_(True)
        return a.detach()

    # -- one update ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        """Critic batch as every off-policy algorithm draws it; then an independent batch of rows whose
        policy actions are improved, fitted and written back in place (after `critic_updates` - 1 critic steps)."""
        self.extra_critic_steps()
        batch = self.buffer.sample(self.config.batch_size)
        idx = self.buffer.sample_indices(self.config.batch_size)
        policy_batch = self.buffer.gather(idx, self.policy_column)
        metrics, improved = self.update_with(batch, policy_batch.obs, policy_batch.action)
        if self.config.write_back:
            self.buffer.write_actions(idx, improved, self.policy_column)
        return metrics

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update with the policy half on the same batch (what `sombench latency` times); nothing is
        written back, as the batch need not come from the buffer."""
        return self.update_with(batch, batch.obs, batch.action)[0]

    def fit_critic(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One clipped critic step towards r + gamma (1 - d) min Q_targ(s', a'), a' one (target) actor sample;
        returns (loss, Q [2, B]), detached."""
        cfg = self.config
        with torch.no_grad():
            next_actor = self.actor_target if cfg.target_actor else self.actor
            next_action = next_actor.sample(batch.next_obs, self.schedule, cfg.prior_std).clamp(-1.0, 1.0)
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

    def update_with(self, batch: Batch, policy_obs: torch.Tensor, policy_actions: torch.Tensor
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        cfg = self.config

        # 1. critic
        critic_loss, q = self.fit_critic(batch)

        # 2. action gradient with the updated critic
        improved = self.improve_actions(policy_obs, policy_actions)

        # 3. behaviour cloning of the improved actions
        actor_loss = weighted_ddpm_loss(self.actor, self.schedule, policy_obs, improved)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        clip_gradients(self.actor, cfg.grad_clip)
        self.actor_opt.step()

        # 4. targets
        polyak_update(self.critic, self.critic_target, cfg.tau)
        if cfg.target_actor:
            polyak_update(self.actor, self.actor_target, cfg.tau)

        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "q_mean": q.mean(),
            "action_shift": (improved - policy_actions).norm(dim=-1).mean(),
        }, improved
