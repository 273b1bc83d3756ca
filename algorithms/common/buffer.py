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
        """{capacity, ptr, size, storage: field -> its first `size` rows}. The rows are the buffer's own
        memory, not a copy (a checkpoint of a 1e6 Humanoid buffer would otherwise copy ~3 GB): serialise
        the result (torch.save) before adding to the buffer again."""
        return {
            "capacity": self.capacity,
            "ptr": self.ptr,
            "size": self.size,
            "storage": {k: leading_rows(v, self.size) for k, v in self.storage.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpointed buffer has capacity {state['capacity']}, this one {self.capacity}")
        for k, v in state["storage"].items():
            self.storage[k][: v.shape[0]] = v.to(self.device)
        self.ptr = int(state["ptr"])
        self.size = int(state["size"])

    # -- indexed access (DIPO writes improved actions back into the rows it sampled) -------------
    def sample_indices(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Row indices of a uniform sample with replacement: the same draw as `sample` makes, so
        `gather(sample_indices(n))` is distributed (and, from the same RNG state, equal) as `sample(n)`."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)

    def gather(self, idx: torch.Tensor, column: str = "action") -> Batch:
        """The transitions at rows `idx`, with the action read from `column` ('action' or an extra column)."""
        return Batch(*(self.storage[column if k == "action" else k][idx] for k in self.FIELDS))

    def write_actions(self, idx: torch.Tensor, actions: torch.Tensor, column: str = "action") -> None:
        """Overwrite the actions of filled rows `idx` (from `sample_indices`) in place; rows listed twice
        must be given equal actions. The storage is what `state_dict` saves, so a checkpoint holds the
        rewritten actions. (No bounds check against `size`: it would cost a device sync per update.)"""
        self.storage[column][idx] = actions.detach().to(self.storage[column].dtype)


def leading_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """The first `n` rows of a contiguous tensor, sharing its memory, in a tensor whose storage holds only
    those rows. torch.save writes a tensor's whole storage, so the view `t[:n]` of a partly filled buffer
    would write all `capacity` rows, and `t[:n].clone()` would copy the filled ones; this writes the filled
    rows from the buffer itself. (A storage slice keeps its parent storage alive.)"""
    if n == t.shape[0]:
        return t
    if not t.is_contiguous():
        return t[:n].clone()
    row_bytes = t[0].numel() * t.element_size()
    start = t.storage_offset() * t.element_size()
    rows = t.untyped_storage()[start: start + n * row_bytes]
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(rows, 0, (n, *t.shape[1:]), t.stride())


class PolicyActionReplayBuffer(ReplayBuffer):
    """A replay buffer with a second action column, `policy_action`, that starts as a copy of the
    executed action and can be rewritten (DIPO's improved actions) while `action`, which the critic
    learns from, keeps the action the environment received. The column is part of the storage, so it
    is checkpointed and restored with the rest (only the filled rows, like every column)."""

    COLUMN = "policy_action"

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu"):
        super().__init__(capacity, obs_dim, act_dim, device)
        self.storage[self.COLUMN] = torch.empty((self.capacity, act_dim), dtype=torch.float32, device=self.device)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.ptr
        super().add(obs, action, reward, next_obs, terminated)
        self.storage[self.COLUMN][i] = self.storage["action"][i]

    def load_state_dict(self, state: dict) -> None:
        if self.COLUMN not in state["storage"]:
            raise ValueError(f"checkpointed buffer has no {self.COLUMN!r} column")
        super().load_state_dict(state)
