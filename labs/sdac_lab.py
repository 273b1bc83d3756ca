"""Why SDAC's generator spreads diffusely on the eight-Gaussian bandit (docs/som-notes.md section 19).

Section 15 ruled out SDAC's critic (corr(Q, r) 0.97-0.98, four peaks at their true heights) and its actor's
rate; its generator still puts only 15-16% of its samples within 0.5 of a high mode. Two places are left:
the target SDAC's loss estimates (K self-normalised reverse samples a~ weighted by softmax(beta Q)), and
the fit of that target by the online loop. This lab separates them with a perfect critic (the true reward
times `reward_scale`, labs/online_lab.py `oracle_min_q`):

- `ideal`: the reverse process (SDAC's own schedule, prior and x0 clipping) driven not by a network but
  by the loss's target itself, eps(x_i, i) = sum_k w_k eps'_k with w = softmax(beta Q(a~_k)), computed
  afresh at every step for every sample with K reverse samples: what a generator that fits its target
  exactly would sample. Its in-mode share at the run's K = 64 and beta = 5 / alpha (alpha ~0.99 in the
  runs) against larger K and other beta says whether the estimator's target itself is diffuse.
- `offline`: a fresh actor fitted by plain regression on the loss's expectation (`--repeats` estimates
  averaged, default 8; 1 is the online loss's single estimate) at
  x_i diffused from uniform box actions, then sampled with the network at one step only (the mean target at
  the others) and at every step but one: which step's fit decides the samples.
- `train`: SDAC's own class and online loop (labs/online_lab.py `bandit_step`: the runner's loop for a
  one-step bandit) with the critic's min(Q1, Q2) replaced by the oracle for acting and for the weights;
  every `--eval-every` updates, the generator alone (the reverse process of the actor, no best-of-N).

Both report the share of 1,000 samples within 0.5 (bandit units) of each high mode N/E/S/W and their mean
true reward.

    python -m labs.sdac_lab ideal [--k 64 --beta 5 --set key=value ...]
    python -m labs.sdac_lab train [--steps 4000 --set key=value ...]
    python -m labs.sdac_lab offline [--steps 3000 --repeats 8 --set key=value ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from algorithms.common.diffusion import DDPMSchedule, reverse_process
from algorithms.common.diffusion_losses import predict_noise
from algorithms.sdac import SDAC, SDACConfig, reverse_samples, sdac_weights
from labs.online_lab import MODES, bandit_step, oracle_min_q
from sombench.bandit.mixtures import mode_counts
from sombench.bandit.tasks import BOX, eight_gaussians_task_reward
from sombench.overrides import apply_overrides
from labs import run_lab


def bandit_config(sets: list[str]) -> SDACConfig:
    """SDAC's config under its bandit preset at section 15's scale (2 x 64, batch 64), changed by `sets`."""
    cfg, _ = apply_overrides(SDACConfig, ["hidden_sizes=64,64", "batch_size=64", *sets], base=dict(SDAC.presets["bandit"]))
    return cfg


def share_report(actions: torch.Tensor) -> dict:
    """In-mode share and per-mode shares of actions [n, 2] (algorithm units), and their mean true reward."""
    points = BOX * actions.detach().cpu().double()
    counts = mode_counts(points)
    shares = {k: counts.get(k, 0) / len(points) for k in MODES}
    return {"in_mode": sum(shares.values()), **shares, "mean_reward": float(eight_gaussians_task_reward(points).mean())}


@torch.no_grad()
def target_noise(min_q, schedule: DDPMSchedule, x: torch.Tensor, i: int, k: int, beta: float, clip: bool,
                 generator: torch.Generator) -> torch.Tensor:
    """SDAC's regression target at (x_i, i): sum_k w_k eps'_k [n, 2], with K reverse samples of x [n, 2]."""
    n = x.shape[0]
    noise = torch.randn((n, k, x.shape[1]), generator=generator)
    steps = torch.full((n,), i, dtype=torch.long)
    a_rev = reverse_samples(schedule, x, steps, noise, clip)
    q = min_q(None, a_rev.reshape(n * k, -1)).view(n, k)
    w = sdac_weights(q, beta)
    return (w.unsqueeze(-1) * noise).sum(1)


def ideal(k: int, beta: float | None, sets: list[str], n: int = 1000, seed: int = 0, repeats: int = 1) -> dict:
    """The reverse process driven by SDAC's target (K reverse samples at every step); beta None = 5. With
    repeats R > 1 the target is the mean of R independent K-sample estimates: as R grows, the expectation
    the loss regresses eps_theta onto (a network that fits its loss exactly predicts that mean, not one
    noisy estimate)."""
    cfg = bandit_config(sets)
    schedule = DDPMSchedule(cfg.diffusion_steps, cfg.beta_schedule, "cpu", linear_scale=cfg.linear_beta_scale)
    min_q = oracle_min_q(cfg.reward_scale, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    beta = 5.0 if beta is None else beta
    x_init = cfg.prior_std * torch.randn((n, 2), generator=g)

    def model(x: torch.Tensor, i: int) -> torch.Tensor:
        return sum(target_noise(min_q, schedule, x, i, k, beta, cfg.clip_reverse_samples, g) for _ in range(repeats)) / repeats

    x = reverse_process(model, schedule, x_init, clip=1.0, generator=g).clamp(-1.0, 1.0)
    return {"mode": "ideal", "k": k, "beta": beta, "repeats": repeats, "sets": sets, **share_report(x)}


def train(steps: int, sets: list[str], seed: int = 0, eval_every: int = 500, a0: str = "policy") -> dict:
    """SDAC's online loop on the bandit with the oracle as min(Q1, Q2); the generator's shares over training.
    a0 'uniform': the actions the loss diffuses into x_i are uniform in the box instead of the policy's
    (best-of-N plus noise), so x_i covers the box at every diffusion step."""
    cfg = bandit_config(sets)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    algo = SDAC(1, 2, cfg, torch.device("cpu"))
    algo.critic.min_q = oracle_min_q(cfg.reward_scale, algo.device)
    if a0 == "uniform":
        actor_loss = algo.actor_loss
        algo.actor_loss = lambda obs, action: actor_loss(obs, torch.rand_like(action) * 2 - 1)
    history, start = [], time.perf_counter()
    for step in range(steps):
        if bandit_step(algo, rng, step):
            done = step + 1 - algo.warmup_steps
            if done % eval_every == 0 or step == steps - 1:
                with torch.no_grad():
                    samples = algo.generate(torch.zeros((1000, 1)))
                history.append({"updates": done, "alpha": float(algo.temperature.alpha.detach()), **share_report(samples)})
                print(format_row(history[-1], f"{done:6d} updates, alpha {history[-1]['alpha']:.3f}"), flush=True)
    fit = fit_report(algo, cfg)
    for row in fit:
        print(f"step i={row['i']}: |target| {row['target_norm']:.3f}  |net - target| {row['error']:.3f}  "
              f"cosine {row['cosine']:.2f}", flush=True)
    return {"mode": "train", "a0": a0, "fit": fit, "steps": steps, "sets": sets, "seed": seed, "history": history,
            "seconds": time.perf_counter() - start}


@torch.no_grad()
def fit_report(algo: SDAC, cfg: SDACConfig, n: int = 1000, k: int = 64, repeats: int = 8, seed: int = 1) -> list[dict]:
    """How well the trained generator fits the loss's expectation along its own reverse paths: at every step i,
    the generating actor's eps(x_i) against the mean of `repeats` K-sample targets at the same x_i (norm of
    the target, mean distance, mean cosine)."""
    g = torch.Generator().manual_seed(seed)
    actor, obs = algo.generating_actor(), torch.zeros((n, 1))
    path = actor.sample(obs, algo.schedule, cfg.prior_std, return_path=True)
    rows = []
    for j, i in enumerate(reversed(range(algo.schedule.steps))):
        x = path[j]
        net = predict_noise(actor, obs, x, torch.full((n,), i))
        target = sum(target_noise(algo.critic.min_q, algo.schedule, x, i, k, 5.0 / float(algo.temperature.alpha.detach()),
                                  cfg.clip_reverse_samples, g) for _ in range(repeats)) / repeats
        rows.append({"i": i, "target_norm": float(target.norm(dim=-1).mean()), "error": float((net - target).norm(dim=-1).mean()),
                     "cosine": float(torch.nn.functional.cosine_similarity(net, target, dim=-1).mean())})
    return rows


def offline(steps: int, sets: list[str], seed: int = 0, repeats: int = 8, lr: float = 1e-3, batch: int = 256) -> dict:
    """Fit a fresh SDAC actor offline, by plain regression on the loss's expectation (the mean of `repeats`
    K = 64 targets; repeats 1 is the online loss's single noisy estimate) at x_i forward-diffused from uniform box actions; then sample with it, and with hybrids that
    use the network at one step i only (the mean of 8 targets elsewhere, whatever `repeats`) or everywhere but i: which step's fit
    decides where the samples land."""
    cfg = bandit_config(sets)
    torch.manual_seed(seed)
    algo = SDAC(1, 2, cfg, torch.device("cpu"))
    sched, actor, steps_t = algo.schedule, algo.actor, algo.schedule.steps
    min_q = oracle_min_q(cfg.reward_scale, torch.device("cpu"))
    g = torch.Generator().manual_seed(10_000 + seed)
    opt = torch.optim.Adam(actor.parameters(), lr)
    for _ in range(steps):
        i = torch.randint(0, steps_t, (batch,))
        x = sched.q_sample(torch.rand((batch, 2)) * 2 - 1, torch.randn(batch, 2), i)
        with torch.no_grad():
            target = torch.zeros(batch, 2)
            for j in range(steps_t):
                rows = i == j
                if rows.any():
                    target[rows] = sum(target_noise(min_q, sched, x[rows], j, 64, 5.0, cfg.clip_reverse_samples, g)
                                       for _ in range(repeats)) / repeats
        loss = ((predict_noise(actor, torch.zeros(batch, 1), x, i) - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def hybrid(net_steps: set[int]) -> float:
        gh = torch.Generator().manual_seed(20_000 + seed)
        x_init = cfg.prior_std * torch.randn((1000, 2), generator=gh)

        def model(x: torch.Tensor, i: int) -> torch.Tensor:
            if i in net_steps:
                return predict_noise(actor, torch.zeros(len(x), 1), x, torch.full((len(x),), i))
            return sum(target_noise(min_q, sched, x, i, 64, 5.0, cfg.clip_reverse_samples, gh) for _ in range(8)) / 8

        return share_report(reverse_process(model, sched, x_init, clip=1.0, generator=gh).clamp(-1.0, 1.0))["in_mode"]

    every = set(range(steps_t))
    return {"mode": "offline", "sets": sets, "steps": steps, "final_loss": float(loss.detach()), "target_only": hybrid(set()),
            "network_only": hybrid(every),
            "by_step": [{"i": i, "network_at_i_only": hybrid({i}), "network_but_at_i": hybrid(every - {i})} for i in range(steps_t)]}


def format_row(r: dict, head: str) -> str:
    return (f"{head}: in-mode {r['in_mode']:.1%}  " + " ".join(f"{m} {r[m]:.1%}" for m in MODES)
            + f"  reward {r['mean_reward']:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("ideal", "train", "offline"))
    p.add_argument("--k", type=int, nargs="+", default=[64], help="ideal: reverse samples per step (several: one row each)")
    p.add_argument("--beta", type=float, nargs="+", default=[5.0], help="ideal: inverse temperatures (one row each)")
    p.add_argument("--repeats", type=int, nargs="+", default=None,
                   help="the target is the mean of R estimates of K samples (ideal: one row each, default 1; "
                        "offline: the first R, default 8)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--a0", choices=("policy", "uniform"), default="policy", help="train: the actions diffused into x_i")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.mode == "ideal":
        for beta in args.beta:
            for k in args.k:
                for r in args.repeats or [1]:
                    print(format_row(ideal(k, beta, args.sets, seed=args.seed, repeats=r),
                                     f"K {k:5d}, beta {beta:g}, repeats {r:3d}"), flush=True)
    elif args.mode == "offline":
        res = offline(args.steps, args.sets, args.seed, repeats=(args.repeats or [8])[0])
        print(f"final loss {res['final_loss']:.3f}; in-mode: mean target at every step {res['target_only']:.1%}, "
              f"network at every step {res['network_only']:.1%}")
        for row in res["by_step"]:
            print(f"step i={row['i']}: network at i only {row['network_at_i_only']:.1%}, "
                  f"network everywhere but i {row['network_but_at_i']:.1%}", flush=True)
    else:
        res = train(args.steps, args.sets, args.seed, args.eval_every, args.a0)
        print(f"{res['seconds']:.0f} s")


if __name__ == "__main__":
    run_lab(main)
