"""The checkpoint file of a run: the one module that knows its format (save, load, verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sombench.errors import UserError
from sombench.runs.spec import RunSpec, json_ready, upgrade_identity

FORMAT = 1


def verify(spec: RunSpec, path: Path, config_path: Path) -> None:
    """UserError if the checkpoint at `path` is unreadable, of another format, or written by another config."""
    if not path.exists():
        return
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        identity = checkpoint.get("identity")
    except Exception:
        raise UserError(f"{path} is unreadable; delete it to restart seed {spec.seed} from scratch") from None
    if checkpoint.get("format") != FORMAT:
        raise UserError(f"{path} has checkpoint format {checkpoint.get('format')!r}, not {FORMAT} (another sombench "
                        f"version); delete it to restart seed {spec.seed}")
    if upgrade_identity(identity or {}, spec) != json_ready(spec.identity()):
        raise UserError(f"{path} was written by another config than {config_path}; delete {path.parent} to restart seed {spec.seed}")


def matches(spec: RunSpec, identity: dict[str, Any] | None) -> bool:
    """Whether a checkpoint's stored identity is the spec's (after filling in fields added since)."""
    return upgrade_identity(identity or {}, spec) == json_ready(spec.identity())
