"""Watch a stored policy: load a run's checkpoint (whatever the run's state) and run evaluation episodes,
optionally recording each as an MP4 through Gymnasium's RecordVideo (`sombench evaluate`).

Episodes are those of the trainer's `evaluate` (episode `ep` reset with evaluation_seed(seed, step, ep), the
policy's noise from its own seeded streams): with the run's seed, the checkpoint's step and the run's
episode count, the returns are the run's own evaluation at that step, which the tests check.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import algorithms
from algorithms.common.spaces import ActionScaler
from sombench.envs import describe_env, make_env
from sombench.errors import UserError
from sombench.overrides import apply_overrides
from sombench.runs import checkpoint
from sombench.runs.store import RunFiles, read_state
from sombench.train.trainer import evaluate


@dataclasses.dataclass
class Replay:
    algo: str
    env: str
    seed: int
    """The seed the episodes were drawn with (the run's unless given)."""
    step: int
    """The env step of the checkpoint the policy comes from."""
    state: str
    returns: list[float]
    lengths: list[int]
    videos: list[Path]


def stored_run(run: Path) -> tuple[dict[str, Any], Path]:
    """(config.json's record, checkpoint path) of a run folder; UserError saying what is missing."""
    files = RunFiles(Path(run))
    if not files.dir.is_dir():
        raise UserError(f"{run} is not a folder; give a run folder such as results/Hopper-v4/som/seed_0")
    try:
        record = json.loads(files.config.read_text())
        record["run"]["algo"], record["run"]["env"], record["run"]["algo_config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{run} holds no readable config.json; give a run folder such as results/Hopper-v4/som/seed_0") from None
    if not files.checkpoint.exists():
        raise UserError(f"{run} has no checkpoint yet (one is written every --checkpoint-every steps and at the end); "
                        "resume the run until it writes one")
    return record, files.checkpoint


def build_policy(record: dict[str, Any], path: Path, device: torch.device):
    """The run's algorithm, built from its recorded config and loaded from the checkpoint at `path`."""
    run = record["run"]
    registry = algorithms.load_all()
    if run["algo"] not in registry:
        raise UserError(f"the run's algorithm {run['algo']!r} is not installed; choose one of: {', '.join(sorted(registry))}")
    cls = registry[run["algo"]]
    names = {f.name for f in dataclasses.fields(cls.Config)}
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in run["algo_config"].items() if k in names}
    config = apply_overrides(cls.Config, [], stored, base_name="the run's config.json")[0]
    info = describe_env(run["env"])
    algo = cls(info.obs_dim, info.act_dim, config, device)
    try:
        ckpt = checkpoint.load(path, device)
    except Exception as exc:
        raise UserError(f"{path} cannot be read ({type(exc).__name__}); it is damaged") from None
    algo.load_state_dict(ckpt["algo"])
    return algo, info, int(ckpt["step"])


def check_video(env_id: str) -> None:
    """UserError naming what to install when `env_id` cannot render frames or Gymnasium cannot write MP4s."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"  # headless: MuJoCo's GPU-driver backend (OSMesa is the software one)
    try:
        import moviepy  # noqa: F401  (Gymnasium's RecordVideo writes through it)
    except ImportError:
        raise UserError("recording videos needs moviepy: pip install -e '.[video]' (or pip install moviepy)") from None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame (classic control) without a display
    try:
        env = make_env(env_id, render_mode="rgb_array")
        try:
            env.reset(seed=0)
            frame = env.render()
        finally:
            env.close()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        if "mujoco" in (type(exc).__module__ + first).lower() or "GL" in first or "gl" in type(exc).__module__.lower():
            raise UserError(f"{env_id} cannot render here (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {type(exc).__name__} {first}); "
                            "MuJoCo renders headless through EGL (a GPU driver's libEGL; MUJOCO_GL=egl) or OSMesa "
                            "(apt install libosmesa6; MUJOCO_GL=osmesa)") from None
        raise UserError(f"{env_id} cannot render frames: {type(exc).__name__}: {first}") from None
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise UserError(f"{env_id} renders no RGB frames (rgb_array gave {type(frame).__name__})")


def replay(run: Path, episodes: int, deterministic: bool, video: Path | None, seed: int | None, device: torch.device) -> Replay:
    """Run `episodes` episodes of the policy stored in the run folder `run` (see the module docstring)."""
    record, path = stored_run(run)
    env_id = record["run"]["env"]
    if video is not None:
        check_video(env_id)
    algo, info, step = build_policy(record, path, device)
    seed = int(record["run"]["seed"]) if seed is None else seed
    if video is not None:
        try:
            Path(video).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the video folder {video}: {exc.strerror or exc}") from None
    env = make_env(env_id, render_mode="rgb_array" if video is not None else None)
    label = record["run"]["algo"] + (f"@{record['variant']}" if record.get("variant") else "")
    # env, variant, seed and step in the name: two runs' episodes never overwrite each other in one folder
    prefix = f"{env_id.replace('/', '_')}-{label}-seed{seed}-step{step}"
    if video is not None:
        from gymnasium.wrappers import RecordVideo

        with warnings.catch_warnings():  # Gymnasium warns whenever the folder holds any MP4; ours are named per run, step and episode
            warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")
            env = RecordVideo(env, str(video), episode_trigger=lambda i: True, name_prefix=prefix, disable_logger=True)
    lengths: list[int] = []
    try:
        returns = evaluate(algo, env, ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype), episodes, seed,
                           step, deterministic=deterministic, lengths=lengths)
    finally:
        env.close()
    videos = [Path(video) / f"{prefix}-episode-{i}.mp4" for i in range(episodes)] if video is not None else []
    state = (read_state(Path(run)) or {}).get("state", "unknown")
    return Replay(record["run"]["algo"], env_id, seed, step, state, [float(r) for r in returns], lengths, videos)
