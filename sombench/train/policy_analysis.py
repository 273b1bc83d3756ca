"""The torch side of `sombench analyze` (SOM paper, Appendices D and E): load stored policies, roll out
the first one as the behaviour policy, draw candidate actions from each method's generator alone
(`Generator.generate` from seeded noise: no best-of-N, no exploration noise) and score them with one
learned critic (`QValued.q_value`, min of a twin critic's two heads).

Every random draw comes from a stream seeded by analysis.policy_analysis.stream_seed(seed, stream, ...),
inside `private_rng` (torch's, numpy's and Python's global generators seeded on entry and restored on
exit), so the same runs and seed give the same states, candidates and values whatever ran before.
Shapes: S states, N candidates per state, o the flat observation size, d the action size. Actions are in
the algorithms' [-1, 1]^d units; Q-values in the critic's (discounted return times `reward_scale`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from algorithms.common.spaces import ActionScaler
from sombench.analysis.policy_analysis import (BOX_CANDIDATES, BOX_STATES, ROLLOUT_STEPS, STREAM_BOX_CANDIDATES, STREAM_BOX_ROLLOUT,
                                               STREAM_TSNE_ROLLOUT, STREAM_TSNE_SAMPLES, TSNE_SAMPLES, TSNE_STEPS, sample_state_indices,
                                               stream_seed)
from sombench.envs import describe_env, make_env
from sombench.runs.store import read_state
from sombench.train.replay import build_policy, stored_run
from sombench.train.trainer import flat, private_rng

BEHAVIOUR_DETERMINISTIC = False
"""How the first method acts in both rollouts. The paper calls it "the behavior policy", the policy that
collects data in training: its acting path with exploration (`act(obs, deterministic=False)`: SOM's
best-of-N and Gaussian exploration noise), so the pool holds the states training visits. Its evaluation
mode would visit a narrower set."""


@dataclasses.dataclass
class StoredPolicy:
    """A run's algorithm, rebuilt from its config.json and loaded from its checkpoint."""

    label: str
    """`algo` or `algo@variant`: the method's name in figures."""
    run: Path
    """The run folder."""
    algo: object
    """The algorithm instance (a Generator, and QValued where it scores)."""
    step: int
    """The env step of the checkpoint."""
    state: str
    """The run's state word (done, interrupted, ...)."""


def load_policy(label: str, run: Path, device: torch.device) -> StoredPolicy:
    """The policy stored in run folder `run` (train.replay's stored_run and build_policy); UserError if the
    run has no readable config.json or checkpoint."""
    record, path = stored_run(run)
    algo, _, step = build_policy(record, path, device)
    state = (read_state(Path(run)) or {}).get("state", "unknown")
    return StoredPolicy(label, Path(run), algo, step, str(state))


def _scaler(env_id: str) -> ActionScaler:
    info = describe_env(env_id)
    return ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype)


def behaviour_states(policy: StoredPolicy, env_id: str, steps: int, seed: int, stream: int = STREAM_BOX_ROLLOUT) -> np.ndarray:
    """The observations at which `policy` acts during `steps` env steps from a reset, resetting whenever an
    episode terminates or is truncated (Appendix D's pool); [steps, o] float32. Episode k resets with
    stream_seed(seed, stream, k); the policy acts as BEHAVIOUR_DETERMINISTIC says, on stream (seed, stream)."""
    scaler = _scaler(env_id)
    env = make_env(env_id)
    states = []
    try:
        with private_rng(stream_seed(seed, stream)):
            episode = 0
            obs, _ = env.reset(seed=stream_seed(seed, stream, episode))
            for _ in range(steps):
                obs = flat(obs)
                states.append(obs)
                action = policy.algo.act(obs, deterministic=BEHAVIOUR_DETERMINISTIC)
                obs, _, terminated, truncated, _ = env.step(scaler.to_env(action))
                if terminated or truncated:
                    episode += 1
                    obs, _ = env.reset(seed=stream_seed(seed, stream, episode))
    finally:
        env.close()
    return np.stack(states).astype(np.float32)


def generator_noise(algo, shape: tuple[int, int], seed: int) -> torch.Tensor:
    """The generator's input noise N(0, noise_std^2 I) of `shape` [B, d], from a CPU torch generator seeded
    with `seed` (the same numbers on every device), moved to the algorithm's device."""
    g = torch.Generator().manual_seed(seed)
    return (float(algo.noise_std) * torch.randn(shape, generator=g)).to(algo.device)


@torch.no_grad()
def generator_samples(algo, states: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` actions per state of `states` [S, o] from `algo.generate` alone, its noise `generator_noise`
    seeded with `seed` (a multi-step sampler's own draws come from torch's global generator, seeded with
    `seed` too); [S, n, d] float32 in [-1, 1]. Row s * n + j of the noise belongs to state s."""
    s = len(states)
    obs = torch.as_tensor(np.asarray(states), dtype=torch.float32, device=algo.device).repeat_interleave(n, dim=0)
    noise = generator_noise(algo, (s * n, algo.act_dim), seed)
    with private_rng(seed):
        actions = algo.generate(obs, noise)
    return actions.reshape(s, n, -1).float().cpu().numpy()


@torch.no_grad()
def q_values(critic, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """`critic.q_value` of `actions` [S, N, d] at their states `states` [S, o]; [S, N] float64."""
    s, n, d = actions.shape
    obs = torch.as_tensor(np.asarray(states), dtype=torch.float32, device=critic.device).repeat_interleave(n, dim=0)
    acts = torch.as_tensor(actions.reshape(s * n, d), dtype=torch.float32, device=critic.device)
    return critic.q_value(obs, acts).reshape(s, n).double().cpu().numpy()


@dataclasses.dataclass
class BoxData:
    """Appendix D's evaluation batch and each method's scored candidates (Figure 3)."""

    pool: np.ndarray
    """[ROLLOUT_STEPS, o] the behaviour rollout's observations."""
    indices: np.ndarray
    """[S] the sampled states' positions in the pool (sorted)."""
    states: np.ndarray
    """[S, o] the sampled states."""
    candidates: dict[str, np.ndarray]
    """label -> [S, N, d] the method's candidate actions."""
    q: dict[str, np.ndarray]
    """label -> [S, N] the critic's value of each candidate."""


def box_data(policies: list[StoredPolicy], critic: StoredPolicy, env_id: str, seed: int, rollout_steps: int = ROLLOUT_STEPS,
             n_states: int = BOX_STATES, n_candidates: int = BOX_CANDIDATES) -> BoxData:
    """Appendix D: roll out policies[0] for `rollout_steps` steps, draw `n_states` states uniformly from the
    pool (analysis.sample_state_indices), draw `n_candidates` actions per state from each policy's generator
    (method i on stream (seed, STREAM_BOX_CANDIDATES, i)) and score all of them with `critic`."""
    pool = behaviour_states(policies[0], env_id, rollout_steps, seed, STREAM_BOX_ROLLOUT)
    indices = sample_state_indices(len(pool), n_states, seed)
    states = pool[indices]
    candidates, q = {}, {}
    for i, policy in enumerate(policies):
        candidates[policy.label] = generator_samples(policy.algo, states, n_candidates, stream_seed(seed, STREAM_BOX_CANDIDATES, i))
        q[policy.label] = q_values(critic.algo, states, candidates[policy.label])
    return BoxData(pool, indices, states, candidates, q)


@dataclasses.dataclass
class TsneData:
    """Appendix E's samples: each method's actions at each state of a short behaviour rollout, with their Q."""

    states: np.ndarray
    """[T, o] the rollout's observations (the first is the fixed initial state)."""
    samples: dict[str, np.ndarray]
    """label -> [T, M, d] the method's actions at each step."""
    q: dict[str, np.ndarray]
    """label -> [T, M] the critic's value of each action at its step's state."""


def tsne_data(policies: list[StoredPolicy], critic: StoredPolicy, env_id: str, seed: int, steps: int = TSNE_STEPS,
              n_samples: int = TSNE_SAMPLES) -> TsneData:
    """Appendix E.1: from the initial state reset with stream_seed(seed, STREAM_TSNE_ROLLOUT, 0) (fixed by
    the seed), policies[0] acts for `steps` steps (an episode that ends early is reset from the stream's
    next episode seed, as in Appendix D); at each step every policy's generator draws `n_samples` actions
    (method i, step t on stream (seed, STREAM_TSNE_SAMPLES, i, t)), all scored by `critic`."""
    states = behaviour_states(policies[0], env_id, steps, seed, STREAM_TSNE_ROLLOUT)
    samples, q = {}, {}
    for i, policy in enumerate(policies):
        per_step = [generator_samples(policy.algo, states[t:t + 1], n_samples, stream_seed(seed, STREAM_TSNE_SAMPLES, i, t))[0]
                    for t in range(steps)]
        samples[policy.label] = np.stack(per_step)
        q[policy.label] = q_values(critic.algo, states, samples[policy.label])
    return TsneData(states, samples, q)
