"""Best-of-N acting ("number of particles", SOM paper Table 3): draw N candidates from the generator
and keep the one the twin critic rates highest, min(Q1, Q2). SOM, MFP, SDAC, DPMD, QSM and QVPO act
this way; `BestOfNActing` gives them `best_of_n` and `act` once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from algorithms.common.capabilities import Generator


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


class BestOfNActing(Generator):
    """Acting by best-of-N over `self.critic.min_q`, for an algorithm whose config is a `BestOfNConfig`.

    act(obs): N = num_particles candidates from `generate`, keep argmax min(Q1, Q2), add the
    algorithm's exploration noise `exploration_std()` (none by default), clip to [-1, 1].
    act(obs, deterministic=True): the same with N = eval_particles (default num_particles), no noise.
    """

    @property
    def particles(self) -> int:
        return int(self.config.num_particles)

    def best_of_n(self, obs: torch.Tensor, n: int) -> torch.Tensor:
        """For each state of obs [B, o], the best of n candidates by min(Q1, Q2); [B, d]."""
        return best_of_n(self.generate, self.critic.min_q, obs, n)

    def exploration_std(self) -> torch.Tensor | float | None:
        """Std of the Gaussian noise added to the acting action (None: no noise)."""
        return None

    def act_step(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The acting path on tensors (compiled by --compile): obs [B, o] -> actions [B, d]."""
        cfg = self.config
        n = (cfg.eval_particles or cfg.num_particles) if deterministic else cfg.num_particles
        action = self.best_of_n(obs, n)
        sigma = None if deterministic else self.exploration_std()
        if sigma is not None:
            action = (action + sigma * torch.randn_like(action)).clamp(-1.0, 1.0)
        return action
