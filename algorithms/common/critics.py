"""Twin critics: the plain clipped-double-Q pair (SAC, SDAC, DPMD, QSM, ...) and DACER's
distributional pair (DACER, SOM). Both run their two members as one `EnsembleMLP`. `td_target` is the
one-step backup y = reward_scale r + gamma (1 - d) V(s') that every critic target goes through.

Shapes: every critic call returns tensors of shape [2, B] (member, batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.common.nets import EnsembleMLP


def critic_inputs(obs: torch.Tensor, action: torch.Tensor, action_scale: float) -> torch.Tensor:
    """[obs, action_scale * action] along the last axis (the product skipped at 1, so the default graph is unchanged)."""
    return torch.cat([obs, action if action_scale == 1.0 else action_scale * action], dim=-1)


class TwinCritic(nn.Module):
    """Two Q networks Q_i(s, a) as one batched ensemble."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], act: str, action_scale: float = 1.0):
        super().__init__()
        self.net = EnsembleMLP(2, obs_dim + act_dim, 1, hidden, act)
        self.action_scale = float(action_scale)
        """The action input is multiplied by this before the first layer (`critic_action_scale`; 1: as given)."""

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values, shape [2, B]."""
        return self.net(critic_inputs(obs, action, self.action_scale)).squeeze(-1)

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min(Q1, Q2), shape [B]: the value used for best-of-N selection and policy improvement."""
        return self(obs, action).min(dim=0).values


def td_target(reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor, gamma: float,
              reward_scale: float) -> torch.Tensor:
    """The one-step Bellman backup every critic regresses on (SAC Eq. 5 and its relatives):

        y = reward_scale * r + gamma * (1 - d) * V(s'),

    reward r [B] as stored (unscaled), next_value V(s') [B] (what the algorithm bootstraps with: the
    min of the target critics at the next action, minus SAC's entropy term, DACER's mean or sample, ...),
    terminated d [B] (1.0 at a true terminal state, where nothing is bootstrapped; a time-limit
    truncation is not terminal), gamma the discount, reward_scale the paper's reward scale (Table 3:
    0.2 for every off-policy algorithm). Returns y [B]. The caller computes it without gradients."""
    return reward_scale * reward + gamma * (1.0 - terminated) * next_value


def twin_critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over both members of the soft Bellman residual J_Q = E[0.5 (Q_i - y)^2] (SAC, Eq. 5).

    q: [2, B] current estimates; target: [B] the (already stop-gradient) backup y.
    """
    return 0.5 * ((q - target.unsqueeze(0)) ** 2).mean(dim=1).sum()


class DistributionalTwinCritic(nn.Module):
    """DACER's twin distributional critic (after DSAC-v2): each member outputs the mean mu and
    std sigma = softplus(.) of a Gaussian return distribution Z(s, a)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], act: str, action_scale: float = 1.0):
        super().__init__()
        self.net = EnsembleMLP(2, obs_dim + act_dim, 2, hidden, act)
        self.action_scale = float(action_scale)
        """The action input is multiplied by this before the first layer (`critic_action_scale`; 1: as given)."""

    def _inputs(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return critic_inputs(obs, action, self.action_scale)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, sigma), each [2, B]."""
        out = self.net(self._inputs(obs, action))
        return out[..., 0], F.softplus(out[..., 1])

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min(mu1, mu2), shape [B] (the std head's softplus is skipped: only the means are needed)."""
        return self.net(self._inputs(obs, action))[..., 0].min(dim=0).values


def distributional_targets(
    target_mu: torch.Tensor,
    target_sigma: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DACER's two backups from the target critics evaluated at (s', a').

    Each target member draws q = mu' + sigma' * clip(z, -3, 3). The mean backup uses the smaller of
    the two target means; the sample backup uses the sample of the member whose mean is smaller.
    `reward` must already carry the reward scale. Returns (y, y_sample), each [B].
    """
    z = torch.randn(target_mu.shape, device=target_mu.device, generator=generator).clamp(-3.0, 3.0)
    sample = target_mu + target_sigma * z
    first_smaller = target_mu[0] < target_mu[1]
    next_mean = torch.minimum(target_mu[0], target_mu[1])
    next_sample = torch.where(first_smaller, sample[0], sample[1])
    return td_target(reward, next_mean, terminated, gamma, 1.0), td_target(reward, next_sample, terminated, gamma, 1.0)


def distributional_critic_loss(
    mu: torch.Tensor,
    sigma: torch.Tensor,
    y: torch.Tensor,
    y_sample: torch.Tensor,
    mean_std: torch.Tensor,
    tau: float,
    epsilon: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DACER's distributional critic loss, summed over the two members.

    mu, sigma: [2, B] current critic outputs at (s, a); y, y_sample: [B] backups;
    mean_std: [2] running mean of each member's sigma (w_bar), negative before the first batch.
    w_bar is updated first (EMA with rate tau, initialised from the first batch), then

        y_b  = sg(mu + clip(y_sample - mu, -3 w_bar, 3 w_bar))
        L_i  = -(w_bar^2 + eps) * mean[ mu * sg(y - mu) / (sd^2 + eps)
                                        + sigma * ((sg(mu) - y_b)^2 - sd^2) / (sd^3 + eps) ]

    with sd = sg(max(sigma, 0)) and eps = 0.1. Returns (loss, new mean_std).
    """
    batch_std = sigma.detach().mean(dim=1)
    new_mean_std = torch.where(mean_std < 0, batch_std, tau * batch_std + (1 - tau) * mean_std)
    w = new_mean_std.unsqueeze(1)
    y_bounded = (mu + torch.clamp(y_sample.unsqueeze(0) - mu, -3 * w, 3 * w)).detach()
    sd = sigma.detach().clamp_min(0.0)
    mean_term = mu * (y.unsqueeze(0) - mu).detach() / (sd**2 + epsilon)
    std_term = sigma * ((mu.detach() - y_bounded) ** 2 - sd**2) / (sd**3 + epsilon)
    per_member = -(new_mean_std**2 + epsilon) * (mean_term + std_term).mean(dim=1)
    return per_member.sum(), new_mean_std
