"""DACER's online loop on the eight-Gaussian bandit, watched from inside (docs/som-notes.md section 11):
why does its generator end at the origin, where the reward is ~0, rather than on a mode?

The loop is labs/online_lab.py's `bandit_step` (the runner's for a one-step bandit: `warmup_steps` uniform actions,
then per env step one noisy `act`, one stored terminal transition, one `update`), driving DACER's own
class with its bandit preset. Every `--eval-every` updates it prints what the generator does (1,000
one-step samples of the reverse process without exploration noise: in-mode share, the samples' mean and
standard deviation in bandit units) and what the critic holds on a 101 x 101 grid of the box (min(Q1, Q2)
at the origin, its grid maximum and where that lies, its value at the four high modes). A critic whose
maximum sits at the origin early, followed by a generator whose spread shrinks there, is the data loop
the notes describe. `--critic-action-scale 2.5` gives DACER's critic the input units of SOM's bandit
preset (section 9's fix of the same underfit hump), to test whether the hump is what DACER follows.

    python -m labs.dacer_lab --seed 0 --steps 3000 [--set key=value ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from algorithms.dacer import DACER, DACERConfig
from labs.online_lab import MODES, bandit_step
from sombench.bandit.mixtures import HIGH_MODES, mode_counts
from sombench.bandit.tasks import BOX
from sombench.overrides import apply_overrides
from labs import run_lab


@torch.no_grad()
def report(algo: DACER, n: int = 1000) -> dict:
    obs = torch.zeros((n, 1), device=algo.device)
    points = BOX * algo.policy(obs, noisy=False).cpu()
    counts = mode_counts(points)
    axis = torch.linspace(-1.0, 1.0, 101)
    grid = torch.cartesian_prod(axis, axis)  # [101^2, 2], algorithm units
    q = algo.critic.min_q(torch.zeros((len(grid), 1), device=algo.device), grid.to(algo.device)).squeeze(-1).cpu()
    best = int(q.argmax())
    at_modes = algo.critic.min_q(torch.zeros((4, 1), device=algo.device),
                                 torch.tensor([HIGH_MODES[k] for k in MODES], device=algo.device) / BOX).squeeze(-1).cpu()
    return {"in_mode": sum(counts.values()) / n, "mean": points.mean(0).tolist(), "std": float(points.std(0).mean()),
            "q_origin": float(q[len(grid) // 2]), "q_max": float(q[best]), "argmax": (BOX * grid[best]).tolist(),
            "q_modes": at_modes.tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--critic-action-scale", type=float, default=1.0,
                   help="multiply the critic's action input by this (SOM's bandit fix, section 9; DACER has no field for it)")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, _ = apply_overrides(DACERConfig, args.sets, base=dict(DACER.presets["bandit"]))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    algo = DACER(1, 2, cfg, torch.device("cpu"))
    algo.critic.action_scale = algo.critic_target.action_scale = args.critic_action_scale  # a plain float input factor
    print("updates in-mode  mean (bandit units)  std   Q(0)    Q max at          Q at N/E/S/W")
    for step in range(args.steps):
        if bandit_step(algo, rng, step):
            done = step + 1 - algo.warmup_steps
            if done % args.eval_every == 0 or step == args.steps - 1:
                h = report(algo)
                print(f"{done:7d} {h['in_mode']:6.1%}  ({h['mean'][0]:+.2f}, {h['mean'][1]:+.2f})  {h['std']:6.3f}  "
                      f"{h['q_origin']:+.3f}  {h['q_max']:+.3f} ({h['argmax'][0]:+.2f}, {h['argmax'][1]:+.2f})  "
                      + " ".join(f"{v:+.3f}" for v in h["q_modes"]), flush=True)


if __name__ == "__main__":
    run_lab(main)
