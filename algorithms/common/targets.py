"""Target networks."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def polyak_update(source: nn.Module, target: nn.Module, tau: float) -> None:
    """theta_target <- tau * theta + (1 - tau) * theta_target, in place, without host syncs."""
    src = list(source.parameters())
    tgt = list(target.parameters())
    torch._foreach_lerp_(tgt, src, tau)
