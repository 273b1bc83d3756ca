"""How far DIPO's written-back actions drift from the actions the environment received, over a run.

    python scripts/dipo_drift.py --env sombench/EightGaussians-v0 --steps 4000 --every 1000 \
        --set hidden_sizes=64,64 --set write_back=false

A maintainer script, not part of the installed package (docs/baselines-vs-reference.md, item 4). It trains
DIPO with the harness's env and action scaling in a plain loop (uniform warm-up actions, then one update per
env step) and, every `--every` steps, reads the replay buffer: of its policy-action column (the actions the
policy is cloned on, improved by the ascent and, with `write_back`, written back) the fraction of rows with a
coordinate at the box's edge (|a| >= 0.99) and the mean distance ||policy_action - action|| from the executed
action; the same two for the actions the policy was cloned on since the last row (the ascent's results,
against the executed actions of the rows they came from: with `write_back=false` the column never moves, and
these say how far each ascent went); the executed actions' own edge fraction; and the mean training return of
the episodes since the last row. `--set` takes DIPOConfig fields as `sombench run --set` does. Runs on any version of the
tree that has DIPO's policy-action column (PYTHONPATH selects the tree).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

import numpy as np
import torch

from algorithms.common.base import Choice
from algorithms.common.spaces import ActionScaler
from algorithms.dipo import DIPO, DIPOConfig
from sombench.envs import describe_env, make_env


def parse_sets(pairs: list[str]) -> dict:
    hints = typing.get_type_hints(DIPOConfig)
    out = {}
    for pair in pairs:
        key, text = pair.split("=", 1)
        kind = hints[key]
        if kind is bool:
            out[key] = text.lower() == "true"
        elif kind is int:
            out[key] = int(float(text))
        elif kind is float:
            out[key] = float(text)
        elif key == "hidden_sizes":
            out[key] = tuple(int(w) for w in text.split(","))
        else:
            out[key] = text
    return out


def drift(algo: DIPO) -> tuple[float, float, float]:
    """(edge fraction of the policy column, mean ||policy_action - action||, edge fraction of the executed actions)."""
    n = algo.buffer.size
    policy = algo.buffer.storage["policy_action"][:n]
    executed = algo.buffer.storage["action"][:n]
    edge = (policy.abs() >= 0.99).any(dim=1).float().mean().item()
    dist = (policy - executed).norm(dim=1).mean().item()
    edge_executed = (executed.abs() >= 0.99).any(dim=1).float().mean().item()
    return edge, dist, edge_executed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="sombench/EightGaussians-v0")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    info = describe_env(args.env)
    env = make_env(args.env)
    scaler = ActionScaler(info.act_low, info.act_high)
    config = dataclasses.replace(DIPOConfig(), **parse_sets(args.sets))
    algo = DIPO(info.obs_dim, info.act_dim, config, torch.device("cpu"))
    cloned = {"idx": None, "edge": [], "dist": []}
    sample_indices, improve_actions = algo.buffer.sample_indices, algo.improve_actions

    def spy_indices(n, *a, **k):
        cloned["idx"] = idx = sample_indices(n, *a, **k)
        return idx

    def spy_improve(obs, actions):
        improved = improve_actions(obs, actions)
        executed = algo.buffer.storage["action"][cloned["idx"]]
        cloned["edge"].append((improved.abs() >= 0.99).any(dim=1).float().mean().item())
        cloned["dist"].append((improved - executed).norm(dim=1).mean().item())
        return improved

    algo.buffer.sample_indices, algo.improve_actions = spy_indices, spy_improve
    rng = np.random.default_rng(args.seed)
    obs, _ = env.reset(seed=args.seed)
    obs = np.asarray(obs, dtype=np.float32).reshape(-1)
    episode_return, returns = 0.0, []
    print("env_step  column_at_edge  column_distance  cloned_at_edge  cloned_distance  executed_at_edge  train_return")
    for step in range(1, args.steps + 1):
        if step <= config.warmup_steps:
            action = rng.uniform(-1.0, 1.0, info.act_dim).astype(np.float32)
        else:
            action = algo.explore(obs).action
        next_obs, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
        next_obs = np.asarray(next_obs, dtype=np.float32).reshape(-1)
        algo.observe(obs, Choice(action), float(reward), next_obs, terminated, truncated)
        episode_return += float(reward)
        if step > config.warmup_steps:
            algo.train_step()
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
            obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        if step % args.every == 0:
            edge, dist, edge_executed = drift(algo)
            mean_return = float(np.mean(returns)) if returns else float("nan")
            c_edge = float(np.mean(cloned["edge"])) if cloned["edge"] else float("nan")
            c_dist = float(np.mean(cloned["dist"])) if cloned["dist"] else float("nan")
            returns, cloned["edge"], cloned["dist"] = [], [], []
            print(f"{step:8d}  {edge:14.3f}  {dist:15.3f}  {c_edge:14.3f}  {c_dist:15.3f}  {edge_executed:16.3f}  {mean_return:12.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
