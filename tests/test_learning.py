"""Learning tests: SAC trains for real on a CPU budget and must clear a bar a broken SAC cannot."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import invoke, run_path

# Pendulum-v1 returns: a random or untrained policy scores about -1,200 to -1,500 per episode;
# swinging up and balancing scores above -200.
THRESHOLD = -400.0


def train_pendulum(results, *extra: str) -> float:
    args = ["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "5000", "--seeds", "1", "--results", str(results),
            "--eval-every", "5000", "--eval-episodes", "10", "--device", "cpu", "--set", "warmup_steps=1000", *extra]
    assert invoke(args) == 0
    return float(pd.read_csv(run_path(results, "Pendulum-v1", "sac", 0) / "eval.csv")["return_mean"].iloc[-1])


@pytest.mark.slow
def test_sac_learns_pendulum(tmp_path):
    """Paper's SAC (3x256 GELU, Table 3) with a 1,000-step warm-up instead of 30,000 (the budget is 5,000)."""
    final = train_pendulum(tmp_path / "sac")
    assert final > THRESHOLD, final


@pytest.mark.full
@pytest.mark.slow
def test_frozen_actor_stays_below_the_bar(tmp_path):
    """Control: the same run with the actor's learning rate at 0 must fail the bar, so the bar measures learning."""
    final = train_pendulum(tmp_path / "frozen", "--set", "actor_lr=0")
    assert final < THRESHOLD, final
