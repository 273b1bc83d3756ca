"""The checkpoint file of a run: the one module that knows its format (save, load, verify).

A checkpoint is one `torch.save` zip file holding a dict: `format` (FORMAT, added here) and the
trainer's payload (identity, counters, `algo` = the algorithm's `state_dict()`, metric window, RNG
states). It is written by streaming `torch.save` into a temporary sibling file (`.checkpoint.pt.*.tmp`,
which `store.remove_stale_temps` deletes after a crash), fsynced and renamed over the target, so a
reader sees the old file or the new one, never half of one. Streaming writes each tensor's storage
from its own memory: no serialised copy of the payload is held in memory (the replay buffer's rows are
written from the buffer itself, algorithms/common/buffer.py), so a checkpoint's peak extra memory is
the pickled metadata and the I/O buffers, not a copy of the buffer.

`load` maps the file (torch.load's mmap) instead of reading it into memory: restoring copies each
tensor from the page cache into the live modules and buffer, so a resume does not hold a second
copy of the buffer in anonymous memory either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sombench.errors import UserError
from sombench.runs.spec import RunSpec, json_ready, upgrade_identity
from sombench.runs.store import atomic_open

FORMAT = 1


class FormatMismatch(ValueError):
    """The file is a checkpoint of another format (another sombench version)."""


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus `format`) to `path` atomically, streaming `torch.save` into a temporary
    sibling (flushed, fsynced, renamed over `path`; removed if anything fails, KeyboardInterrupt included).

    The payload may hold references to live tensors (the algorithm's state_dict): they are read while
    this call runs, so nothing may train in between."""
    import torch

    with atomic_open(path) as f:
        torch.save({"format": FORMAT, **payload}, f)


def load(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at `path` with its tensors on `device`. On the CPU they are views of the file mapped
    privately (a write to one never reaches the file; replacing the file leaves the mapping on the old
    one): copy what you keep (`Algorithm.load_state_dict` does), or the mapping, and the old file's disk
    space, live as long as the tensor. FormatMismatch if it was written in another format; ValueError,
    or torch's or the OS's error, if it is unreadable."""
    import torch

    checkpoint = torch.load(path, map_location=device, weights_only=False, mmap=True)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint")
    if checkpoint.get("format") != FORMAT:
        raise FormatMismatch(f"{path} has checkpoint format {checkpoint.get('format')!r}, not {FORMAT} (another sombench version)")
    return checkpoint


def load_algorithm_state(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """The algorithm's `state_dict()` as the checkpoint at `path` holds it (for `Algorithm.load_state_dict`)."""
    return load(path, device)["algo"]


def verify(spec: RunSpec, path: Path, config_path: Path) -> None:
    """UserError if the checkpoint at `path` is unreadable, of another format, or written by another config."""
    if not path.exists():
        return
    try:
        checkpoint = load(path, "cpu")
    except FormatMismatch as exc:
        raise UserError(f"{exc}; delete it to restart seed {spec.seed}") from None
    except Exception:
        raise UserError(f"{path} is unreadable; delete it to restart seed {spec.seed}") from None
    if not matches(spec, checkpoint.get("identity")):
        raise UserError(f"{path} was written by another config than {config_path}; delete {path.parent} to restart seed {spec.seed}")


def matches(spec: RunSpec, identity: dict[str, Any] | None) -> bool:
    """Whether a checkpoint's stored identity is the spec's (after filling in fields added since)."""
    return upgrade_identity(identity or {}, spec) == json_ready(spec.identity())
