"""SOM on the eight-Gaussian bandit with the true reward as Q: the cheap setting where each of SOM's
pieces can be checked and each open choice refuted (docs/som-notes.md).

- `integrate_field`: Euler-integrate SOM's target velocity (no network) from noise to t ~ 0;
- `train_generator`: train a state-free MeanFlow actor on that velocity (or, as a control of the
  machinery, on the exact PF-ODE of the mixture) and count where its one-step samples land.

Units are the bandit's own: actions in the box [-2.5, 2.5]^2 (the modes sit at radius sqrt 2, so a
[-1, 1] box could not hold them), noise N(0, prior^2 I) in the same units.

    python -m labs.som_lab                # the tables of docs/som-notes.md (minutes on 2 cores)
"""

from __future__ import annotations

import dataclasses
import time

import torch

from algorithms.common.meanflow import adaptive_weighted_loss, meanflow_target, sample_times
from algorithms.common.score import boltzmann_score
from algorithms.som import SOM, SOMConfig
from sombench.bandit.mixtures import eight_gaussians, eight_gaussians_reward, mode_counts
from labs import run_lab

BOX = 2.5
MIXTURE = eight_gaussians()


def reward(a: torch.Tensor) -> torch.Tensor:
    return eight_gaussians_reward(a, MIXTURE)


def lab_som(cfg: SOMConfig) -> SOM:
    """A state-free SOM (obs_dim 0, 2-D actions) built from `cfg`: the lab uses its schedule, prior, score
    scale w, velocity (Eq. 6/8) and MeanFlow actor, so it tests SOM's own code, not a copy of it."""
    return SOM(0, 2, dataclasses.replace(cfg, buffer_size=1), "cpu")


def field(som: SOM, a: torch.Tensor, t: torch.Tensor, sign: float = 1.0, beta_q: float = 1.0,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """SOM's forward-time target velocity at (a, t) with Q = the true reward (standardized, Eq. 5)."""
    cfg = som.config
    s = boltzmann_score(reward, a, t, som.schedule, cfg.num_score_samples, beta_q, cfg.standardize_q,
                        clip=BOX if cfg.clip_proposals else None, generator=generator)
    return som.velocity(a, sign * s, t)


def summary(points: torch.Tensor) -> dict:
    counts = mode_counts(points)
    n = points.shape[0]
    return {"in_mode": sum(counts.values()) / n, "modes": {k: v / n for k, v in counts.items()},
            "median_radius": float(points.norm(dim=1).median())}


def integrate_field(cfg: SOMConfig, n: int = 400, steps: int = 200, sign: float = 1.0, seed: int = 0) -> dict:
    """Euler steps of the generation ODE da = -v dt from t = 1 to 1e-3, starting at N(0, prior^2 I)."""
    g = torch.Generator().manual_seed(seed)
    som = lab_som(cfg)
    a = som.prior_std * torch.randn((n, 2), generator=g)
    times = torch.linspace(1.0, 1e-3, steps + 1)
    for i in range(steps):
        t = torch.full((n, 1), float(times[i]))
        a = (a - float(times[i] - times[i + 1]) * field(som, a, t, sign, generator=g)).detach()
    return summary(a)


@dataclasses.dataclass
class TrainResult:
    history: list[tuple[int, dict]]
    seconds: float

    @property
    def final(self) -> dict:
        return self.history[-1][1]


def one_step_samples(som: SOM, n: int, generator: torch.Generator) -> torch.Tensor:
    """SOM's one-step generation from its prior, clipped to the bandit's box (the lab's units)."""
    with torch.no_grad():
        eps = som.prior_std * torch.randn((n, 2), generator=generator)
        return som.actor.one_step(eps, torch.zeros((n, 0)), clip=BOX)


def train_generator(cfg: SOMConfig, updates: int, target: str = "som", batch: int = 256, seed: int = 0,
                    eval_every: int = 1000, buffer_size: int = 20_000) -> TrainResult:
    """Train a state-free MeanFlow actor for `updates` steps; evaluate 1,000 one-step samples.

    target 'som': a_0 from a FIFO buffer of the generator's own past samples (as in RL, seeded with
    uniform actions in the box), velocity = SOM's field with the true reward as Q.
    target 'exact': a_0 from the mixture itself and the exact VP PF-ODE velocity -0.5 beta (a + score)
    with the analytic score (no normalization): the MeanFlow machinery alone must reproduce the mixture.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    som = lab_som(cfg)
    sched, actor = som.schedule, som.actor
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
    buffer = (torch.rand((buffer_size, 2), generator=g) * 2 - 1) * BOX
    ptr, empty = 0, torch.zeros((batch, 0))
    history, start = [], time.perf_counter()
    for step in range(1, updates + 1):
        if target == "exact":
            a0 = MIXTURE.sample(batch, g).float()
        else:
            a0 = buffer[torch.randint(0, buffer_size, (batch,), generator=g)]
        r, t = sample_times(batch, cfg.r_equals_t_fraction, "cpu", g, mode=cfg.time_sampling)
        a_t = sched.perturb(a0, torch.randn(a0.shape, generator=g), t)
        if target == "exact":
            scale, std = sched.marginal_kernel(t)
            v = sched.pf_ode_drift(a_t, MIXTURE.score(a_t, scale, std).float(), t)
        else:
            v = field(som, a_t, t, generator=g)
        u, u_tgt = meanflow_target(lambda z, r_, t_: actor(z, r_, t_, empty), a_t, r, t, v)
        loss = adaptive_weighted_loss(u, u_tgt, cfg.loss_weight_power)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if target == "som":  # the generator's fresh samples enter the buffer, as env actions would
            fresh = one_step_samples(som, 16, g)
            idx = (torch.arange(16) + ptr) % buffer_size
            buffer[idx] = fresh
            ptr = (ptr + 16) % buffer_size
        if step % eval_every == 0 or step == updates:
            history.append((step, summary(one_step_samples(som, 1000, g))))
    return TrainResult(history, time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    rows = [("VP contracting, w 25", SOMConfig(), 1.0), ("VP contracting, w 0", SOMConfig(score_scale=0.0), 1.0),
            ("VP contracting, score sign flipped", SOMConfig(), -1.0), ("VP literal, w 25", SOMConfig(vp_velocity="literal"), 1.0),
            ("VE sigma_max 1, w 5", SOMConfig(sde="ve"), 1.0), ("VE sigma_max 1, w 10", SOMConfig(sde="ve", score_scale=10.0), 1.0),
            ("VE, score sign flipped", SOMConfig(sde="ve"), -1.0)]
    print("## Field integration (400 points, 200 Euler steps, K = 100, true reward as Q)")
    for label, cfg, sign in rows:
        res = integrate_field(cfg, sign=sign)
        print(f"{label:40s} in-mode {res['in_mode']:.1%}  modes {res['modes']}  median radius {res['median_radius']:.2f}")
    print("## One-step generator training")
    for label, cfg, target in [("exact PF-ODE (machinery)", SOMConfig(), "exact"), ("SOM VP contracting w 25", SOMConfig(), "som"),
                               ("SOM VE w 5", SOMConfig(sde="ve"), "som")]:
        res = train_generator(cfg, 4000, target)
        traj = ", ".join(f"{s}: {h['in_mode']:.0%}" for s, h in res.history)
        print(f"{label:30s} {traj}  final modes {res.final['modes']}  ({res.seconds:.0f} s)")


if __name__ == "__main__":
    run_lab(main)
