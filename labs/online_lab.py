"""SOM's online loop on the eight-Gaussian bandit, with parts swapped one at a time (docs/som-notes.md
section 10): which limit is left between a good field and the one-step generator?

The loop is the runner's for a one-step bandit (constant observation 0, every transition terminal):
`warmup_steps` uniform actions in [-1, 1]^2, then per env step one `act` (best-of-N plus the exploration
noise), one stored transition and one `update`; the reward is the task's r(2.5 a). It drives SOM's own
class with the bandit preset, so what it measures is SOM's code. What can be swapped:

- `--critic oracle`: the critic's min(Q1, Q2) is replaced by the true reward times `reward_scale` (0.2,
  the value a perfect critic of one-step episodes learns), for acting, the critic's next action and the
  score. The learned critic still trains (its loss is unused): the loop's timing stays SOM's.
- `--a0 fresh`: the actor's a_0 (Algorithm 1 takes it from the batch) is the generator's own current
  one-step samples instead, as in labs/som_lab.py `train_generator`; `--a0 uniform`: uniform in the box.

Every `--eval-every` updates: 1,000 one-step samples of the generator alone (eps ~ N(0, sigma_max^2 I),
no best-of-N), in-mode share and per-mode shares N/E/S/W (within 0.5 of a high mode, bandit units), and
min(Q1, Q2) at the four high-mode centres (a perfect critic holds 0.2 at each).

    python -m labs.online_lab --critic oracle --seed 0 --steps 4000 [--set key=value ...] [--out f.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from algorithms.common.base import Choice
from algorithms.common.buffer import Batch
from algorithms.som import SOM, SOMConfig
from sombench.bandit.mixtures import HIGH_MODES, eight_gaussians, mode_counts
from sombench.bandit.tasks import BOX, eight_gaussians_task_reward
from sombench.overrides import apply_overrides
from labs import run_lab

MODES = ("N", "E", "S", "W")


def oracle_min_q(reward_scale: float, device: torch.device):
    """What a perfect critic of a one-step bandit holds, reward_scale * r(2.5 a) [B, 1], on `device`
    (the task's mixture written out: its eight components share sigma 0.3; checked against the task's
    reward function below)."""
    mixture = eight_gaussians()
    means, weights, var = mixture.means.float().to(device), mixture.weights.float().to(device), 0.3**2
    norm = float((mixture.weights * torch.exp(-((mixture.means - mixture.means[:1]) ** 2).sum(-1) / (2 * var))).sum())  # r(mu_0) = 1

    def min_q(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        d2 = ((BOX * actions.float()).unsqueeze(-2) - means).pow(2).sum(-1)  # [B, 8]
        return (reward_scale / norm * (weights * torch.exp(-d2 / (2 * var))).sum(-1, keepdim=True)).to(actions.dtype)

    probe = torch.rand((64, 2), dtype=torch.float64) * 2 - 1
    expected = reward_scale * eight_gaussians_task_reward(BOX * probe)
    assert torch.allclose(min_q(None, probe.to(device)).cpu().double().squeeze(-1), expected, atol=1e-5)
    return min_q


def generator_report(algo: SOM, n: int, generator: torch.Generator) -> dict:
    with torch.no_grad():
        eps = (algo.prior_std * torch.randn((n, 2), generator=generator)).to(algo.device)
        points = BOX * algo.actor.one_step(eps, torch.zeros((n, 1), device=algo.device), clip=1.0).cpu()
        centres = torch.tensor([HIGH_MODES[k] for k in MODES], device=algo.device) / BOX
        peaks = algo.critic.min_q(torch.zeros((len(MODES), 1), device=algo.device), centres).reshape(-1).cpu()
    counts = mode_counts(points)
    shares = {k: counts.get(k, 0) / n for k in MODES}
    return {"in_mode": sum(shares.values()), **shares,
            "mean_reward": float(eight_gaussians_task_reward(points).mean()), "q_peaks": peaks.tolist()}


def bandit_step(algo, rng: np.random.Generator, step: int) -> bool:
    """One env step of the runner's loop for the one-step bandit (constant observation 0, every transition
    terminal): a uniform action during warm-up, else `explore`; store it; then one `train_step` after warm-up
    (True when one was made). Any off-policy algorithm of the registry (labs/dacer_lab.py uses it too)."""
    obs = np.zeros(1, np.float32)
    choice = Choice(rng.uniform(-1.0, 1.0, 2).astype(np.float32)) if step < algo.warmup_steps else algo.explore(obs)
    r = float(eight_gaussians_task_reward(torch.as_tensor(BOX * choice.action, dtype=torch.float64).reshape(1, 2))[0])
    algo.observe(obs, choice, r, obs, True, False)
    if step < algo.warmup_steps:
        return False
    algo.train_step()
    return True


def run(critic: str, a0: str, seed: int, steps: int, sets: list[str], eval_every: int = 500, device: str = "cpu",
        out: str | None = None) -> dict:
    preset = SOM.presets["bandit"]
    cfg, _ = apply_overrides(SOMConfig, sets, base=dict(preset))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    algo = SOM(1, 2, cfg, torch.device(device))
    if critic == "oracle":
        algo.critic.min_q = oracle_min_q(cfg.reward_scale, algo.device)
    if a0 != "buffer":
        actor_step = algo.actor_step

        def swapped(batch: Batch) -> dict:
            b = batch.obs.shape[0]
            if a0 == "fresh":
                with torch.no_grad():
                    action = algo.actor.one_step(algo.prior_std * torch.randn((b, 2), device=algo.device), batch.obs, clip=1.0)
            else:
                action = torch.rand((b, 2), device=algo.device) * 2 - 1
            return actor_step(batch._replace(action=action))

        algo.actor_step = swapped
    result = {"critic": critic, "a0": a0, "seed": seed, "steps": steps, "sets": sets, "device": device}
    history, start = [], time.perf_counter()
    for step in range(steps):
        if bandit_step(algo, rng, step):
            done = step + 1 - algo.warmup_steps
            if done % eval_every == 0 or step == steps - 1:
                history.append({"updates": done, **generator_report(algo, 1000, g)})
                result.update(history=history, seconds=time.perf_counter() - start)
                if out:  # rewritten at every evaluation, so a run stopped early keeps what it measured
                    with open(out, "w") as f:
                        json.dump(result, f)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--critic", choices=("learned", "oracle"), default="learned")
    p.add_argument("--a0", choices=("buffer", "fresh", "uniform"), default="buffer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(1)
    res = run(args.critic, args.a0, args.seed, args.steps, args.sets, args.eval_every, args.device, args.out)
    for h in res["history"]:
        print(f"{h['updates']:6d} in-mode {h['in_mode']:.1%}  " + " ".join(f"{k} {h[k]:.1%}" for k in MODES)
              + f"  reward {h['mean_reward']:.3f}  Q at N/E/S/W " + " ".join(f"{q:.3f}" for q in h["q_peaks"]), flush=True)
    print(f"{res['seconds']:.0f} s")


if __name__ == "__main__":
    run_lab(main)
