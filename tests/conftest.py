"""Shared fixtures: a small, fast SAC configuration and an in-process CLI invoker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sombench.cli import main

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


def tree(path: Path) -> list[str]:
    """All files under `path`, relative, sorted (to check that nothing was written)."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))


def run_path(results: Path, env: str, algo: str, seed: int = 0) -> Path:
    """The one run folder of `algo` (any variant: tests shrink configs with --set) for env and seed."""
    found = sorted(p for p in (Path(results) / env).glob(f"{algo}*/seed_{seed}")
                   if p.parent.name == algo or p.parent.name.startswith(f"{algo}@"))
    assert len(found) == 1, f"expected one {algo} run of seed {seed} under {results}/{env}, found {found}"
    return found[0]
