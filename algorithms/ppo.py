"""PPO: Proximal Policy Optimization with the clipped objective (Schulman et al., 2017).

On-policy. The trainer drives it through the same contract as every algorithm: `explore` samples from a
diagonal Gaussian policy, `observe` stores the transition in a preallocated rollout of `batch_size`
(4,000) env steps, and `train_step` returns None until the rollout is full, then updates and starts
the next rollout. The rollout lives in tensors on the algorithm, so a checkpoint taken at any episode
boundary (mid-rollout included) resumes exactly.

Per rollout of N = 4,000 steps (Table 4; the structure, full-batch gradient steps with a KL early
stop, is that of OpenAI Spinning Up's PPO, whose defaults 4,000 / 80 / 80 / 0.01 / 1e-3 Table 4 shares):
  values:   V(s_t) and V(s'_t) from the critic before the update (it does not change while collecting,
            so this equals computing V(s'_t) when the transition is observed).
  GAE:      delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t)
            A_t = delta_t + gamma lambda (1 - end_t) A_{t+1},  end_t = term_t or trunc_t or t = N - 1
            (so the value bootstraps at truncation and at the rollout's cut, not at termination).
  targets:  R_t = r_t + gamma [(1 - end_t) R_{t+1} + end_t (1 - term_t) V(s'_t)] (rewards-to-go,
            Spinning Up) or R_t = A_t + V(s_t) (`value_target=gae`).
  policy:   advantages normalised over the rollout; up to 80 full-batch Adam steps on
            L = -mean[min(rho A, clip(rho, 1 - eps, 1 + eps) A)],  rho = pi(a|s) / pi_old(a|s),
            stopping before any step at which mean(log pi_old - log pi) > 1.5 target_kl.
  value:    80 full-batch Adam steps on mean[(V(s) - R)^2].
Table 4 and Table 3: 3 x 512 GELU, actor lr 1e-4, critic lr 1e-3, gamma 0.995, GAE lambda 0.95, clip
0.2, target KL 0.01, reward scale 1.

No observation or reward normalisation, on purpose: the networks see raw observations and the returns are
built from raw rewards (times Table 3's scale 1). Spinning Up's PPO (openai/spinningup,
spinup/algos/pytorch/ppo/ppo.py), whose update loop and defaults (4,000-step epochs, 80 + 80 full-batch
steps, KL stop at 1.5 x 0.01, value lr 1e-3) Table 4 reproduces, normalises nothing; CleanRL's
(vwxyzjn/cleanrl, cleanrl/ppo_continuous_action.py) wraps the env in NormalizeObservation and
NormalizeReward with clips at 10, but its loop (2,048-step rollouts, 32 minibatches, 10 epochs, no KL
stop, one Adam with gradient clip 0.5) is not Table 4's. The SOM paper says nothing of normalisation
(docs/baselines-vs-reference.md, item 6).

Actions: the env receives actions clipped to [-1, 1]. `explore` returns `Choice(clipped sample, unclipped
sample)`, and `observe` stores the unclipped sample it gets back in that Choice's record, whose
log-probability the ratio uses (as Spinning Up and CleanRL do: the clip is part of the environment). A
Choice without a record (an action PPO did not draw) is stored as its action. `act` keeps nothing:
`deterministic=True` (evaluation) returns the clipped mean, `deterministic=False` a clipped sample.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import nn

from algorithms import register
from algorithms.common.base import Algorithm, Choice, adam
from algorithms.common.buffer import Batch
from algorithms.common.config import (AlgorithmConfig, Boolean, ConfigError, Finite, Fraction, Interval, OneOf, OptionalOf, Positive,
                                     param)
from algorithms.common.nets import mlp


@dataclasses.dataclass
class PPOConfig(AlgorithmConfig):
    hidden_sizes: tuple[int, ...] = (512, 512, 512)
    """Table 3: 3 hidden layers x 512 (actor and critic)."""
    actor_lr: float = 1e-4
    """Table 3."""
    critic_lr: float = 1e-3
    """Table 3."""
    gamma: float = 0.995
    """Table 3."""
    reward_scale: float = 1.0
    """Table 3: 1.0 for PPO."""
    batch_size: int = param(4000, Interval(int, lo=2))
    """Env steps per rollout, every one used in each full-batch gradient step (Table 3 'batch size' 4000)."""
    gae_lambda: float = param(0.95, Fraction())
    """GAE lambda (Table 4)."""
    clip_ratio: float = param(0.2, Positive())
    """epsilon of the clipped objective (Table 4)."""
    target_kl: Optional[float] = param(0.01, OptionalOf(Positive()))
    """Early stop of the policy steps on the approximate KL (Table 4); none = always run policy_iters."""
    kl_stop_factor: float = param(1.5, Positive())
    """Stop once mean(log pi_old - log pi) > kl_stop_factor * target_kl (Spinning Up's 1.5; the paper
    gives only the target)."""
    policy_iters: int = param(80, Positive(int))
    """Policy gradient steps per rollout (Table 4: 80)."""
    value_iters: int = param(80, Positive(int))
    """Value gradient steps per rollout (Table 4: 80)."""
    init_log_std: float = param(-0.5, Finite())
    """Initial log std of the state-independent Gaussian (a learned parameter; Spinning Up's -0.5)."""
    normalize_advantages: bool = param(True, Boolean())
    """Standardise advantages over each rollout before the policy steps (Spinning Up, most PPO code)."""
    value_target: str = param("rewards_to_go", OneOf(("rewards_to_go", "gae")))
    """Regression target of the critic: discounted rewards-to-go bootstrapped at truncation and at the
    rollout's cut (Spinning Up) or the GAE lambda-return A + V. The paper does not say."""

    def check(self) -> None:
        if self.batch_size % self.num_envs:
            raise ConfigError(f"batch_size {self.batch_size} is not a multiple of num_envs {self.num_envs}: a rollout takes "
                              "batch_size / num_envs steps of every env (give a multiple, e.g. num_envs 4 with batch_size 4000)")


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray, ends: np.ndarray,
        gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates (Schulman et al. 2016) over a rollout of N steps (float64 numpy).

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t);  A_t = delta_t + gamma lam (1 - end_t) A_{t+1}.
    `ends` marks the last step of each trajectory piece (termination, truncation, the rollout's cut)."""
    adv = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]
        running = delta + gamma * lam * (1.0 - ends[t]) * running
        adv[t] = running
    return adv


def rewards_to_go(rewards: np.ndarray, next_values: np.ndarray, terminated: np.ndarray, ends: np.ndarray,
                  gamma: float) -> np.ndarray:
    """R_t = r_t + gamma [(1 - end_t) R_{t+1} + end_t (1 - terminated_t) V(s'_t)]."""
    ret = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        tail = (1.0 - terminated[t]) * next_values[t] if ends[t] else running
        running = rewards[t] + gamma * tail
        ret[t] = running
    return ret


def clipped_surrogate(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's clipped objective as a loss: -mean[min(rho A, clip(rho, 1 - clip, 1 + clip) A)]."""
    ratio = torch.exp(logp - logp_old)
    return -torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()


class GaussianActor(nn.Module):
    """pi(a|s) = N(mu(s), diag(exp(log_std))^2) with a state-independent learned log std."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: PPOConfig):
        super().__init__()
        self.mu = mlp(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(cfg.init_log_std)))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mu = self.mu(obs)
        z = (actions - mu) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


@register
class PPO(Algorithm):
    name = "ppo"
    description = "PPO: clipped surrogate, GAE, KL early stop; Gaussian MLP policy trained on 4,000-step rollouts."
    Config = PPOConfig
    generation_steps = None
    budget_factor: ClassVar[dict[str, int]] = {"InvertedDoublePendulum-v4": 5, "Pusher-v4": 5, "Reacher-v4": 5}
    """Env-step budget multiplier per task: the SOM paper trains PPO for 5M steps on InvertedDoublePendulum-v4,
    Pusher-v4 and Reacher-v4, 5x the x-axis of the other methods (Section 5, Baselines)."""

    state_attributes = ("rollout_obs", "rollout_action", "rollout_reward", "rollout_next_obs", "rollout_terminated",
                        "rollout_truncated", "rollout_len", "updates")
    """Besides its networks and optimizers: the rollout collected so far (a checkpoint may fall mid-rollout)
    and the update counter."""

    def __init__(self, obs_dim: int, act_dim: int, config: PPOConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        n = cfg.batch_size
        self.actor = GaussianActor(obs_dim, act_dim, cfg).to(self.device)
        self.critic = mlp(obs_dim, 1, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        # the rollout (`rollout_len` counts the steps stored so far)
        self.rollout_obs = torch.zeros((n, obs_dim), device=self.device)
        self.rollout_action = torch.zeros((n, act_dim), device=self.device)
        self.rollout_reward = torch.zeros(n, device=self.device)
        self.rollout_next_obs = torch.zeros((n, obs_dim), device=self.device)
        self.rollout_terminated = torch.zeros(n, device=self.device)
        self.rollout_truncated = torch.zeros(n, device=self.device)
        self.rollout_len = 0
        self.updates = 0

    # -- acting ----------------------------------------------------------------------------------
    compiled_methods = ("act_step", "policy_objective", "value_loss")  # the KL early stop reads the host: the
    # loop over policy steps stays eager, its tensor work is compiled

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The Gaussian's mean (deterministic) or an unclipped sample from it; obs [B, o] -> [B, d]."""
        mu = self.actor.mu(obs)
        return mu if deterministic else mu + torch.exp(self.actor.log_std) * torch.randn_like(mu)

    def act_batch(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """The Gaussian's mean or sample, clipped to [-1, 1]^d; [N, o] -> [N, d]."""
        return np.clip(super().act_batch(obs, deterministic), -1.0, 1.0)

    @torch.inference_mode()
    def explore(self, obs: np.ndarray) -> Choice:
        """Choice(the sample clipped to [-1, 1]^d, the unclipped sample [d]): one draw, as `act(obs)` makes."""
        raw = self.act_step(self._obs_tensor(obs), False)[0].cpu().numpy()
        return Choice(np.clip(raw, -1.0, 1.0), raw)

    @torch.inference_mode()
    def explore_batch(self, obs: np.ndarray) -> list[Choice]:
        """`explore` for N envs' observations [N, o] in one forward pass: N Choices with their unclipped samples."""
        raw = self.act_step(torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device), False).cpu().numpy()
        return [Choice(np.clip(r, -1.0, 1.0), r) for r in raw]

    def observe(self, obs, choice, reward, next_obs, terminated, truncated) -> None:
        """Store the transition with the unclipped sample of `choice` (its action when it has no record)."""
        if self.rollout_len >= self.config.batch_size:
            raise RuntimeError("PPO rollout is full: call train_step after each observe")
        raw = choice.action if choice.record is None else choice.record
        i = self.rollout_len
        self.rollout_obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.rollout_action[i] = torch.as_tensor(raw, dtype=torch.float32)
        self.rollout_reward[i] = float(reward)
        self.rollout_next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.rollout_terminated[i] = float(terminated)
        self.rollout_truncated[i] = float(truncated)
        self.rollout_len = i + 1

    def train_step(self) -> dict[str, torch.Tensor] | None:
        if self.rollout_len < self.config.batch_size:
            return None
        n, envs = self.rollout_len, self.config.num_envs
        # With N envs the rollout holds vector steps in order (row t N + k is env k's t-th step): put each env's
        # steps together, and cut each env's piece at the rollout's end as a time limit cuts it (bootstrapped
        # unless terminated), so GAE and the returns run per env. One env: the order and the cut are as before.
        order = torch.arange(n, device=self.device).reshape(n // envs, envs).T.reshape(-1)
        batch = Batch(self.rollout_obs[order], self.rollout_action[order], self.rollout_reward[order],
                      self.rollout_next_obs[order], self.rollout_terminated[order])
        truncated = self.rollout_truncated[order].clone()
        truncated[n // envs - 1::n // envs] = 1.0
        metrics = self.update(batch, truncated)
        self.rollout_len = 0
        return metrics

    # -- one update on a rollout -----------------------------------------------------------------
    def advantages_and_returns(self, batch: Batch, truncated: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, R) of a rollout of consecutive transitions, with the current critic (see the module docstring)."""
        cfg = self.config
        with torch.no_grad():
            values = self.critic(batch.obs).squeeze(-1)
            next_values = self.critic(batch.next_obs).squeeze(-1)
        term = batch.terminated.cpu().double().numpy()
        ends = term.copy() if truncated is None else np.maximum(term, truncated.cpu().double().numpy())
        ends[-1] = 1.0
        r = cfg.reward_scale * batch.reward.cpu().double().numpy()
        v, nv = values.cpu().double().numpy(), next_values.cpu().double().numpy()
        adv = gae(r, v, nv, term, ends, cfg.gamma, cfg.gae_lambda)
        ret = adv + v if cfg.value_target == "gae" else rewards_to_go(r, nv, term, ends, cfg.gamma)
        as_t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)  # noqa: E731
        return as_t(adv), as_t(ret)

    def policy_objective(self, obs: torch.Tensor, action: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(clipped surrogate loss, approximate KL(old || new), log pi(a | s)) of the current policy."""
        logp = self.actor.log_prob(obs, action)
        return clipped_surrogate(logp, logp_old, adv, self.config.clip_ratio), (logp_old - logp).mean().detach(), logp

    def value_loss(self, obs: torch.Tensor, ret: torch.Tensor) -> torch.Tensor:
        return (self.critic(obs).squeeze(-1) - ret).pow(2).mean()

    def update(self, batch: Batch, truncated: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One PPO update on a rollout of consecutive transitions (actions unclipped). `truncated` marks
        time-limit cuts; the last transition always ends its piece (bootstrapped unless terminated).
        The KL early stop reads one number per policy step from the device (once per rollout)."""
        cfg = self.config
        self.updates += 1
        adv, ret = self.advantages_and_returns(batch, truncated)
        if cfg.normalize_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with torch.no_grad():
            logp_old = self.actor.log_prob(batch.obs, batch.action)

        policy_steps = 0
        first_loss = kl = torch.zeros((), device=self.device)
        logp = logp_old
        for k in range(cfg.policy_iters):
            loss, kl, logp = self.policy_objective(batch.obs, batch.action, logp_old, adv)
            if k == 0:
                first_loss = loss.detach()
            if cfg.target_kl is not None and float(kl) > cfg.kl_stop_factor * cfg.target_kl:
                break
            self.actor_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_opt.step()
            policy_steps += 1
        clip_frac = ((torch.exp(logp.detach() - logp_old) - 1.0).abs() > cfg.clip_ratio).float().mean()

        for _ in range(cfg.value_iters):
            value_loss = self.value_loss(batch.obs, ret)
            self.critic_opt.zero_grad(set_to_none=True)
            value_loss.backward()
            self.critic_opt.step()

        return {
            "policy_loss": first_loss,
            "value_loss": value_loss.detach(),
            "approx_kl": kl,
            "clip_frac": clip_frac,
            "policy_steps": torch.tensor(float(policy_steps), device=self.device),
            "log_std": self.actor.log_std.detach().mean(),
            "return_mean": ret.mean(),
        }
