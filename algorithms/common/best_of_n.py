"""Best-of-N action selection ("number of particles", SOM paper Table 3), shared by the generative
policies that act by drawing N candidates and keeping the one the critic rates highest (MFP, and
SDAC, DPMD, QSM, QVPO later).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def repeat_states(obs: torch.Tensor, n: int) -> torch.Tensor:
    """[B, o] -> [B * n, o], row b * n + j is state b (candidate j)."""
    return obs.expand(n, -1) if obs.shape[0] == 1 else obs.repeat_interleave(n, dim=0)


def best_of_n(
    generate: Callable[[torch.Tensor], torch.Tensor],
    q_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    obs: torch.Tensor,
    n: int,
) -> torch.Tensor:
    """For each state of obs [B, o], the candidate with the highest critic value among n samples.

    generate(states [B n, o]) -> candidates [B n, d] (row b n + j belongs to state b);
    q_fn(states, actions) -> values [B n] (for twin critics: min(Q1, Q2)). Returns [B, d].
    With n = 1 the critic is not called.
    """
    b = obs.shape[0]
    states = repeat_states(obs, n)
    candidates = generate(states)
    if n == 1:
        return candidates
    q = q_fn(states, candidates).view(b, n)
    return candidates.view(b, n, -1)[torch.arange(b, device=obs.device), q.argmax(dim=1)]
