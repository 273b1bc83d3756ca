"""Every critic target, recomputed here from the algorithm's own networks (issue 25).

y = reward_scale * r + gamma * (1 - d) * V(s') is written once, `td_target` in algorithms/common/critics.py;
each algorithm chooses V(s') (the min of its target critics at its next action, SAC's entropy term,
DACER's distributional mean). For each algorithm a test

- makes the target critics differ from the online ones, and relies on the two members differing
  (checked), so min vs max and target vs online give different numbers;
- uses a batch with terminal rows, a reward scale of 0.3 and a discount of 0.9 (neither 1 nor a default);
- records the next action the algorithm drew (its own sampler, spied on, or a stub that tells the
  target actor from the online one);
- compares, row by row, the y the critic loss received with y computed here from the target critic's
  forward pass at that next action; and the loss with the loss of the online critic before its step.

Then: every off-policy algorithm takes exactly one critic Adam step per update.
"""

from __future__ import annotations

import copy

import pytest
import torch

import algorithms.dacer as dacer_module
import algorithms.dipo as dipo_module
import algorithms.mfp as mfp_module
import algorithms.qvpo as qvpo_module
import algorithms.sac as sac_module
from algorithms.common.buffer import Batch
from algorithms.common.critics import td_target
from algorithms.dacer import DACER, DACERConfig
from algorithms.dipo import DIPO, DIPOConfig
from algorithms.dpmd import DPMD, DPMDConfig
from algorithms.mfp import MFP, MFPConfig
from algorithms.qsm import QSM, QSMConfig
from algorithms.qvpo import QVPO, QVPOConfig
from algorithms.sac import SAC, SACConfig
from algorithms.sdac import SDAC, SDACConfig
from algorithms.som import SOM, SOMConfig

CPU = torch.device("cpu")
OBS, ACT, B = 3, 2, 8
RS, GAMMA = 0.3, 0.9
SMALL = {"hidden_sizes": (16, 16), "batch_size": B, "reward_scale": RS, "gamma": GAMMA}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: fast on a shared 2-core machine


def terminal_batch(seed: int = 0) -> Batch:
    """B random transitions; rows 0, 3 and 6 are terminal; rewards of both signs, of order 1."""
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(B, OBS, generator=g), action=torch.rand(B, ACT, generator=g) * 2 - 1,
                 reward=1.0 + 2.0 * torch.randn(B, generator=g), next_obs=torch.randn(B, OBS, generator=g),
                 terminated=(torch.arange(B) % 3 == 0).float())


def perturb(module: torch.nn.Module, seed: int = 1, scale: float = 0.5) -> None:
    """Move every parameter by scale * N(0, 1): the module no longer equals its construction-time twin."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def spy_on(monkeypatch, module, name: str) -> list:
    """Record (positional arguments, result) of every call of module.<name> (the real function still runs)."""
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((args, out))
        return out

    monkeypatch.setattr(module, name, spy)
    return calls


def targets_of(monkeypatch, module) -> list:
    """Records every `td_target` call the algorithm's module makes (its critic target); `only_target` then
    gives the y. An update that wrote its target without the helper would record none and fail the test."""
    return spy_on(monkeypatch, module, "td_target")


def only_target(calls: list) -> torch.Tensor:
    assert len(calls) == 1, f"expected one td_target call, got {len(calls)}"
    return calls[0][1]


def hand_target(batch: Batch, next_value: torch.Tensor) -> torch.Tensor:
    """y by hand, not through td_target."""
    return RS * batch.reward + GAMMA * (1.0 - batch.terminated) * next_value


def twin_values(critic, batch: Batch, next_action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max) over the two members at (s', a'), after checking that they differ on non-terminal rows."""
    with torch.no_grad():
        q = critic(batch.next_obs, next_action)
    q = q[0] if isinstance(q, tuple) else q  # the distributional critic's means
    lo, hi = q.min(dim=0).values, q.max(dim=0).values
    live = batch.terminated == 0
    assert (hi - lo)[live].min() > 1e-3, "the test needs twin members that disagree"
    return lo, hi


def assert_target(y: torch.Tensor, batch: Batch, target_critic, online_critic, next_action: torch.Tensor,
                  extra: torch.Tensor | float = 0.0) -> None:
    """y == r_scaled + gamma (1 - d) (min_j Q_targ_j(s', a') + extra), and the alternatives are not."""
    lo, _ = twin_values(target_critic, batch, next_action)
    online_lo, _ = twin_values(online_critic, batch, next_action)
    live = batch.terminated == 0
    assert (online_lo - lo)[live].abs().min() > 1e-3, "the test needs a target critic unlike the online one"
    torch.testing.assert_close(y, hand_target(batch, lo + extra))
    torch.testing.assert_close(y[~live], RS * batch.reward[~live])  # nothing bootstrapped at a terminal


def assert_loss(loss: torch.Tensor, online_critic, batch: Batch, y: torch.Tensor, weight: float = 0.5) -> None:
    """The twin MSE loss weight * sum_j E[(Q_j(s, a) - y)^2] of the online critic before its step (weight 0.5:
    SAC's J_Q; QVPO's and DIPO's reference code may sum the two plain MSEs, `critic_loss_weight`)."""
    with torch.no_grad():
        q = online_critic(batch.obs, batch.action)
    expected = sum(weight * ((q[j] - y) ** 2).mean() for j in range(2))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


# -- the shared helper ---------------------------------------------------------------------------------

def test_td_target_by_hand():
    reward = torch.tensor([1.0, 2.0, -3.0, 0.5])
    next_value = torch.tensor([10.0, 20.0, 5.0, -4.0])
    terminated = torch.tensor([0.0, 1.0, 0.0, 1.0])
    # 0.2 * 1 + 0.9 * 10 = 9.2;  0.2 * 2 (terminal) = 0.4;  0.2 * -3 + 0.9 * 5 = 3.9;  0.2 * 0.5 = 0.1
    torch.testing.assert_close(td_target(reward, next_value, terminated, 0.9, 0.2), torch.tensor([9.2, 0.4, 3.9, 0.1]))
    torch.testing.assert_close(td_target(reward, next_value, terminated, 0.5, 1.0), torch.tensor([6.0, 2.0, -0.5, 0.5]))


# -- SAC, MFP, QVPO, DIPO: their own TD line --------------------------------------------------------------------

def test_sac_target_is_min_target_q_minus_alpha_log_pi_at_a_policy_sample(monkeypatch):
    """y = 0.3 r + 0.9 (1 - d) [min_j Q_targ_j(s', a') - alpha log pi(a'|s')], a' ~ pi(.|s'), alpha = 0.5."""
    torch.manual_seed(0)
    algo = SAC(OBS, ACT, SACConfig(**SMALL, init_alpha=0.5), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    draws = []
    real = algo.actor.sample
    monkeypatch.setattr(algo.actor, "sample", lambda obs: draws.append((obs, *real(obs))) or draws[-1][1:])
    ys = targets_of(monkeypatch, sac_module)
    metrics = algo.update(batch)
    obs, next_action, next_log_prob = draws[0]
    assert torch.equal(obs, batch.next_obs)
    y = only_target(ys)
    assert_target(y, batch, target, online, next_action, extra=-0.5 * next_log_prob)
    assert_loss(metrics["critic_loss"], online, batch, y)


def test_mfp_target_is_min_target_q_at_the_best_of_n_next_action(monkeypatch):
    torch.manual_seed(0)
    algo = MFP(OBS, ACT, MFPConfig(**SMALL, num_particles=4), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    picks = []
    real = algo.best_of_n
    monkeypatch.setattr(algo, "best_of_n", lambda obs, n: picks.append((obs, real(obs, n))) or picks[-1][1])
    ys = targets_of(monkeypatch, mfp_module)
    metrics = algo.update(batch)
    (obs, both), = picks
    torch.testing.assert_close(obs, torch.cat([batch.obs, batch.next_obs]))  # a* at s (actor) and at s' (critic)
    y = only_target(ys)
    assert_target(y, batch, target, online, both[B:])
    assert_loss(metrics["critic_loss"], online, batch, y)


def test_qvpo_target_is_min_target_q_at_its_best_of_4_next_action(monkeypatch):
    torch.manual_seed(0)
    algo = QVPO(OBS, ACT, QVPOConfig(**SMALL, train_samples=4), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    picks = []
    real = qvpo_module.best_of_n
    monkeypatch.setattr(qvpo_module, "best_of_n", lambda gen, q_fn, obs, n: picks.append(real(gen, q_fn, obs, n)) or picks[-1])
    ys = targets_of(monkeypatch, qvpo_module)
    metrics = algo.update(batch)
    y = only_target(ys)
    assert_target(y, batch, target, online, picks[0])
    assert_loss(metrics["critic_loss"], online, batch, y, getattr(algo.config, "critic_loss_weight", 0.5))


@pytest.mark.parametrize("target_actor", [True, False])
def test_dipo_target_takes_the_next_action_from_the_target_actor(monkeypatch, target_actor):
    """The target actor and the online actor are stubbed to give different actions; the target must use
    the target actor's (the online one's when target_actor=False)."""
    torch.manual_seed(0)
    algo = DIPO(OBS, ACT, DIPOConfig(**SMALL, diffusion_steps=5, action_gradient_steps=2, target_actor=target_actor), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    from_target = torch.linspace(-0.9, 0.9, B * ACT).view(B, ACT)
    from_online = -from_target.flip(0)
    monkeypatch.setattr(algo.actor_target, "sample", lambda obs, *a, **k: from_target[: obs.shape[0]])
    monkeypatch.setattr(algo.actor, "sample", lambda obs, *a, **k: from_online[: obs.shape[0]])
    ys = targets_of(monkeypatch, dipo_module)
    metrics = algo.update(batch)
    y = only_target(ys)
    assert_target(y, batch, target, online, from_target if target_actor else from_online)
    assert_loss(metrics["critic_loss"], online, batch, y, getattr(algo.config, "critic_loss_weight", 0.5))


# -- SDAC, DPMD, QSM: BestOfNDiffusion.critic_loss ---------------------------------------------------------

DIFFUSION = [(SDAC, SDACConfig, {"num_reverse_samples": 3}), (DPMD, DPMDConfig, {}), (QSM, QSMConfig, {})]


@pytest.mark.parametrize("cls, config, extra", DIFFUSION, ids=["sdac", "dpmd", "qsm"])
def test_best_of_n_diffusion_critic_loss_by_hand(cls, config, extra):
    """critic_loss(batch, a'): y = 0.3 r + 0.9 (1 - d) min_j Q_targ_j(s', a'); the loss of the online
    critic; its gradient left in the online critic (the caller steps), nothing stepped, the target untouched."""
    torch.manual_seed(0)
    algo = cls(OBS, ACT, config(**SMALL, num_particles=4, **extra), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    next_action = torch.rand(B, ACT, generator=torch.Generator().manual_seed(2)) * 2 - 1
    online = copy.deepcopy(algo.critic)
    target = copy.deepcopy(algo.critic_target)
    loss, q = algo.critic_loss(batch, next_action)
    lo, _ = twin_values(target, batch, next_action)
    online_lo, _ = twin_values(online, batch, next_action)
    assert (online_lo - lo)[batch.terminated == 0].abs().min() > 1e-3
    y = hand_target(batch, lo)
    assert_loss(loss, online, batch, y)
    torch.testing.assert_close(q, online(batch.obs, batch.action).detach())
    # the gradient of that loss is in the critic, unstepped
    expected = online(batch.obs, batch.action)
    hand_loss = sum(0.5 * ((expected[j] - y) ** 2).mean() for j in range(2))
    grads = torch.autograd.grad(hand_loss, list(online.parameters()))
    for p, g, p0 in zip(algo.critic.parameters(), grads, online.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
        assert torch.equal(p, p0)
    for p, p0 in zip(algo.critic_target.parameters(), target.parameters()):
        assert torch.equal(p, p0) and p.grad is None


@pytest.mark.parametrize("cls, config, extra", DIFFUSION, ids=["sdac", "dpmd", "qsm"])
def test_best_of_n_diffusion_update_feeds_critic_loss_the_policy_action_at_s_prime(monkeypatch, cls, config, extra):
    """Through `update`: the next action handed to critic_loss is the training policy's action at s'
    (best-of-N by the current critic, plus exploration noise), drawn from the batch's next states."""
    torch.manual_seed(0)
    algo = cls(OBS, ACT, config(**SMALL, num_particles=4, **extra), CPU)
    batch = terminal_batch()
    policy_calls = []
    real_policy = algo.policy_actions
    monkeypatch.setattr(algo, "policy_actions", lambda obs, n=None: policy_calls.append((obs, real_policy(obs, n))) or policy_calls[-1][1])
    seen = []
    real_loss = algo.critic_loss
    monkeypatch.setattr(algo, "critic_loss", lambda b, a: seen.append(a) or real_loss(b, a))
    algo.update(batch)
    (obs, actions), = policy_calls
    torch.testing.assert_close(obs[:B], batch.next_obs)
    torch.testing.assert_close(seen[0], actions[:B])


# -- DACER and SOM: the distributional backups ---------------------------------------------------------------

def test_dacer_target_is_the_smaller_target_mean_at_the_policy_action(monkeypatch):
    """y = 0.3 r + 0.9 (1 - d) min_j mu_targ_j(s', a'), a' = pi(s') with exploration noise; the sample
    backup is y_sample = 0.3 r + 0.9 (1 - d) (mu + sigma z) of the member with the smaller mean, |z| <= 3."""
    torch.manual_seed(0)
    algo = DACER(OBS, ACT, DACERConfig(**SMALL, entropy_samples=20), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    policy_calls = []
    real = algo.policy
    monkeypatch.setattr(algo, "policy", lambda obs, noisy=True: policy_calls.append((obs, noisy, real(obs, noisy))) or policy_calls[-1][2])
    losses = spy_on(monkeypatch, dacer_module, "distributional_critic_loss")
    algo.update(batch)
    obs, noisy, next_action = policy_calls[0]
    assert torch.equal(obs, batch.next_obs) and noisy
    y, y_sample = losses[0][0][2], losses[0][0][3]
    assert_target(y, batch, target, online, next_action)
    with torch.no_grad():
        mu, sigma = target(batch.next_obs, next_action)
    member = mu.argmin(dim=0)
    rows = torch.arange(B)
    live = batch.terminated == 0
    z = ((y_sample - RS * batch.reward) / GAMMA - mu[member, rows]) / sigma[member, rows]
    assert z[live].abs().max() <= 3.0 + 1e-4 and z[live].abs().min() > 0
    torch.testing.assert_close(y_sample[~live], RS * batch.reward[~live])


def test_som_target_is_the_smaller_target_mean_at_the_best_of_n_action(monkeypatch):
    import algorithms.som as som_module

    torch.manual_seed(0)
    algo = SOM(OBS, ACT, SOMConfig(**{**SMALL, "hidden_sizes": (16,)}, num_score_samples=4, num_particles=5, warmup_steps=0), CPU)
    perturb(algo.critic_target)
    batch = terminal_batch()
    target, online = copy.deepcopy(algo.critic_target), copy.deepcopy(algo.critic)
    picks = []
    real = algo.best_of_n
    monkeypatch.setattr(algo, "best_of_n", lambda obs, n: picks.append((obs, n, real(obs, n))) or picks[-1][2])
    losses = spy_on(monkeypatch, som_module, "distributional_critic_loss")
    algo.update(batch)
    obs, n, next_action = picks[0]
    assert torch.equal(obs, batch.next_obs) and n == 5
    assert_target(losses[0][0][2], batch, target, online, next_action)


# -- one critic step per update ----------------------------------------------------------------------------------

ALL = {
    "sac": lambda: SAC(OBS, ACT, SACConfig(**SMALL), CPU),
    "mfp": lambda: MFP(OBS, ACT, MFPConfig(**SMALL, num_particles=4), CPU),
    "qvpo": lambda: QVPO(OBS, ACT, QVPOConfig(**SMALL, train_samples=4), CPU),
    "dipo": lambda: DIPO(OBS, ACT, DIPOConfig(**SMALL, diffusion_steps=5, action_gradient_steps=2), CPU),
    "sdac": lambda: SDAC(OBS, ACT, SDACConfig(**SMALL, num_particles=4, num_reverse_samples=3), CPU),
    "dpmd": lambda: DPMD(OBS, ACT, DPMDConfig(**SMALL, num_particles=4), CPU),
    "qsm": lambda: QSM(OBS, ACT, QSMConfig(**SMALL, num_particles=4), CPU),
    "dacer": lambda: DACER(OBS, ACT, DACERConfig(**SMALL, entropy_samples=20), CPU),
    "som": lambda: SOM(OBS, ACT, SOMConfig(**SMALL, num_score_samples=4, num_particles=4, warmup_steps=0), CPU),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_one_critic_adam_step_per_update(name):
    """Three updates, three critic Adam steps (SDAC and DPMD's reference steps its critic twice)."""
    torch.manual_seed(0)
    algo = ALL[name]()
    batch = terminal_batch()
    for _ in range(3):
        algo.update(batch)
    assert {int(s["step"]) for s in algo.critic_opt.state.values()} == {3}
