"""Which part of SOM's critic and data loop loses the eight-Gaussian modes (docs/som-notes.md, section 9).

Fresh critics of SOM's own class and loss (DACER's distributional twin critic; on the one-step bandit
every transition is terminal, so its targets are y = reward_scale * r) are fitted on

- 'run':     the replay buffer of a finished `sombench bandit --algo som` run (its own data), or
- 'uniform': as many actions drawn uniformly from the box, with their rewards,

while one factor at a time changes: learning rate, updates per stored sample, a scale on the critic's
action input, width. For each fitted critic:

- corr(Q, r) on a 101 x 101 grid over the box (algorithm units),
- peaks: how many of the four high modes have a local maximum of Q within 0.5 (bandit units),
- Q at the origin, as a fraction of Q's range over the grid (the true reward is ~0 there),
- coverage: SOM's VE field (the bandit preset: sigma 0.004 -> 0.4, w 12.5, K 32, beta_Q = 5), with this
  critic as Q, Euler-integrated from the prior for 200 steps: the fraction of 400 samples within 0.5
  of a high mode (with the true reward as Q it is ~100%).

    python -m labs.critic_lab RUN_DIR [--out docs/critic_lab.csv]
    python -m labs.critic_lab --data uniform --critic mse [--samples 4000]

RUN_DIR is a finished run folder of `sombench bandit --algo som --task eight-gaussians`; without one only
uniform data is fitted. `--critic mse` fits the plain twin critic (TwinCritic, twin_critic_loss: SAC, MFP,
SDAC, DPMD, QSM, QVPO, DIPO) instead of the distributional one (DACER, SOM), over the grid of
`COMMON_VARIANTS` (docs/som-notes.md section 14: the common bandit preset's critic settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from algorithms.common.base import adam
from algorithms.common.critics import DistributionalTwinCritic, TwinCritic, distributional_critic_loss, twin_critic_loss
from algorithms.common.score import boltzmann_score
from algorithms.som import SOM, SOMConfig
from sombench.bandit.mixtures import mode_counts
from sombench.bandit.tasks import BOX, TASKS
from sombench.runs import checkpoint
from sombench.runs.store import RunFiles
from labs import run_lab

TASK = TASKS["eight-gaussians"]
HIGH = np.array([[0.0, 1.4142], [1.4142, 0.0], [0.0, -1.4142], [-1.4142, 0.0]])


@dataclasses.dataclass(frozen=True)
class Fit:
    data: str = "run"
    lr: float = 1e-4
    updates_per_sample: int = 1
    input_scale: float = 1.0
    width: int = 256
    batch: int = 128
    reward_scale: float = 0.2
    critic: str = "distributional"

    @property
    def label(self) -> str:
        return (f"{self.critic} {self.data}, lr {self.lr:g}, {self.updates_per_sample}/sample, input x{self.input_scale:g}, "
                f"2x{self.width}")


def reward(actions_algo: torch.Tensor) -> torch.Tensor:
    return TASK.reward(actions_algo.double() * BOX).float()


def dataset(kind: str, run: Path | None, seed: int, samples: int = 4000) -> torch.Tensor:
    """Actions in algorithm units [-1, 1]^2: the run's buffer, or as many uniform ones (`samples` without a run)."""
    buf = checkpoint.load_algorithm_state(RunFiles(run).checkpoint, "cpu")["buffer"]["storage"]["action"] if run else None
    if kind == "run":
        return buf.float()
    g = torch.Generator().manual_seed(seed)
    return torch.rand(buf.shape if buf is not None else (samples, 2), generator=g) * 2 - 1


def fit_critic(fit: Fit, actions: torch.Tensor, seed: int = 0) -> tuple[callable, float]:
    torch.manual_seed(seed)
    plain = fit.critic == "mse"
    critic = (TwinCritic if plain else DistributionalTwinCritic)(1, 2, (fit.width, fit.width), "gelu")
    opt = adam(critic.parameters(), fit.lr, torch.device("cpu"))
    mean_std = torch.full((2,), -1.0)
    r = reward(actions)
    obs = torch.zeros((fit.batch, 1))
    start = time.perf_counter()
    for _ in range(fit.updates_per_sample * len(actions)):
        idx = torch.randint(0, len(actions), (fit.batch,))
        y = fit.reward_scale * r[idx]  # terminal: no bootstrap
        if plain:
            loss = twin_critic_loss(critic(obs, actions[idx] * fit.input_scale), y)
        else:
            mu, sigma = critic(obs, actions[idx] * fit.input_scale)
            loss, mean_std = distributional_critic_loss(mu, sigma, y, y, mean_std, 0.005)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    critic.requires_grad_(False)

    def q(a: torch.Tensor) -> torch.Tensor:
        return critic.min_q(torch.zeros((a.shape[0], 1)), a * fit.input_scale)

    return q, time.perf_counter() - start


def grid(n: int = 101) -> tuple[torch.Tensor, np.ndarray]:
    axis = torch.linspace(-1, 1, n)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1), axis.numpy()


def peaks(q_grid: np.ndarray, axis: np.ndarray) -> int:
    """High modes with a local maximum of Q (3 x 3 neighbourhood) within 0.5 bandit units of the centre."""
    n = len(axis)
    q = q_grid.reshape(n, n)
    pad = np.pad(q, 1, constant_values=-np.inf)
    neigh = np.max([pad[1 + dy:n + 1 + dy, 1 + dx:n + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], axis=0)
    iy, ix = np.nonzero(q > neigh)
    maxima = np.stack([axis[ix], axis[iy]], 1) * BOX
    return int(sum(np.any(np.linalg.norm(maxima - c, axis=1) < 0.5) for c in HIGH)) if len(maxima) else 0


def coverage(q_fn, n: int = 400, steps: int = 200, seed: int = 0) -> dict:
    """SOM's VE field (bandit preset) with q_fn as Q, integrated from the prior; fractions in bandit units."""
    cfg = SOMConfig(**{**SOM.presets["bandit"], "buffer_size": 1, "hidden_sizes": (8,)})
    som = SOM(1, 2, cfg, "cpu")
    g = torch.Generator().manual_seed(seed)
    a = som.prior_std * torch.randn((n, 2), generator=g)
    times = torch.linspace(1.0, 1e-3, steps + 1)
    for i in range(steps):
        t = torch.full((n, 1), float(times[i]))
        score = boltzmann_score(q_fn, a, t, som.schedule, cfg.num_score_samples, 5.0, True, clip=1.0, generator=g)
        a = (a - float(times[i] - times[i + 1]) * som.velocity(a, score, t)).detach()
    counts = mode_counts(a.clamp(-1, 1) * BOX)
    return {"in_mode": sum(counts.values()) / n, **{k: v / n for k, v in counts.items()}}


VARIANTS = [
    Fit(),
    Fit(lr=1e-3),
    Fit(updates_per_sample=4),
    Fit(input_scale=2.5),
    Fit(width=512),
    Fit(lr=1e-3, input_scale=2.5),
    Fit(updates_per_sample=4, input_scale=2.5),
    Fit(lr=1e-3, updates_per_sample=4),
]

COMMON_VARIANTS = [  # the plain algorithms' defaults (critic lr 3e-4), each bandit setting alone, and together
    Fit(lr=3e-4),
    Fit(lr=1e-3),
    Fit(lr=3e-4, input_scale=2.5),
    Fit(lr=3e-4, updates_per_sample=4),
    Fit(lr=1e-3, input_scale=2.5),
    Fit(lr=1e-3, input_scale=2.5, updates_per_sample=4),
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Fit fresh SOM critics on a bandit run's buffer and on uniform data.")
    parser.add_argument("run", type=Path, nargs="?", default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--critic", choices=("distributional", "mse"), default="distributional")
    parser.add_argument("--data", choices=("run", "uniform", "both"), default="both")
    parser.add_argument("--samples", type=int, default=4000, help="uniform actions when no RUN_DIR is given")
    parser.add_argument("--reward-scale", type=float, default=0.2)
    args = parser.parse_args()
    if args.run is None and args.data != "uniform":
        parser.error("RUN_DIR is needed unless --data uniform")
    variants = VARIANTS if args.run is not None else COMMON_VARIANTS
    torch.set_num_threads(1)
    pts, axis = grid()
    r_grid = reward(pts).numpy()
    rows = [{"fit": "true reward as Q", "corr": 1.0, "peaks": 4, "q_origin": 0.0, **coverage(reward, seed=args.seed), "seconds": 0.0}]
    print(rows[0])
    for data in ("run", "uniform") if args.data == "both" else (args.data,):
        actions = dataset(data, args.run, args.seed, args.samples)
        for fit in variants:
            fit = dataclasses.replace(fit, data=data, critic=args.critic, reward_scale=args.reward_scale)
            q_fn, seconds = fit_critic(fit, actions, args.seed)
            with torch.no_grad():
                q = q_fn(pts).numpy()
            span = q.max() - q.min()
            origin = q_fn(torch.zeros((1, 2))).item()
            row = {"fit": fit.label, "corr": float(np.corrcoef(q, r_grid)[0, 1]), "peaks": peaks(q, axis),
                   "q_origin": (origin - q.min()) / span if span > 0 else float("nan"),
                   **coverage(q_fn, seed=args.seed), "seconds": round(seconds, 1)}
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    print(frame.round(3).to_string(index=False))


if __name__ == "__main__":
    run_lab(main)
