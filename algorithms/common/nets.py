"""Network builders shared by every algorithm.

`mlp` builds the paper's 3x256 networks (Table 3) with the activation named in an algorithm's
config; `EnsembleMLP` evaluates E independent MLPs of the same shape in one batched matmul per layer,
which is how twin critics run as a single module (LeanRL's habit: one kernel launch per layer
instead of one per critic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def activation(name: str) -> type[nn.Module]:
    """The activation class for a config name ('relu', 'gelu', 'mish', ...)."""
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int], act: str = "relu") -> nn.Sequential:
    """A plain MLP: Linear-act for every hidden width, then a linear output layer."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation(act)()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """E independent linear layers applied to inputs of shape [E, B, in] in one batched matmul.

    Each member is initialised exactly as `nn.Linear` would be (Kaiming-uniform weights, uniform
    bias in +-1/sqrt(fan_in)), so an ensemble of two behaves like two separate critics.
    """

    def __init__(self, ensemble: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        for e in range(ensemble):
            w = torch.empty(out_dim, in_dim)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            with torch.no_grad():
                self.weight[e].copy_(w.T)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """E MLPs of identical shape evaluated together: input [B, in] or [E, B, in] -> [E, B, out]."""

    def __init__(self, ensemble: int, in_dim: int, out_dim: int, hidden: Sequence[int], act: str = "relu"):
        super().__init__()
        self.ensemble = ensemble
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden:
            layers += [EnsembleLinear(ensemble, last, width), activation(act)()]
            last = width
        layers.append(EnsembleLinear(ensemble, last, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.ensemble, -1, -1)
        return self.net(x)


def truncated_normal_init_(module: nn.Module) -> nn.Module:
    """In place, on every `nn.Linear` and `EnsembleLinear` under `module`: weights ~ N(0, s^2) truncated to
    +-2 s with s = 1 / (2 sqrt(fan_in)), biases 0. The `init_weights` of QVPO's and DIPO's reference code
    (wadx2019/qvpo and BellmanTimeHut/DIPO, agent/helpers.py: it redraws the values outside 2 s until none
    is left, which is this distribution). Returns `module`."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            fan_in = m.in_features
        elif isinstance(m, EnsembleLinear):
            fan_in = m.weight.shape[1]
        else:
            continue
        std = 1.0 / (2.0 * math.sqrt(fan_in))
        with torch.no_grad():
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
            m.bias.zero_()
    return module


# -- network evaluations as bare matrix products (`sombench latency --breakdown`) -----------------
def linear_layers(net: nn.Module) -> list[tuple[int, int, int]]:
    """(members, in, out) of each linear layer of an `mlp` or `EnsembleMLP`, input to output."""
    layers = []
    for m in net.modules():
        if isinstance(m, nn.Linear):
            layers.append((1, m.in_features, m.out_features))
        elif isinstance(m, EnsembleLinear):
            layers.append(tuple(m.weight.shape))
    return layers


def matmul_shapes(layers: list[tuple[int, int, int]], batch: int, *, forwards: int = 1, input_grads: bool = False,
                  action_grad: bool = False, weight_grads: bool = False) -> list[tuple[int, int, int, int]]:
    """The (groups, M, K, N) matrix products of evaluating a network at `batch` rows: `forwards` forward
    passes (2 for a forward-mode jvp), and in a backward pass the gradients with respect to each layer's input
    (`input_grads`; the first layer's only with `action_grad`, when the network's input needs a gradient)
    and to its weights (`weight_grads`). Biases, activations and everything else are left out: this is the
    floor that the real evaluation's time is compared against."""
    shapes = []
    for g, i, o in layers:
        shapes += [(g, batch, i, o)] * forwards
    for n, (g, i, o) in enumerate(layers):
        if input_grads and (n > 0 or action_grad):
            shapes.append((g, batch, o, i))
        if weight_grads:
            shapes.append((g, i, batch, o))
    return shapes
