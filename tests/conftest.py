"""Shared fixtures: a small, fast SAC configuration and an in-process CLI invoker."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import algorithms
from algorithms.common.base import OffPolicyAlgorithm
from algorithms.common.config import Interval, OffPolicyConfig, param
from sombench.cli.main import main

# A SAC small enough that a 1,000-step run takes seconds on 2 CPU cores. Only the network widths,
# batch and warm-up shrink; every other setting is the paper's.
TINY_SAC = ("hidden_sizes=32,32", "batch_size=32", "warmup_steps=200")


def tiny_run_args(results: Path, steps: int = 600, seeds: int = 1, extra: tuple[str, ...] = (),
                  env: str = "Pendulum-v1") -> list[str]:
    args = ["run", "--algo", "sac", "--env", env, "--steps", str(steps), "--seeds", str(seeds),
            "--results", str(results), "--eval-every", "200", "--eval-episodes", "1", "--checkpoint-every", "200",
            "--log-every", "100", "--threads", "1", "--device", "cpu"]
    for pair in TINY_SAC:
        args += ["--set", pair]
    return args + list(extra)


def invoke(args: list[str]) -> int:
    """Run the CLI in-process and return its exit code."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def cli(capsys):
    """Call `cli([...])` -> (exit code, stdout, stderr)."""

    def run(args: list[str]):
        code = invoke(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_one_line_error(code, out, err, needle):
    """Bad input: exit code 2, one line on stderr that starts with `error:` and holds `needle`, no traceback."""
    assert code == 2, (code, out, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert "Traceback" not in err + out


def tree(path: Path) -> list[str]:
    """All files under `path`, relative, sorted (to check that nothing was written)."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (unit tests of small networks run ~5x faster so on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def grad_norms_at_step(monkeypatch, opt: torch.optim.Optimizer) -> list[float]:
    """Record the gradient norm of the optimizer's parameters each time it steps (where a clip must have acted:
    Adam alone would hide a missing clip on a first step)."""
    norms = []
    real = opt.step
    params = [p for group in opt.param_groups for p in group["params"]]

    def step(*args, **kwargs):
        norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))))
        return real(*args, **kwargs)

    monkeypatch.setattr(opt, "step", step)
    return norms


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))


def run_path(results: Path, env: str, algo: str, seed: int = 0) -> Path:
    """The one run folder of `algo` (any variant: tests shrink configs with --set) for env and seed."""
    found = sorted(p for p in (Path(results) / env).glob(f"{algo}*/seed_{seed}")
                   if p.parent.name == algo or p.parent.name.startswith(f"{algo}@"))
    assert len(found) == 1, f"expected one {algo} run of seed {seed} under {results}/{env}, found {found}"
    return found[0]


# -- a test environment that terminates, to check bootstrapping semantics ---------------------
class Corridor(gym.Env):
    """x moves by the action; reaching |x| >= 1 terminates; a time limit of 8 steps truncates."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-0.5, 0.5, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.2, 0.2))
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += float(action[0])
        return np.array([self.x], np.float32), -abs(self.x), abs(self.x) >= 1.0, False, {}


if "SombenchCorridor-v0" not in gym.registry:
    gym.register("SombenchCorridor-v0", entry_point=Corridor, max_episode_steps=8)


@dataclasses.dataclass
class RandomConfig(OffPolicyConfig):
    warmup_steps: int = 10**9
    nan_seed: int = param(-1, Interval(int))
    """Report a NaN loss when the run's seed equals this."""


@algorithms.register
class RandomAgent(OffPolicyAlgorithm):
    """Acts uniformly at random; its 'loss' is NaN for one chosen seed, and its update raises while the
    environment variable SOMBENCH_TEST_RAISE is set (to test failure handling)."""

    name = "test-random"
    description = "test only"
    Config = RandomConfig

    def act(self, obs, deterministic=False):
        return np.random.uniform(-1, 1, self.act_dim).astype(np.float32)

    def update(self, batch):
        if os.environ.get("SOMBENCH_TEST_RAISE"):
            raise RuntimeError("raised on purpose by the test")
        bad = torch.initial_seed() == self.config.nan_seed
        return {"loss": torch.tensor(float("nan") if bad else 1.0)}
