"""The iDEM-style Monte Carlo score of a Gaussian-smoothed Boltzmann density (SOM Eq. 5).

    grad_{a_t} log sum_k exp(log_target(a0|t^(k))),   a0|t^(k) = mean(a_t) + std(t) * delta_k,

with (mean, std) the schedule's proposal. The reparameterisation makes every proposal a function
of a_t, so one backward pass of the batch-summed logsumexp gives every row's score, with no
per-sample loop and no parameter gradients (the caller's networks should not require grad).
For log_target = alpha * Q(s, .) this is the score of p_t(a_t | s) under p_0 proportional to
exp(alpha Q); for log_target = log p_0 of a known density it is that density's diffused score,
which is how the tests check it against a closed form (SOM Appendix G).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def mc_score(
    log_target: Callable[[torch.Tensor], torch.Tensor],
    a_t: torch.Tensor,
    t: torch.Tensor,
    schedule,
    num_samples: int,
    clip: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimate grad_{a_t} log p_t(a_t) for a batch a_t [B, d] at times t [B, 1].

    log_target maps proposals [B, K, d] to unnormalised log-densities [B, K] (it may standardise
    over the whole [B, K] block: it sees all proposals at once). `clip` bounds the proposals to
    [-clip, clip]^d before they reach log_target (a critic is only trained inside the action box);
    proposals outside then contribute their clipped value and no gradient.
    """
    a_t = a_t.detach().requires_grad_(True)
    mean, std = schedule.proposal(a_t, t)
    delta = torch.randn((a_t.shape[0], num_samples, a_t.shape[1]), device=a_t.device, dtype=a_t.dtype, generator=generator)
    proposals = mean.unsqueeze(1) + std.unsqueeze(1) * delta
    if clip is not None:
        proposals = proposals.clamp(-clip, clip)
    log_w = log_target(proposals)
    (score,) = torch.autograd.grad(torch.logsumexp(log_w.float(), dim=1).sum(), a_t)
    return score


def normalize_score(score: torch.Tensor, scale: float, eps: float = 1e-6) -> torch.Tensor:
    """w * score / (||score|| + eps): SOM Eq. 8's unit-norm rescaling."""
    return scale * score / (score.norm(dim=-1, keepdim=True) + eps)


def boltzmann_score(
    q_fn: Callable[[torch.Tensor], torch.Tensor],
    a_t: torch.Tensor,
    t: torch.Tensor,
    schedule,
    num_samples: int,
    inverse_temperature: torch.Tensor | float,
    standardize: bool = True,
    clip: float | None = None,
    generator: torch.Generator | None = None,
    standardize_over: str = "batch",
) -> torch.Tensor:
    """SOM Eq. 5: the score of p_t for p_0 proportional to exp(beta_Q * Qn), Qn = Q standardised over
    all B x K proposals of the batch (Sec. 4.4; mean and std enter as constants). q_fn maps actions
    [M, d] to values [M] (M = B * K; a state-conditioned critic closes over its repeated states).
    standardize_over 'batch' takes one mean and std over all B x K values; 'state' takes them over each
    row's K proposals (GRPO's group normalisation, the group being one state)."""
    if standardize_over not in ("batch", "state"):
        raise ValueError(f"standardize_over must be 'batch' or 'state', not {standardize_over!r}")
    dims = None if standardize_over == "batch" else (1,)

    def log_target(proposals: torch.Tensor) -> torch.Tensor:
        b, k, d = proposals.shape
        q = q_fn(proposals.reshape(b * k, d)).float().view(b, k)
        if standardize:
            if dims is None:
                q = (q - q.mean().detach()) / (q.std().detach() + 1e-6)
            else:
                q = (q - q.mean(dims, keepdim=True).detach()) / (q.std(dims, keepdim=True).detach() + 1e-6)
        return inverse_temperature * q

    return mc_score(log_target, a_t, t, schedule, num_samples, clip=clip, generator=generator)
