"""The paper's 2-D bandits (SOM Section 5.2, Appendices F-H), at the edge of the harness.

- `tasks`: the bandit tasks, perturbations and their Gymnasium env (registered on import; perturbed
  ids on first use through `ensure_registered`, which `sombench.envs` finds by the `sombench.envs`
  entry point declared in pyproject.toml, so the generic env code never imports this package);
- `mixtures`: the eight-Gaussian mixture, its reward and mode counts.
A trained run's samples are in sombench/train/bandit.py, its figures in sombench/render/bandit.py and
the `sombench bandit` use case in sombench/app/bandit.py.
"""

from __future__ import annotations


def ensure_registered(env_id: str) -> bool:
    """Entry point of the `sombench.envs` group: register `env_id` with Gymnasium if it is a bandit."""
    from sombench.bandit.tasks import ensure_registered as register

    return register(env_id)
