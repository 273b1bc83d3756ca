"""`sombench evaluate`: run a stored policy (a run folder's checkpoint, whatever the run's state) for some
episodes, optionally recording videos; returns the episodes' returns with a Student-t 95% interval."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sombench.app import common
from sombench.errors import InvalidValue


@dataclasses.dataclass
class EvaluateRequest:
    run: Path
    """A run folder: results/ENV/ALGO[@VARIANT]/seed_N."""
    episodes: int = 10
    deterministic: bool = True
    """The algorithm's evaluation mode (as the run's evaluations); False: its exploring policy."""
    video: Path | None = None
    """A folder for one MP4 per episode (Gymnasium's RecordVideo); None records nothing."""
    seed: int | None = None
    """The episodes' seed; None: the run's own, so the returns repeat the run's evaluation at the checkpoint."""
    device: str = "auto"


@dataclasses.dataclass
class EvaluateResult:
    replay: object
    """train.replay.Replay: algo, env, seed, step, state, returns, lengths, videos."""
    mean: float
    ci95: float
    """Half-width of the Student-t 95% interval of the mean return over episodes (NaN for one episode)."""
    deterministic: bool


def evaluate(req: EvaluateRequest) -> EvaluateResult:
    common.check_positive("episodes", req.episodes)
    if req.seed is not None:
        common.check_non_negative("seed", req.seed)
    if req.video is not None and req.video.exists() and not req.video.is_dir():
        raise InvalidValue("video", f"{req.video} is a file; give a folder for the MP4s")
    import torch

    from sombench.analysis.stats import mean_ci
    from sombench.train.replay import replay

    device = torch.device(common.resolve_device(req.device))
    result = replay(req.run, req.episodes, req.deterministic, req.video, req.seed, device)
    mean, half = mean_ci(result.returns)
    return EvaluateResult(result, float(mean), float(half), req.deterministic)
