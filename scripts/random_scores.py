"""Measure the random-policy reference scores shipped in `sombench/data/random_scores.csv`.

    python scripts/random_scores.py [--episodes 50] [--out sombench/data/random_scores.csv]

A maintainer script, not part of the installed package.

A uniform random policy in the action box, evaluated exactly like any algorithm (undiscounted
return of full episodes, each seeded from (seed 0, step 0, episode)). Used as the lower reference
of `sombench table --norm-ref random`; the upper reference then falls back to the table's best.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from algorithms.common.spaces import ActionScaler
from sombench.envs import PAPER_TASKS, describe_env, make_env
from sombench.train.trainer import evaluate
from sombench.runs.store import atomic_write_csv


class RandomPolicy:
    def __init__(self, act_dim: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.act_dim = act_dim

    def act(self, obs, deterministic: bool = True) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)


def measure(env_id: str, episodes: int) -> tuple[float, float]:
    info = describe_env(env_id)
    env = make_env(env_id)
    returns = evaluate(RandomPolicy(info.act_dim), env, ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype), episodes, seed=0, env_step=0)
    env.close()
    return float(returns.mean()), float(returns.std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "sombench" / "data" / "random_scores.csv")
    args = parser.parse_args()
    rows = []
    for env_id in PAPER_TASKS:
        mean, std = measure(env_id, args.episodes)
        rows.append({"env": env_id, "min": round(mean, 2), "max": None, "random_std": round(std, 2), "episodes": args.episodes})
        print(f"{env_id:28s} {mean:10.2f} ± {std:.2f}")
    atomic_write_csv(args.out, rows)
    print(pd.read_csv(args.out).to_string(index=False))


if __name__ == "__main__":
    main()
