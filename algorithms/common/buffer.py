"""Preallocated uniform replay buffer (Table 3: capacity 1e6).

Storage lives on the algorithm's device as torch tensors, so sampling a batch is one `randint` and
one gather per field with no host round trip. Memory is allocated once with `torch.empty`, whose
pages the OS commits only when written, so a 1e6 buffer costs what it holds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A batch of transitions. `terminated` is 1.0 only for true terminal states (never for
    time-limit truncation), so critics bootstrap through truncation."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """FIFO ring buffer of (s, a, r, s', terminated) with uniform sampling."""

    FIELDS = Batch._fields

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu"):
        if capacity <= 0:
            raise ValueError("buffer capacity must be positive")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        shapes = {"obs": (obs_dim,), "action": (act_dim,), "reward": (), "next_obs": (obs_dim,), "terminated": ()}
        self.storage = {k: torch.empty((self.capacity, *s), dtype=torch.float32, device=self.device) for k, s in shapes.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.ptr
        s = self.storage
        s["obs"][i] = torch.as_tensor(obs, dtype=torch.float32)
        s["action"][i] = torch.as_tensor(action, dtype=torch.float32)
        s["reward"][i] = float(reward)
        s["next_obs"][i] = torch.as_tensor(next_obs, dtype=torch.float32)
        s["terminated"][i] = float(terminated)
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """Uniform sample with replacement (the convention of SAC and the relax reference code)."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)
        return Batch(*(self.storage[k][idx] for k in self.FIELDS))

    # Checkpointing: only the filled rows are written, in storage order, with the write pointer.
    def state_dict(self) -> dict:
        return {
            "capacity": self.capacity,
            "ptr": self.ptr,
            "size": self.size,
            "storage": {k: v[: self.size].cpu().clone() for k, v in self.storage.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpointed buffer has capacity {state['capacity']}, this one {self.capacity}")
        for k, v in state["storage"].items():
            self.storage[k][: v.shape[0]] = v.to(self.device)
        self.ptr = int(state["ptr"])
        self.size = int(state["size"])
