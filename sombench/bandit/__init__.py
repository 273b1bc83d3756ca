"""The paper's 2-D bandits (SOM Section 5.2, Appendices F-H), at the edge of the harness.

- `tasks`: the bandit tasks, perturbations and their Gymnasium env (registered on import; perturbed
  ids on first use through `ensure_registered`, which `sombench.envs` finds by the `sombench.envs`
  entry point declared in pyproject.toml, so the generic env code never imports this package);
- `evaluate`: a trained run's generator samples and mode counts;
- `figures`: arrow plots, score fields and the Figure 6 panels;
- `report`: what `sombench bandit` writes into each run folder and prints.
"""

from __future__ import annotations


def ensure_registered(env_id: str) -> bool:
    """Entry point of the `sombench.envs` group: register `env_id` with Gymnasium if it is a bandit."""
    from sombench.bandit.tasks import ensure_registered as register

    return register(env_id)
