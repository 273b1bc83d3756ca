"""Learning tests for SOM on control, at its `control` preset (algorithms/som.py; docs/som-notes.md sections
13, 16 and 21 hold the measurements behind it), on Pendulum-v1 within the CPU benchmark's budget
(docs/benchmarks.md: 2 x 64 networks, batch 64, 1,000 uniform warm-up steps), which SAC at the same
networks, batch and warm-up meets on 3 of 3 seeds by 10,000 env steps (-169, -197, -169).

A random or untrained policy scores about -1,200 to -1,500 per episode, a swung-up and balanced one -120 to
-250 (mean of 10 episodes from random starts).

1. SOM as it acts, best-of-32 over its critic, at 10,000 steps: both seeds above the other Pendulum learning
   tests' -400 (tests/test_learning.py). SOM at Table 3's learning rates scored -691 on seed 0, so it fails;
   as do the initial-alpha and alpha-schedule changes alone (-916 and -852 on seed 0). On Pendulum's 1-D
   action the critic's argmax does most of the work (sections 7 and 13): before section 21's actor settings
   a frozen actor passed too (-172 on seed 0). So a broken critic, critic target or acting path fails this
   test; a broken actor update need not.
2. SOM's own actor, the generator scored alone, at 20,000 steps: halfway to the swing-up in one of its last
   four evaluations. This one fails when the actor learns nothing.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import invoke, run_path

PENDULUM_BAR = -400.0
STEPS = 10_000


@pytest.mark.slow
@pytest.mark.full  # ~4 min: in `make test-all`, not CI (CI measured 40.3 min with it; SOM's bandit learning tests stay in CI)
def test_som_control_preset_learns_the_pendulum_swing_up(tmp_path):
    """Seeds 0 and 1 in two worker processes, one thread each (325 s one after the other on the project machine with
    its second core shared; each seed gives the same numbers in either way)."""
    args = ["run", "--algo", "som", "--env", "Pendulum-v1", "--preset", "control", "--steps", str(STEPS), "--seeds", "2", "--workers", "2",
            "--results", str(tmp_path), "--eval-every", str(STEPS), "--eval-episodes", "10", "--device", "cpu",
            "--threads", "1"]
    assert invoke(args) == 0
    finals = [float(pd.read_csv(run_path(tmp_path, "Pendulum-v1", "som", seed) / "eval.csv")["return_mean"].iloc[-1])
              for seed in (0, 1)]
    assert all(final > PENDULUM_BAR for final in finals), finals


GENERATOR_BAR = -750.0
GENERATOR_STEPS = 20_000
GENERATOR_EVALS = (14_000, 16_000, 18_000, 20_000)


@pytest.mark.slow
@pytest.mark.full  # ~8.5 min with two workers: in `make test-all`, not CI
def test_som_control_generator_alone_gets_halfway_to_the_swing_up(tmp_path):
    """SOM's own actor, the one-step MeanFlow generator, scored alone (`eval_particles=1`: one sample, no
    best-of-N, no noise) at the `control` preset on Pendulum-v1, seeds 0 and 1, 20,000 env steps. The best of
    its four evaluations at 14k-20k (10 episodes each) must clear -750 on both seeds: halfway between a random
    policy (-1,200 to -1,500) and the swing-up (-150 to -250).

    Why the best of four and not the last one or their mean: the generator does not hold what it learns
    (docs/som-notes.md section 21: every seed falls back at least once, to -969, -981 and -1,563), so one
    evaluation, or a mean over a window, is decided by where a dip falls. The means over 14k-20k are -415,
    -513 and -791 on seeds 0, 1 and 2; seed 2 would fail a -750 bar on the mean. The best evaluations are -170,
    -322 and -224: every measured seed clears the bar by 428 or more.

    It fails when the actor learns nothing: under section 13's preset (batch-wide Q standardisation, MeanFlow's
    adaptive loss weight, VP) the best of the four is -1,025 on seed 0, and with a frozen actor (`actor_lr=0`)
    -1,060 on seed 0; neither comes within 275 of the bar. What it does not check: that the generator holds
    the swing-up, or reaches it (the bar is halfway)."""
    args = ["run", "--algo", "som", "--env", "Pendulum-v1", "--preset", "control", "--set", "eval_particles=1",
            "--steps", str(GENERATOR_STEPS), "--seeds", "2", "--workers", "2", "--results", str(tmp_path),
            "--eval-every", "2000", "--eval-episodes", "10", "--device", "cpu", "--threads", "1"]
    assert invoke(args) == 0
    best = []
    for seed in (0, 1):
        run = run_path(tmp_path, "Pendulum-v1", "som", seed)
        config = json.loads((run / "config.json").read_text())
        assert config["preset"] == "control" and config["run"]["algo_config"]["eval_particles"] == 1, config["run"]
        evals = pd.read_csv(run / "eval.csv").set_index("env_step")
        best.append(float(evals.loc[list(GENERATOR_EVALS), "return_mean"].max()))
    assert all(b > GENERATOR_BAR for b in best), best
