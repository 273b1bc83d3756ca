"""The paper's 2-D bandits as Gymnasium environments (SOM Section 5.2, Appendices F and H): one-step
episodes with a constant observation, so every algorithm trains on them through the same runner and
its critic learns r(a).

Tasks (reward in [0, 1], action box [-2.5, 2.5]^2 for all three: the eight-Gaussian modes sit at
radius sqrt 2, which a [-1, 1] box cannot hold, and inside it the corners, low modes, would score
highest):

    sombench/EightGaussians-v0   eight-Gaussian mixture density / its maximum       (Appendix F.1)
    sombench/TwoMoons-v0         Gaussian tube around the two-moons curves           (Appendix F.2)
    sombench/Checkerboard-v0     smooth 4 x 4 checkerboard on [-2, 2]^2              (Appendix F.3)

Perturbations (Appendix H), written `noise:SIGMA` or `bump:C,SIGMA` on the command line:

    noise:SIGMA   r + SIGMA * N(0, 1), a fresh draw on every query (from the env's RNG, so a seeded
                  run is reproducible and a resumed one continues the same stream);
    bump:C,SIGMA  r + C * r_max * exp(-|a|^2 / (2 SIGMA^2)), deterministic; r_max = 1 for every task.

A perturbed task is its own env id, so its runs are stored apart from the clean ones and a run's
identity (config.json) names the perturbation: `sombench/EightGaussians-noise0.2-v0`,
`sombench/EightGaussians-bump0.5x0.3-v0` (C x SIGMA). Such ids are registered on first use
(`ensure_registered`, which sombench.envs finds through the `sombench.envs` entry point); `gym.make("sombench/EightGaussians-v0",
perturb="noise:0.2")` gives the same env.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from sombench.errors import InvalidValue
from sombench.bandit.mixtures import GaussianMixture, eight_gaussians, eight_gaussians_reward, mode_counts

BOX = 2.5
"""Half-width of every bandit's action box: [-2.5, 2.5]^2."""


# -- rewards ------------------------------------------------------------------------------------
_EIGHT = eight_gaussians()


def eight_gaussians_task_reward(a: torch.Tensor) -> torch.Tensor:
    """r(a) = p(a) / p(mu_0), p = sum_i w_i N(a; mu_i, 0.3^2 I) / sum_i w_i, mu_i = sqrt 2 (cos 2 pi i/8,
    sin 2 pi i/8), w_i = 2 (even i), 1 (odd i): 1 at a high-mode centre, ~0 far away (Appendix F.1)."""
    return eight_gaussians_reward(a.double(), _EIGHT)


# The two moons of sklearn's make_moons (upper: centre (0, 0), angles [0, pi]; lower: centre (1, 0.5),
# angles [pi, 2 pi], both radius 1), shifted to be centred on the origin and scaled by 1.2 to fill the box.
MOON_SCALE = 1.2
MOON_WIDTH = 0.2
MOONS = {  # name: (centre, first angle, last angle), radius MOON_SCALE
    "upper": ((-0.5 * MOON_SCALE, -0.25 * MOON_SCALE), 0.0, math.pi),
    "lower": ((0.5 * MOON_SCALE, 0.25 * MOON_SCALE), math.pi, 2 * math.pi),
}


def _arc_distance(a: torch.Tensor, centre, start: float, end: float, radius: float) -> torch.Tensor:
    """Euclidean distance from points a [..., 2] to the circular arc (centre, radius, angles start..end)."""
    rel = a - torch.tensor(centre, dtype=a.dtype)
    angle = torch.remainder(torch.atan2(rel[..., 1], rel[..., 0]) - start, 2 * math.pi)  # 0..2pi from start
    on_arc = angle <= end - start
    to_curve = (rel.norm(dim=-1) - radius).abs()
    ends = [torch.tensor([math.cos(x), math.sin(x)], dtype=a.dtype) * radius for x in (start, end)]
    to_ends = torch.stack([(rel - e).norm(dim=-1) for e in ends]).min(dim=0).values
    return torch.where(on_arc, to_curve, to_ends)


def moon_distances(a: torch.Tensor) -> dict[str, torch.Tensor]:
    a = a.double()
    return {name: _arc_distance(a, c, s, e, MOON_SCALE) for name, (c, s, e) in MOONS.items()}


def two_moons_reward(a: torch.Tensor) -> torch.Tensor:
    """r(a) = exp(-d(a)^2 / (2 * 0.2^2)), d = the distance to the nearer moon's centre line (two arcs of
    radius 1.2 centred at (-0.6, -0.3), angles [0, pi], and at (0.6, 0.3), angles [pi, 2 pi]: sklearn's
    make_moons centred and scaled by 1.2). 1 on the moons, 0.61 at 0.2 from them, ~0 far away."""
    d = torch.stack(list(moon_distances(a).values())).min(dim=0).values
    return torch.exp(-(d**2) / (2 * MOON_WIDTH**2))


def checkerboard_reward(a: torch.Tensor) -> torch.Tensor:
    """r(a) = max(0, sin(pi x) sin(pi y)) for |x|, |y| <= 2, else 0: a 4 x 4 board of unit cells on
    [-2, 2]^2 whose 8 'black' cells (floor(x) + floor(y) even) each hold a smooth bump, 1 at the cell's
    centre and 0 on its edges; the white cells and everything outside the board score 0."""
    a = a.double()
    x, y = a[..., 0], a[..., 1]
    inside = (x.abs() <= 2) & (y.abs() <= 2)
    return torch.where(inside, (torch.sin(math.pi * x) * torch.sin(math.pi * y)).clamp(min=0.0), torch.zeros_like(x))


# -- modes: where a sample counts as having reached a high-reward region -------------------------
def eight_gaussians_modes(points: torch.Tensor) -> dict[str, int]:
    """Within 0.5 of each high mode, N/E/S/W (Appendix H.3)."""
    counts = mode_counts(points, 0.5)
    return {k: counts[k] for k in ("N", "E", "S", "W")}


def two_moons_modes(points: torch.Tensor) -> dict[str, int]:
    """Within 0.3 (1.5 widths) of a moon's centre line; a point near both counts for the nearer."""
    d = moon_distances(points)
    nearer_upper = d["upper"] <= d["lower"]
    return {"upper": int(((d["upper"] <= 0.3) & nearer_upper).sum()), "lower": int(((d["lower"] <= 0.3) & ~nearer_upper).sum())}


CHECKER_CELLS = [(x + 0.5, y + 0.5) for y in (1, 0, -1, -2) for x in (-2, -1, 0, 1) if (x + y) % 2 == 0]


def checkerboard_modes(points: torch.Tensor) -> dict[str, int]:
    """Inside each black cell, named by its centre."""
    pts = points.double()
    return {f"{cx:+.1f},{cy:+.1f}": int((((pts[:, 0] - cx).abs() <= 0.5) & ((pts[:, 1] - cy).abs() <= 0.5)).sum())
            for cx, cy in CHECKER_CELLS}


# -- tasks --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Goal:
    """A task's mode-coverage goal for the generator's samples: at least `total` of them in a high-reward
    region, and at least `each` in every region."""

    total: float
    each: float

    def met(self, total: float, per_mode: list[float]) -> bool:
        return bool(total >= self.total and all(f >= self.each for f in per_mode))

    @property
    def text(self) -> str:
        return f">= {self.total:.0%} in a high mode, each mode >= {self.each:.0%}"


@dataclasses.dataclass(frozen=True)
class BanditTask:
    key: str
    """The name on the command line (`--task`)."""
    env_name: str
    """The Gymnasium name: sombench/<env_name>-v0."""
    reward: Callable[[torch.Tensor], torch.Tensor]
    """Clean reward of actions [..., 2] in the bandit's own units (float64), in [0, 1]."""
    modes: Callable[[torch.Tensor], dict[str, int]]
    """Per high-reward region, how many of the points [n, 2] reached it."""
    description: str
    mode_rule: str
    """How `modes` counts, for figure captions and the README."""
    mode_centres: tuple[tuple[float, float], ...] = ()
    """Points to mark with x on figures."""
    mixture: GaussianMixture | None = None
    """The reward's density when it is one (analytic scores for the score-field figure)."""
    max_reward: float = 1.0
    goal: Goal | None = None
    """The mode-coverage goal `sombench bandit` checks, if the task has one."""

    @property
    def env_id(self) -> str:
        return f"sombench/{self.env_name}-v0"


TASKS: dict[str, BanditTask] = {
    t.key: t
    for t in [
        BanditTask("eight-gaussians", "EightGaussians", eight_gaussians_task_reward, eight_gaussians_modes,
                   "eight-Gaussian reward in [0, 1], 4 high modes N/E/S/W at radius sqrt 2 (Appendix F.1)",
                   "within 0.5 of a high mode", tuple(tuple(float(v) for v in m) for m in _EIGHT.means.tolist()), _EIGHT,
                   # SOM's Figure 5 behaviour, as the project's SOM issue states it: all four high modes kept
                   goal=Goal(0.80, 0.10)),
        BanditTask("two-moons", "TwoMoons", two_moons_reward, two_moons_modes,
                   "two-moons reward exp(-d^2 / 0.08) around two arcs (Appendix F.2)", "within 0.3 of a moon's centre line"),
        BanditTask("checkerboard", "Checkerboard", checkerboard_reward, checkerboard_modes,
                   "smooth 4 x 4 checkerboard on [-2, 2]^2, 8 rewarding cells (Appendix F.3)", "inside a rewarding cell",
                   tuple(CHECKER_CELLS)),
    ]
}


# -- perturbations (Appendix H) -------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:.12g}"


@dataclasses.dataclass(frozen=True)
class Perturbation:
    kind: str
    """'noise' (H.1) or 'bump' (H.2)."""
    sigma: float
    """noise: std of the reward noise; bump: the bump's width in action units."""
    c: float = 0.0
    """bump: peak as a fraction of the task's maximum reward."""

    @property
    def text(self) -> str:
        """The command-line spelling."""
        return f"noise:{_num(self.sigma)}" if self.kind == "noise" else f"bump:{_num(self.c)},{_num(self.sigma)}"

    @property
    def slug(self) -> str:
        """The env-id spelling."""
        return f"noise{_num(self.sigma)}" if self.kind == "noise" else f"bump{_num(self.c)}x{_num(self.sigma)}"

    def bump(self, a: torch.Tensor, max_reward: float) -> torch.Tensor:
        """The deterministic part added to the reward (0 for noise)."""
        if self.kind != "bump":
            return torch.zeros(a.shape[:-1], dtype=torch.float64)
        return self.c * max_reward * torch.exp(-(a.double() ** 2).sum(-1) / (2 * self.sigma**2))


_NUMBER = r"[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?"


def parse_perturb(text: str) -> Perturbation:
    """`noise:SIGMA` or `bump:C,SIGMA` (SIGMA, C positive numbers); UserError otherwise."""
    kind, _, args = text.strip().partition(":")
    values: list[float] = []
    try:
        values = [float(v) for v in args.split(",")] if args.strip() else []
    except ValueError:
        values = []
    good = all(math.isfinite(v) and v > 0 for v in values)
    if kind == "noise" and len(values) == 1 and good:
        return Perturbation("noise", values[0])
    if kind == "bump" and len(values) == 2 and good:
        return Perturbation("bump", values[1], values[0])
    raise InvalidValue("perturb", f"{text!r} is not a perturbation; use noise:SIGMA or bump:C,SIGMA with positive numbers (e.g. noise:0.2, bump:0.5,0.3)")


def env_id_for(task: BanditTask, perturbation: Perturbation | None) -> str:
    return task.env_id if perturbation is None else f"sombench/{task.env_name}-{perturbation.slug}-v0"


_ID = re.compile(rf"^sombench/(?P<name>[A-Za-z]+)(?:-(?:noise(?P<noise>{_NUMBER})|bump(?P<c>{_NUMBER})x(?P<width>{_NUMBER})))?-v0$")


def parse_env_id(env_id: str) -> tuple[BanditTask, Perturbation | None] | None:
    """(task, perturbation) for a bandit env id, or None if it is not one."""
    m = _ID.match(env_id)
    task = next((t for t in TASKS.values() if m and t.env_name == m["name"]), None)
    if task is None:
        return None
    if m["noise"] is not None:
        return task, parse_perturb(f"noise:{m['noise']}")
    if m["c"] is not None:
        return task, parse_perturb(f"bump:{m['c']},{m['width']}")
    return task, None


# -- the environment ------------------------------------------------------------------------------
class BanditEnv(gym.Env):
    """One step: observation 0, action a in [-2.5, 2.5]^2, reward r(a) (+ perturbation), terminated."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-BOX, BOX, (2,), np.float32)

    def __init__(self, task: str = "eight-gaussians", perturb: str | None = None):
        if task not in TASKS:
            raise ValueError(f"unknown bandit task {task!r}; choose one of {', '.join(TASKS)}")
        self.task = TASKS[task]
        self.perturbation = parse_perturb(perturb) if perturb else None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def expected_reward(self, a: torch.Tensor) -> torch.Tensor:
        """The reward without its random part: r(a) (+ the bump)."""
        r = self.task.reward(a.double())
        return r if self.perturbation is None else r + self.perturbation.bump(a, self.task.max_reward)

    def step(self, action):
        a = torch.as_tensor(np.asarray(action, dtype=np.float64)).reshape(1, 2)
        r = float(self.expected_reward(a)[0])
        if self.perturbation is not None and self.perturbation.kind == "noise":
            r += self.perturbation.sigma * float(self.np_random.standard_normal())
        return np.zeros(1, np.float32), r, True, False, {}


def ensure_registered(env_id: str) -> bool:
    """Register a perturbed bandit id on first use; True if `env_id` is a bandit."""
    parsed = parse_env_id(env_id)
    if parsed is None:
        return False
    if env_id not in gym.registry:
        task, perturbation = parsed
        gym.register(env_id, entry_point=BanditEnv, max_episode_steps=1,
                     kwargs={"task": task.key, "perturb": perturbation.text if perturbation else None})
    return True


BANDITS = {
    t.env_id: f"2-D bandit: {t.description}"
    for t in TASKS.values()
}

for _task in TASKS.values():
    if _task.env_id not in gym.registry:
        gym.register(_task.env_id, entry_point=BanditEnv, max_episode_steps=1, kwargs={"task": _task.key, "perturb": None})
