"""Learning tests for SDAC, DPMD and QSM: each trains for real through the runner on the eight-Gaussian
bandit and its generator alone (eval_particles=1: one reverse-process sample, no best-of-N, no
exploration noise) must clear a bar that the same run with a frozen actor (actor_lr=0) cannot.
Scoring the generator with one particle is what keeps best-of-N over the critic from doing the
actor's work: with 32 particles even a frozen random generator scores well.

The bandit (sombench/EightGaussians-v0): one-step episodes, reward in [0, 1], 1 at the four high
modes. A random or frozen generator scores ~0.03-0.06 over 200 episodes; the bar is 0.15 (0.10 for QSM).

Config, and why (everything else is the paper's default):
- 2 x 64 networks, batch 64, warm-up 500, 4,000 env steps (QSM: 2,000, below), critic lr 1e-3 (as the MFP/DACER learning
  tests), actor lr 1e-3: the CPU budget (each run <= ~90 s on 2 shared cores).
- diffusion_steps=10: the SOM paper's bandit figures roll SDAC out with 10 steps (Figure 5); it halves
  the cost of every reverse process.
- num_particles=8 (SDAC, DPMD): the policy's training samples are best-of-N, and 8 instead of 32 cuts
  the cost of the two best-of-N passes per update by 4; evaluation uses one particle regardless.
- SDAC and DPMD: reward_scale=20 and init_alpha=1. Their weights are not invariant to the scale of Q
  (softmax(5 Q / alpha); exp(clip((Q - m) / s) / alpha) with the running std starting at 1 and moving
  at rate 0.001). With Table 3's 0.2 the bandit's Q is at most 0.2, the weights are nearly uniform and
  the actor only re-fits its own samples (measured: SDAC 0.04 after 2,500 steps); on MuJoCo Q is in the
  hundreds. 20 puts Q on the order of 10. init_alpha=1: the noise alpha * 0.1 starts at the scale of
  the modes, as SOM's bandit preset (algorithms/som.py) argues.
- QSM: Table 3's reward scale and q_grad_scale=10 (M_q acts on raw-reward gradients, grad Q / 0.2, so 10 is
  the M_q = 50 on the 0.2-scaled critic these numbers were measured with; its `bandit` preset says why), 2,000
  steps and a bar of 0.10. QSM is not stable on this bandit: measured 0.149 and 0.163 after 2,000 steps
  but 0.04 after 4,000 (M_q = 5 or 15 did no better: 0.045, 0.083). Its targets M_q grad Q are large
  where the reward is steep and zero on the flat floor, and the shared sampler clips the predicted
  clean action to the box at every step, so samples get pushed out of the modes. The test checks that
  the actor learns at all (control ~0.03), not that QSM solves the bandit.
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import invoke

BANDIT = "sombench/EightGaussians-v0"
BAR = {"sdac": 0.15, "dpmd": 0.15, "qsm": 0.10}
STEPS = {"sdac": 4000, "dpmd": 4000, "qsm": 2000}
COMMON = ("hidden_sizes=64,64", "batch_size=64", "warmup_steps=500", "critic_lr=1e-3", "eval_particles=1",
          "diffusion_steps=10")
PER_ALGO = {
    "sdac": ("num_particles=8", "reward_scale=20", "init_alpha=1.0"),
    "dpmd": ("num_particles=8", "reward_scale=20", "init_alpha=1.0"),
    "qsm": ("q_grad_scale=10",),
}


def generator_return(results, algo: str, actor_lr: str) -> float:
    args = ["run", "--algo", algo, "--env", BANDIT, "--steps", str(STEPS[algo]), "--seeds", "1", "--results", str(results),
            "--eval-every", str(STEPS[algo]), "--eval-episodes", "200", "--device", "cpu", "--threads", "1"]
    for pair in (*COMMON, *PER_ALGO[algo], f"actor_lr={actor_lr}"):
        args += ["--set", pair]
    assert invoke(args) == 0
    (eval_csv,) = results.rglob("eval.csv")
    return float(pd.read_csv(eval_csv)["return_mean"].iloc[-1])


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sdac", "dpmd", "qsm"])
def test_generator_learns_the_eight_gaussian_bandit(tmp_path, algo):
    final = generator_return(tmp_path / algo, algo, "1e-3")
    assert final > BAR[algo], final


@pytest.mark.full
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sdac", "dpmd", "qsm"])
def test_frozen_actor_stays_below_the_bar(tmp_path, algo):
    final = generator_return(tmp_path / algo, algo, "0")
    assert final < BAR[algo], final
