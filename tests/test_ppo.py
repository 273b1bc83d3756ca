"""PPO: GAE and the value targets against a hand-worked trajectory with a truncation and a termination,
the clipped objective and its gradient by hand, the KL early stop, the rollout driven through
act / observe / train_step (unclipped samples stored, evaluation leaving the rollout alone), a
checkpoint mid-rollout resuming exactly, SIGKILL-resume through the runner, and Table 4 defaults."""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from algorithms.common.base import Choice
from algorithms.common.buffer import Batch
from algorithms.ppo import PPO, PPOConfig, clipped_surrogate
from conftest import invoke
from killable_env import ENV_ID
from sombench.runs import store
from sombench.measure.latency import random_batch

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: fast on a shared 2-core machine
ROOT = Path(__file__).resolve().parent.parent


def roundtrip(state: dict) -> dict:
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    return torch.load(f, weights_only=False)


def tiny(obs_dim=3, act_dim=2, **kw) -> PPO:
    return PPO(obs_dim, act_dim, PPOConfig(**{"hidden_sizes": (16, 16), "batch_size": 50, **kw}), CPU)


# -- GAE by hand --------------------------------------------------------------------------------------
# Five steps, gamma = lambda = 0.5. Steps 0-1 end in a truncation, steps 2-3 in a termination, step 4 is
# the last of the rollout (mid-episode). The 1-d observation is the value itself: V(s) = s.
#   r      = 1,   2,   3,   4,   5
#   V(s)   = 0.5, 1,   1.5, 2,   2.5
#   V(s')  = 1,   2,   2,   9,   3        (9 at the terminal state must be ignored)
#   delta  = 1 + .5*1 - .5 = 1;  2 + .5*2 - 1 = 2;  3 + .5*2 - 1.5 = 2.5;  4 - 2 = 2;  5 + .5*3 - 2.5 = 4
#   A      = 1 + .25*2 = 1.5;  2 (truncated: bootstrapped, no carry);  2.5 + .25*2 = 3;  2;  4
#   R (rewards-to-go) = 1 + .5*3 = 2.5;  2 + .5*2 = 3;  3 + .5*4 = 5;  4;  5 + .5*3 = 6.5
#   R (gae) = A + V = 2, 3, 4.5, 4, 6.5
REWARDS = [1.0, 2.0, 3.0, 4.0, 5.0]
VALUES = [0.5, 1.0, 1.5, 2.0, 2.5]
NEXT_VALUES = [1.0, 2.0, 2.0, 9.0, 3.0]
TERMINATED = [False, False, False, True, False]
TRUNCATED = [False, True, False, False, False]
ADV = [1.5, 2.0, 3.0, 2.0, 4.0]
RTG = [2.5, 3.0, 5.0, 4.0, 6.5]


def identity_critic() -> nn.Module:
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()
    return lin


def hand_ppo(value_target="rewards_to_go") -> PPO:
    algo = PPO(1, 1, PPOConfig(hidden_sizes=(8,), batch_size=5, gamma=0.5, gae_lambda=0.5, value_target=value_target), CPU)
    algo.critic = identity_critic()
    return algo


def drive(algo: PPO, monkeypatch) -> tuple:
    """Observe the five transitions through the contract; capture what the update receives."""
    seen = {}
    monkeypatch.setattr(algo, "update", lambda batch, truncated=None: seen.update(batch=batch, truncated=truncated) or {"x": torch.zeros(())})
    for t in range(5):
        obs = np.array([VALUES[t]], np.float32)
        algo.observe(obs, algo.explore(obs), REWARDS[t], np.array([NEXT_VALUES[t]], np.float32), TERMINATED[t], TRUNCATED[t])
        metrics = algo.train_step()
        assert (metrics is None) == (t < 4)
    return seen["batch"], seen["truncated"]


@pytest.mark.parametrize("target, expected", [("rewards_to_go", RTG), ("gae", [a + v for a, v in zip(ADV, VALUES)])])
def test_gae_and_value_targets_by_hand(monkeypatch, target, expected):
    algo = hand_ppo(target)
    batch, truncated = drive(algo, monkeypatch)
    adv, ret = algo.advantages_and_returns(batch, truncated)
    np.testing.assert_allclose(adv.numpy(), ADV, rtol=1e-6)
    np.testing.assert_allclose(ret.numpy(), expected, rtol=1e-6)
    assert algo.rollout_len == 0  # the next rollout starts empty


def test_reward_scale_scales_the_rewards():
    algo = PPO(1, 1, PPOConfig(hidden_sizes=(8,), batch_size=5, gamma=0.5, gae_lambda=0.5, reward_scale=2.0), CPU)
    algo.critic = nn.Linear(1, 1)
    nn.init.zeros_(algo.critic.weight), nn.init.zeros_(algo.critic.bias)  # V = 0: A = GAE of the rewards alone
    batch = Batch(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([1.0, 1.0]), torch.zeros(2, 1), torch.zeros(2))
    adv, ret = algo.advantages_and_returns(batch)
    np.testing.assert_allclose(adv.numpy(), [2 + 0.25 * 2, 2], rtol=1e-6)
    np.testing.assert_allclose(ret.numpy(), [2 + 0.5 * 2, 2], rtol=1e-6)


# -- the clipped objective ------------------------------------------------------------------------

def test_clipped_objective_and_its_gradient_by_hand():
    """rho = 1.5, 0.5, 1.1, 0.7 with A = 1, 1, -1, -1 and eps = 0.2:
    min(rho A, clip(rho) A) = min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; min(-1.1, -1.1) = -1.1; min(-0.7, -0.8) = -0.8.
    Loss = -(1.2 + 0.5 - 1.1 - 0.8) / 4 = 0.05. d loss / d log pi = -rho A / 4 where the unclipped term is the
    minimum (entries 2 and 3), 0 where the clipped one is (entries 1 and 4)."""
    logp = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.7])).requires_grad_(True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss = clipped_surrogate(logp, torch.zeros(4), adv, 0.2)
    assert math.isclose(loss.item(), 0.05, abs_tol=1e-6)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([0.0, -0.125, 0.275, 0.0]))


def test_gaussian_log_prob_by_hand():
    algo = tiny(obs_dim=1, act_dim=2, init_log_std=math.log(0.5))
    obs = torch.zeros(1, 1)
    mu = algo.actor.mu(obs).detach()
    a = mu + torch.tensor([[0.5, -1.0]])  # z = 1 and -2 standard deviations
    expected = -0.5 * (1 + 4) - 2 * math.log(0.5) - math.log(2 * math.pi)
    assert math.isclose(algo.actor.log_prob(obs, a).item(), expected, rel_tol=1e-5)


# -- the KL early stop ----------------------------------------------------------------------------

def policy_steps_taken(**kw) -> tuple[int, float]:
    torch.manual_seed(0)
    algo = tiny(**kw)
    batch = random_batch(3, 2, 50, CPU)
    metrics = algo.update(batch)
    step = algo.actor_opt.state_dict()["state"][0]["step"] if algo.actor_opt.state_dict()["state"] else 0
    assert int(step) == int(metrics["policy_steps"])
    return int(metrics["policy_steps"]), float(metrics["approx_kl"])


@pytest.mark.parametrize("normalize", [True, False])
def test_policy_steps_use_advantages_normalised_over_the_rollout(monkeypatch, normalize):
    """The advantages the clipped objective receives are (A - mean A) / (std A + 1e-8) over the rollout
    (A computed here before the update, from the same critic); so the first step's loss, at ratio 1, is
    -mean of them = 0. With normalize_advantages=False they are A itself and the loss is -mean A."""
    torch.manual_seed(0)
    algo = tiny(policy_iters=2, value_iters=1, target_kl=None, normalize_advantages=normalize)
    batch = random_batch(3, 2, 50, CPU)
    batch = batch._replace(reward=batch.reward + 3.0)  # a mean advantage far from 0
    raw, _ = algo.advantages_and_returns(batch)
    assert abs(float(raw.mean())) > 1.0 and abs(float(raw.std()) - 1.0) > 0.1
    seen = []
    real = algo.policy_objective
    monkeypatch.setattr(algo, "policy_objective", lambda obs, action, logp_old, adv: seen.append(adv) or real(obs, action, logp_old, adv))
    metrics = algo.update(batch)
    expected = (raw - raw.mean()) / (raw.std() + 1e-8) if normalize else raw
    assert len(seen) == 2
    for adv in seen:
        torch.testing.assert_close(adv, expected)
    assert float(metrics["policy_loss"]) == pytest.approx(-float(expected.mean()), abs=1e-5)


def test_kl_early_stop():
    """The KL is 0 before the first step, so one step is always taken; with a KL target of 1e-12 the check
    before the second step stops it (KL > 1.5e-12). With no target, or a frozen actor, all 80 run."""
    steps, kl = policy_steps_taken(target_kl=1e-12, actor_lr=1e-2)
    assert steps == 1 and kl > 1.5e-12
    assert policy_steps_taken(target_kl=None, actor_lr=1e-2)[0] == 80
    assert policy_steps_taken(actor_lr=0.0)[0] == 80  # KL stays 0
    steps, kl = policy_steps_taken(target_kl=0.01, actor_lr=3e-3)  # stops once mean(logp_old - logp) > 0.015
    assert 1 <= steps < 80 and kl > 0.015


# -- the contract ---------------------------------------------------------------------------------

def test_stores_the_unclipped_sample_it_gets_back_and_evaluation_leaves_it():
    algo = tiny(act_dim=1, init_log_std=math.log(5.0))  # wide: most samples leave the box
    obs = np.zeros(3, np.float32)
    torch.manual_seed(0)
    for _ in range(10):
        choice = algo.explore(obs)
        algo.act(obs, deterministic=True)  # an evaluation between explore and observe
        algo.observe(obs, choice, 0.0, obs, False, False)
        assert np.array_equal(algo.rollout_action[algo.rollout_len - 1].numpy(), choice.record)
        assert np.array_equal(np.clip(choice.record, -1, 1), choice.action)
    assert (algo.rollout_action[:10].abs() > 1).any()
    # the record is what is stored, whatever the observation it comes with (nothing is matched back)
    choice = algo.explore(obs)
    algo.observe(np.ones(3, np.float32), choice, 0.0, obs, False, False)
    assert np.array_equal(algo.rollout_action[10].numpy(), choice.record)
    # a Choice PPO did not make (no record: a warm-up action) is stored as its action
    algo.observe(obs, Choice(np.array([0.25], np.float32)), 0.0, obs, False, False)
    assert algo.rollout_action[11].item() == 0.25


def test_explore_draws_what_act_draws():
    algo = tiny()
    obs = np.ones(3, np.float32)
    torch.manual_seed(3)
    choice = algo.explore(obs)
    after = torch.rand(2)
    torch.manual_seed(3)
    assert np.array_equal(algo.act(obs), choice.action) and torch.equal(torch.rand(2), after)


def test_deterministic_act_is_the_clipped_mean_and_draws_nothing():
    algo = tiny()
    obs = np.ones(3, np.float32)
    torch.manual_seed(0)
    a = algo.act(obs, deterministic=True)
    after = torch.rand(2)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(2), after)
    np.testing.assert_allclose(a, algo.actor.mu(torch.ones(1, 3))[0].clamp(-1, 1).detach().numpy())


def run_steps(algo: PPO, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    obs = rng.standard_normal(3).astype(np.float32)
    for t in range(n):
        choice = algo.explore(obs)
        nxt = rng.standard_normal(3).astype(np.float32)
        term, trunc = bool(rng.random() < 0.05), bool(rng.random() < 0.05)
        algo.observe(obs, choice, float(rng.standard_normal()), nxt, term, trunc)
        obs = rng.standard_normal(3).astype(np.float32) if term or trunc else nxt
        m = algo.train_step()
        if m:
            out.append({k: v.item() for k, v in m.items()})
    return out


def test_checkpoint_mid_rollout_resumes_exactly():
    torch.manual_seed(0)
    algo = tiny(policy_iters=5, value_iters=5)
    run_steps(algo, 70, seed=1)  # one update at 50, then 20 steps into the next rollout
    assert algo.rollout_len == 20
    other = tiny(policy_iters=5, value_iters=5)
    other.load_state_dict(roundtrip(algo.state_dict()))
    assert other.rollout_len == 20 and other.updates == 1
    results = []
    for x in (algo, other):
        torch.manual_seed(7)
        results.append(run_steps(x, 80, seed=2))
    assert len(results[0]) == 2 and results[0] == results[1]
    for p, q in zip(algo.actor.parameters(), other.actor.parameters()):
        assert torch.equal(p, q)


def test_sigkill_mid_rollout_resumes_as_an_uninterrupted_run(tmp_path):
    """The runner's crash-resume test (tests/test_runner.py) for PPO: rollouts of 250 steps, checkpoints at
    the episode boundaries 600 (mid-rollout) and 1,000 (a rollout boundary); killed after each."""
    steps = 1400
    sets = ["hidden_sizes=16,16", "batch_size=250", "policy_iters=5", "value_iters=5"]

    def args(results):
        out = ["run", "--algo", "ppo", "--env", ENV_ID, "--steps", str(steps), "--seeds", "1", "--results", str(results),
               "--eval-every", "200", "--eval-episodes", "1", "--checkpoint-every", "200", "--log-every", "100",
               "--threads", "1", "--device", "cpu"]
        for s in sets:
            out += ["--set", s]
        return out

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    code = f"import killable_env; from sombench.cli.main import main; main({args(killed)!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    for kill_after in (1250, 850):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "SOMBENCH_KILL_AFTER_STEPS": str(kill_after)},
                              capture_output=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert invoke(args(clean)) == 0
    runs = [next(p.parent for p in root.rglob("eval.csv")) for root in (killed, clean)]
    a, b = (pd.read_csv(r / "eval.csv") for r in runs)
    assert list(a["env_step"]) == list(range(200, steps + 1, 200))
    pd.testing.assert_series_equal(a["return_mean"], b["return_mean"])
    ta, tb = (pd.read_csv(r / "train.csv").drop(columns="wall_s") for r in runs)
    pd.testing.assert_frame_equal(ta, tb)
    assert store.read_state(runs[0])["state"] == "done"


def test_table4_defaults_and_metadata():
    cfg = PPOConfig()
    assert (cfg.gae_lambda, cfg.clip_ratio, cfg.target_kl, cfg.policy_iters, cfg.value_iters, cfg.batch_size) == (0.95, 0.2, 0.01, 80, 80, 4000)
    assert (cfg.hidden_sizes, cfg.activation, cfg.actor_lr, cfg.critic_lr, cfg.gamma, cfg.reward_scale) == ((512,) * 3, "gelu", 1e-4, 1e-3, 0.995, 1.0)
    assert PPO.generation_steps is None and tiny().particles == 1 and tiny().warmup_steps == 0
    assert PPO.budget_factor == {"InvertedDoublePendulum-v4": 5, "Pusher-v4": 5, "Reacher-v4": 5}
