"""Acting on a batch of observations (`Algorithm.act_batch`, issue 26): one call for N envs draws, for N = 1,
exactly what `act` draws; its rows are each observation's action (deterministic policies, row by row); its
draws differ between rows; and `sombench latency --act-batch N` reports it per call and per env step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import algorithms
from sombench.runs.spec import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"hidden_sizes": "16,16", "buffer_size": "100"}
EXTRA = {"som": ["num_particles=4", "num_score_samples=4"], "mfp": ["num_particles=4"], "sdac": ["num_particles=4"],
         "dpmd": ["num_particles=4"], "qsm": ["num_particles=4"], "qvpo": ["num_particles=4", "eval_particles=4"],
         "dacer": ["entropy_samples=8"], "ppo": ["batch_size=64"]}


def _build(name: str, obs_dim: int = 5, act_dim: int = 3):
    cls = algorithms.get(name)
    fields = {f for f in cls.Config.__dataclass_fields__}
    pairs = [f"{k}={v}" for k, v in SMALL.items() if k in fields] + EXTRA.get(name, [])
    torch.manual_seed(0)
    return cls(obs_dim, act_dim, resolve_config(name, None, pairs), torch.device("cpu"))


NAMES = sorted(n for n, c in algorithms.load_all().items() if c.__module__.startswith("algorithms."))  # the shipped ten


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_of_one_draws_what_act_draws(name):
    algo = _build(name)
    obs = np.random.default_rng(1).standard_normal(5).astype(np.float32)
    for deterministic in (False, True):
        torch.manual_seed(7)
        one = algo.act(obs, deterministic)
        torch.manual_seed(7)
        batch = algo.act_batch(obs[None], deterministic)
        assert batch.shape == (1, 3) and one.shape == (3,)
        np.testing.assert_array_equal(batch[0], one)


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_acts_for_each_observation(name):
    algo = _build(name)
    obs = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    actions = algo.act_batch(obs, deterministic=False)
    assert actions.shape == (4, 3) and np.all(np.abs(actions) <= 1.0)
    same = algo.act_batch(np.repeat(obs[:1], 4, axis=0), deterministic=False)
    assert len({tuple(row) for row in same}) == 4  # each env draws its own noise, not one draw broadcast


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_deterministic_batch_rows_are_the_rows_acted_alone(name):
    """SAC's tanh(mean) and PPO's mean draw nothing: a batch must give each observation the action it gets alone
    (up to the float rounding of a batched matrix product)."""
    algo = _build(name)
    obs = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    batch = algo.act_batch(obs, deterministic=True)
    alone = np.stack([algo.act(o, deterministic=True) for o in obs])
    np.testing.assert_allclose(batch, alone, rtol=1e-5, atol=1e-6)


def test_latency_reports_acting_at_batch_n_per_env_step(cli, tmp_path):
    code, out, err = cli(["latency", "--algos", "sac", "--act-batch", "4", "--repeats", "2", "--threads", "1", "--device", "cpu",
                          "--results", str(tmp_path), "--format", "json"])
    assert code == 0, err
    payload = json.loads(out)
    (row,) = payload["acting_batched"]
    (b,) = row["batches"]
    assert row["algo"] == "sac" and b["n"] == 4 and b["ms_per_env_step"] == pytest.approx(b["ms_per_call_mean"] / 4)
    csv = next((tmp_path / "latency").glob("*.csv")).read_text()
    assert "infer_batched_ms_per_env_step" in csv.splitlines()[0] and "4=" in csv
    code, _, err = cli(["latency", "--algos", "sac", "--act-batch", "0", "--results", str(tmp_path)])
    assert code == 2 and "act-batch" in err
