"""The critic settings every off-policy algorithm shares (issue 28, equal terms on the bandit):
`critic_updates` (critic-only steps before each update) and `critic_action_scale` (the critic's action
input stretched), and the common bandit preset that sets them. Each check is against something outside
the code under test: optimizer step counts, a critic with the same weights fed c * a by hand, the preset
dictionaries as declared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import algorithms
from algorithms.common.base import OffPolicyAlgorithm
from algorithms.common.config import ConfigError
from sombench.runs.spec import RunSpec, resolve_config, upgrade_identity

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["hidden_sizes=16,16", "buffer_size=200", "batch_size=8"]
EXTRA = {"som": ["num_particles=4", "num_score_samples=4"], "mfp": ["num_particles=4"], "sdac": ["num_particles=4"],
         "dpmd": ["num_particles=4"], "qsm": ["num_particles=4", "target_particles=2"],
         "qvpo": ["num_particles=4", "eval_particles=4", "train_samples=4", "target_particles=2"],
         "dacer": ["entropy_samples=8"]}
OFF_POLICY = sorted(n for n, c in algorithms.load_all().items()
                    if c.__module__.startswith("algorithms.") and issubclass(c, OffPolicyAlgorithm))


def _filled(name: str, *pairs: str, obs_dim: int = 3, act_dim: int = 2):
    cls = algorithms.get(name)
    fields = set(cls.Config.__dataclass_fields__)
    extra = [p for p in EXTRA.get(name, []) if p.split("=")[0] in fields]
    torch.manual_seed(0)
    algo = cls(obs_dim, act_dim, resolve_config(name, None, SMALL + extra + list(pairs)), torch.device("cpu"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        algo.buffer.add(rng.standard_normal(obs_dim), rng.uniform(-1, 1, act_dim), float(rng.standard_normal()),
                        rng.standard_normal(obs_dim), bool(rng.random() < 0.1))
    return algo


def _steps(opt: torch.optim.Optimizer) -> int:
    """Adam's own step count of the optimizer's first parameter (0 before its first step)."""
    state = opt.state.get(opt.param_groups[0]["params"][0], {})
    return int(state["step"]) if "step" in state else 0


def test_every_shipped_off_policy_algorithm_is_covered():
    assert OFF_POLICY == ["dacer", "dipo", "dpmd", "mfp", "qsm", "qvpo", "sac", "sdac", "som"]


@pytest.mark.parametrize("name", OFF_POLICY)
@pytest.mark.parametrize("k", [1, 3])
def test_critic_updates_makes_k_critic_steps_and_one_actor_step_per_update(name, k):
    algo = _filled(name, f"critic_updates={k}")
    algo.train_step()
    assert _steps(algo.critic_opt) == k
    assert _steps(algo.actor_opt) == 1  # the first update steps every actor (delays count from 0)
    algo.train_step()
    assert _steps(algo.critic_opt) == 2 * k


@pytest.mark.parametrize("name", OFF_POLICY)
def test_extra_critic_steps_change_the_critic_but_not_the_actor(name):
    algo = _filled(name, "critic_updates=2")
    actor = [p.detach().clone() for p in algo.actor.parameters()]
    critic = [p.detach().clone() for p in algo.critic.parameters()]
    algo.extra_critic_steps()
    assert all(torch.equal(a, b) for a, b in zip(actor, algo.actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic, algo.critic.parameters()))


@pytest.mark.parametrize("name", OFF_POLICY)
def test_critic_action_scale_feeds_the_critic_c_times_the_action(name):
    """Q_c(s, a) with scale c = Q_1(s, c a) with the same weights (the input stretch, by hand)."""
    scaled = _filled(name, "critic_action_scale=2.5").critic
    plain = _filled(name).critic
    plain.load_state_dict(scaled.state_dict())
    obs, act = torch.randn(6, 3), torch.rand(6, 2) * 2 - 1
    torch.testing.assert_close(scaled.min_q(obs, act), plain.min_q(obs, 2.5 * act))
    assert not torch.allclose(scaled.min_q(obs, act), plain.min_q(obs, act))


@pytest.mark.parametrize("name", OFF_POLICY)
def test_every_bandit_preset_holds_the_common_critic_settings(name):
    """Equal terms: an algorithm's bandit preset starts from the common one and does not change its critic fields."""
    common = OffPolicyAlgorithm.presets["bandit"]
    assert {"critic_action_scale", "critic_lr", "critic_updates", "warmup_steps"} <= set(common)
    own = algorithms.get(name).presets["bandit"]
    assert {k: own[k] for k in common} == common
    config = resolve_config(name, "bandit", [])
    assert (config.critic_action_scale, config.critic_lr, config.critic_updates) == (2.5, 1e-3, 4)


def test_an_algorithm_without_critic_step_refuses_more_critic_updates():
    class NoCriticStep(algorithms.get("sac")):
        critic_step = OffPolicyAlgorithm.critic_step

    cfg = resolve_config("sac", None, SMALL + ["critic_updates=2"])
    with pytest.raises(ConfigError, match="critic_updates must be 1"):
        NoCriticStep(3, 2, cfg, torch.device("cpu"))
    NoCriticStep(3, 2, resolve_config("sac", None, SMALL), torch.device("cpu"))  # 1 is fine


def test_a_stored_run_without_a_new_field_gets_the_default_not_the_presets():
    """A field missing from a stored identity did not exist then: the run behaved as the field's default,
    whatever the preset now says (the bandit preset sets critic_updates 4; a run stored before it had 1)."""
    spec = RunSpec("sac", "sombench/EightGaussians-v0", 0, 100, preset="bandit")
    stored = spec.identity()
    del stored["algo_config"]["critic_updates"]
    upgraded = upgrade_identity(stored, spec)
    assert upgraded["algo_config"]["critic_updates"] == 1
    assert upgraded != spec.identity()  # so the new preset's run is not taken for the old one
    assert dataclasses.asdict(spec.config())["critic_updates"] == 4
