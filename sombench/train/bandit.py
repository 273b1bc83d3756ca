"""What `sombench bandit` measures on a trained run: the generator's samples and their mode counts.

The harness knows no algorithm's internals: it asks the trained algorithm for the optional generator
interface of algorithms/common/capabilities.py (`generate`, `rollout`, `samples_at`, `noise_std`, `q_value`,
`score_field`, `diffusion_kernel`). An algorithm without `generate` falls back to its acting path
`act(obs, deterministic=False)`, which may include best-of-N and exploration noise; every report
says which source its samples came from.

Units: algorithms act in [-1, 1]^2; the bandits' box is [-2.5, 2.5]^2. Everything reported or drawn
is in the bandit's units (a = 2.5 * the algorithm's action); noise and intermediate samples are mapped
by the same affine map, unclipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import algorithms
from algorithms.common.capabilities import Generator, QValued
from algorithms.common.spaces import ActionScaler
from sombench.bandit.tasks import BanditTask
from sombench.envs import describe_env
from sombench.runs import checkpoint
from sombench.runs.spec import RunSpec
from sombench.runs.store import RunFiles
from sombench.train.trainer import torch_seed

MODE_SAMPLES = 1000
"""Generator samples per mode count (Appendix H.3's counts)."""
PRESET = "bandit"
"""The algorithm preset `sombench bandit` applies before the user's --set (declared in each algorithm's
class, `presets["bandit"]`, with the reason for each value)."""


def preset_for(algo: str) -> str | None:
    """The bandit preset's name if `algo` declares one."""
    return PRESET if PRESET in algorithms.get(algo).presets else None


# -- a trained run ----------------------------------------------------------------------------------
class TrainedBandit:
    """A trained algorithm loaded from its run folder, with the map between its units and the bandit's."""

    def __init__(self, spec: RunSpec, run: Path, device: str = "cpu"):
        self.spec, self.run = spec, run
        info = describe_env(spec.env_id)
        self.scaler = ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype)
        self.centre, self.half = (info.act_high + info.act_low) / 2, (info.act_high - info.act_low) / 2
        self.device = torch.device(device)
        self.cls = algorithms.get(spec.algo)
        self.algo = self.cls(info.obs_dim, info.act_dim, spec.config(), self.device)
        self.algo.load_state_dict(checkpoint.load_algorithm_state(RunFiles(run).checkpoint, self.device))
        self.obs_dim, self.act_dim = info.obs_dim, info.act_dim
        self.generative = isinstance(self.algo, Generator)

    @property
    def source(self) -> str:
        return "generate(obs, noise)" if self.generative else "act(obs, deterministic=False) (no generate(); may include best-of-N and exploration noise)"

    def obs(self, n: int) -> torch.Tensor:
        return torch.zeros((n, self.obs_dim), device=self.device)  # the bandits' constant observation

    def to_env(self, x: torch.Tensor) -> np.ndarray:
        """Algorithm units -> bandit units, unclipped (noise and intermediate samples may leave the box)."""
        return self.centre + self.half * x.detach().double().cpu().numpy()

    def to_algo(self, points: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((points - self.centre) / self.half, dtype=torch.float32, device=self.device)

    @property
    def noise_std(self) -> float:
        """The generator's noise std; 1.0 (N(0, I)) for an algorithm without `generate`, which draws no
        noise map (its figures show act() samples instead)."""
        return float(self.algo.noise_std) if self.generative else 1.0

    def noise(self, n: int, seed: int) -> torch.Tensor:
        # the global RNG too: a stochastic sampler (DACER's reverse process) draws its per-step noise
        # from it, and the counts must not depend on what ran before in this process
        torch.manual_seed(torch_seed(seed))
        g = torch.Generator().manual_seed(torch_seed(seed))
        return (self.noise_std * torch.randn((n, self.act_dim), generator=g)).to(self.device)

    def noise_grid(self, side: int = 7, extent: float = 2.0) -> torch.Tensor:
        """A side x side grid over [-extent, extent]^2 in units of the generator's noise std (the
        paper's 7 x 7 grid over [-2, 2]^2 of N(0, I) noise)."""
        axis = torch.linspace(-extent, extent, side)
        xx, yy = torch.meshgrid(axis, axis, indexing="xy")
        return (self.noise_std * torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)).to(self.device)

    @torch.no_grad()
    def samples(self, n: int, seed: int) -> np.ndarray:
        """n actions of the generator alone, from fresh noise (bandit units)."""
        if self.generative:
            return self.to_env(self.algo.generate(self.obs(n), self.noise(n, seed)))
        torch.manual_seed(torch_seed(seed))
        obs = np.zeros(self.obs_dim, np.float32)
        return np.stack([self.scaler.to_env(self.algo.act(obs, deterministic=False)) for _ in range(n)]).astype(np.float64)

    @torch.no_grad()
    def rollout(self, noise: torch.Tensor) -> list[np.ndarray] | None:
        if not self.generative:
            return None
        torch.manual_seed(torch_seed(self.spec.seed))
        return [self.to_env(x) for x in self.algo.rollout(self.obs(noise.shape[0]), noise)]

    @torch.no_grad()
    def grid_endpoints(self) -> np.ndarray | None:
        """The actions [49, 2] (bandit units) the 7 x 7 noise grid maps to: the arrow plot's red endpoints, whose
        mode counts are the paper's own measure (Appendix H.3, Figure 5); None without `generate`."""
        path = self.rollout(self.noise_grid())
        return None if path is None else path[-1]

    @torch.no_grad()
    def samples_at(self, times: list[float], n: int, seed: int) -> list[np.ndarray] | None:
        if not self.generative:
            return None
        return [self.to_env(x) for x in self.algo.samples_at(self.obs(n), self.noise(n, seed), times)]

    @torch.no_grad()
    def q_values(self, points: np.ndarray) -> np.ndarray | None:
        if not isinstance(self.algo, QValued):
            return None
        return self.algo.q_value(self.obs(len(points)), self.to_algo(points)).double().cpu().numpy().reshape(-1)


# -- mode counts -------------------------------------------------------------------------------------
def mode_report(task: BanditTask, points: np.ndarray) -> dict[str, Any]:
    """Counts per high-reward region, total and fractions; the task's goal check where it has one."""
    counts = task.modes(torch.as_tensor(points, dtype=torch.float64))
    n = len(points)
    total = sum(counts.values())
    report: dict[str, Any] = {"n": n, "rule": task.mode_rule, "counts": counts, "total": total, "fraction": total / n,
                              "mode_fractions": {k: v / n for k, v in counts.items()}}
    if task.goal is not None:
        report["goal_met"] = task.goal.met(total / n, [v / n for v in counts.values()])
    return report


CRITIC_GRID = 101
"""Points per side of the grid over the action box on which `critic_report` reads the critic."""


def critic_report(tb: TrainedBandit, task: BanditTask, reward_scale: float) -> dict[str, Any] | None:
    """How well the trained critic min(Q1, Q2) holds the task's reward, read on a CRITIC_GRID^2 grid over the box
    (bandit units); None for an algorithm without a critic (PPO's state value cannot be read per action).

    On a one-step bandit every target is reward_scale * r (no bootstrap: each episode ends), so a perfect
    critic is reward_scale * r(a). Keys: `corr`, Pearson's correlation of Q with the clean r over the grid
    (1: the reward's shape, whatever its scale); `true_peak`, reward_scale * max r (every task's max r is 1); `region_peak`, the
    highest Q inside each of the task's high-reward regions (`task.modes`) over true_peak (1: that peak at
    its true height; unequal values are the uneven peaks of docs/som-notes.md section 11); `outside_peak`,
    the highest Q outside every region over true_peak; `argmax`, where Q is highest; `q_origin`, Q at (0, 0)
    over true_peak (the eight-Gaussian reward is ~0 there: DACER's early hump, section 11)."""
    half = float(tb.half.max())
    axis = np.linspace(-half, half, CRITIC_GRID)
    xx, yy = np.meshgrid(axis, axis, indexing="xy")
    points = np.stack([xx.reshape(-1), yy.reshape(-1)], axis=1)
    q = tb.q_values(points)
    if q is None:
        return None
    r = task.reward(torch.as_tensor(points, dtype=torch.float64)).numpy()
    true_peak = reward_scale * task.max_reward
    labels = [next((name for name, c in task.modes(torch.as_tensor(p[None], dtype=torch.float64)).items() if c), None)
              for p in points]
    names = list(task.modes(torch.zeros((1, 2), dtype=torch.float64)))
    region_peak = {name: float(q[[lab == name for lab in labels]].max()) / true_peak for name in names}
    outside = q[[lab is None for lab in labels]]
    origin = tb.q_values(np.zeros((1, 2)))
    return {"grid": CRITIC_GRID, "corr": float(np.corrcoef(q, r)[0, 1]) if q.std() > 0 else 0.0, "true_peak": true_peak,
            "region_peak": region_peak, "outside_peak": float(outside.max()) / true_peak if len(outside) else None,
            "argmax": [float(v) for v in points[int(q.argmax())]], "q_origin": float(origin[0]) / true_peak}


def aggregate_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Mode counts summed over seeds; mean and range of the per-seed fractions; seeds meeting the goal."""
    names = list(reports[0]["counts"])
    n = sum(r["n"] for r in reports)
    counts = {k: sum(r["counts"][k] for r in reports) for k in names}
    fractions = [r["fraction"] for r in reports]
    out: dict[str, Any] = {"seeds": len(reports), "n": n, "counts": counts, "total": sum(counts.values()),
                           "fraction": sum(counts.values()) / n, "fraction_min": min(fractions), "fraction_max": max(fractions),
                           "mode_fractions": {k: v / n for k, v in counts.items()}}
    if all("goal_met" in r for r in reports):
        out["goal_seeds"] = sum(r["goal_met"] for r in reports)
    return out
