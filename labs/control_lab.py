"""What SOM's actor is taught on a control task, read from a stored run (docs/som-notes.md section 16).

On the bandit there is one state, so standardising Q "across each training batch" (Sec. 4.4) is the same
over the batch and over one state's proposals. On a control task Q also varies across states, often far
more than across one state's actions; standardised over the whole batch, one state's K proposals may then
differ by a small fraction of a unit of Qn, and the Boltzmann weights exp(beta_Q Qn) over them are nearly
flat: the score is then the proposal's own geometry, not the critic's preference. This lab measures that
on a trained run's critic and replay buffer, and how far the run's generator is from the critic's argmax.

For B states drawn from the run's replay buffer (as the actor's batch is):

- spread: the std of min(Q1, Q2) over a uniform grid of actions within each state (1-D actions: 201
  points in [-1, 1]; more dimensions: 256 uniform actions), against the std of all B x G values;
- weights: at diffusion times t, a_t perturbed from the buffer's actions as the actor step does, K
  proposals as Eq. 5 draws them (clipped to the box); the Boltzmann weights' effective sample size
  (sum w)^2 / sum w^2 divided by K, and the weight of the best proposal, with Q standardised over the
  batch and over each state;
- regret: the critic's regret of the generator's one-step actions (32 noises per state, no best-of-N),
  (max_G Q - Q(a)) / (max_G Q - mean_G Q), 0 at the critic's argmax, ~1 for a uniform random action.

- ceilings: the regret of actions drawn exactly from the Boltzmann target exp(beta_Q Qn) on the action grid
  (what a perfect generator of the target would score), and of the generation ODE integrated with SOM's own
  score and velocity in 100 Euler steps from the prior (the field a perfect one-step fit would follow);
- `--fresh-actor [--set KEY=VALUE ...]`: a freshly initialised actor, config changed by the --set values,
  with the run's critic, temperature and buffer (the critic stays fixed from here on);
- `--train-actor N`: N more actor steps of the run's own `actor_step` on its buffer, the critic fixed,
  regret reported every N/10: does the actor approach its target given more updates?

    python -m labs.control_lab RUN_FOLDER [RUN_FOLDER ...] [--states 512] [--seed 0]
        [--over batch|state] [--train-actor N] [--fresh-actor [--set KEY=VALUE ...]]
    python -m labs.control_lab RUN_FOLDER --evaluate-particles N   # the final policy, acting best-of-N
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from sombench.overrides import apply_overrides
from sombench.train.replay import build_policy, stored_run
from labs import run_lab


def action_grid(b: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """[B, G, d] actions: 201 points of [-1, 1] for d = 1, else 256 uniform actions per state."""
    if d == 1:
        return torch.linspace(-1, 1, 201).view(1, -1, 1).expand(b, -1, -1)
    return torch.rand((b, 256, d), generator=generator) * 2 - 1


def q_of(algo, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """min(Q1, Q2) [B, G] of obs [B, o] with actions [B, G, d]."""
    b, g, d = actions.shape
    with torch.no_grad():
        return algo.critic.min_q(obs.repeat_interleave(g, 0), actions.reshape(b * g, d)).view(b, g)


def weight_stats(algo, obs: torch.Tensor, actions: torch.Tensor, t: float, over: str, generator: torch.Generator) -> dict:
    """ESS / K and the top weight of Eq. 5's Boltzmann weights at time t, Q standardised `over` batch or state."""
    cfg = algo.config
    b, d = actions.shape
    k = cfg.num_score_samples
    tt = torch.full((b, 1), t)
    a_t = algo.schedule.perturb(actions, torch.randn(actions.shape, generator=generator), tt)
    mean, std = algo.schedule.proposal(a_t, tt)
    proposals = (mean.unsqueeze(1) + std.unsqueeze(1) * torch.randn((b, k, d), generator=generator)).clamp(-1, 1)
    q = q_of(algo, obs, proposals)
    dims = None if over == "batch" else (1,)
    if dims is None:
        qn = (q - q.mean()) / (q.std() + 1e-6)
    else:
        qn = (q - q.mean(dims, keepdim=True)) / (q.std(dims, keepdim=True) + 1e-6)
    w = torch.softmax(float(algo.inverse_temperature()) * qn, dim=1)
    ess = 1.0 / (w.pow(2).sum(1))
    return {"ess_over_k": float((ess / k).mean()), "top_weight": float(w.max(1).values.mean()),
            "qn_spread_in_state": float(qn.std(1).mean())}


def regret_of(algo, obs: torch.Tensor, actions: torch.Tensor, q: torch.Tensor) -> float:
    """Mean critic regret of actions [B, n, d] at obs [B, o], normalised per state by the grid's Q [B, G]."""
    q_max, q_mean = q.max(1).values, q.mean(1)
    return float(((q_max.unsqueeze(1) - q_of(algo, obs, actions)) / (q_max - q_mean + 1e-8).unsqueeze(1)).mean())


def generator_actions(algo, obs: torch.Tensor, n: int = 32) -> torch.Tensor:
    with torch.no_grad():
        return algo.generate(obs.repeat_interleave(n, 0)).view(obs.shape[0], n, -1)


def target_regret(algo, q: torch.Tensor, over: str) -> float:
    """Expected regret of the exact Boltzmann target exp(beta_Q Qn) on the grid, Qn standardised `over`."""
    qn = (q - q.mean()) / (q.std() + 1e-6) if over == "batch" else (q - q.mean(1, keepdim=True)) / (q.std(1, keepdim=True) + 1e-6)
    p = torch.softmax(float(algo.inverse_temperature()) * qn, dim=1)
    q_max, q_mean = q.max(1, keepdim=True).values, q.mean(1, keepdim=True)
    return float((p * (q_max - q) / (q_max - q_mean + 1e-8)).sum(1).mean())


def integrated_field(algo, obs: torch.Tensor, n: int = 8, steps: int = 100, seed: int = 0) -> torch.Tensor:
    """[B, n, d] endpoints of the generation ODE da = -v(a, t) dt from t = 1 to 1e-3 with SOM's own score and
    velocity (Eq. 5, 8; the standardisation over the B x n rows, as the actor step's over its batch), clipped."""
    g = torch.Generator().manual_seed(seed)
    rows = obs.repeat_interleave(n, 0)
    a = algo.prior_std * torch.randn((rows.shape[0], algo.act_dim), generator=g)
    times = torch.linspace(1.0, 1e-3, steps + 1)
    for i in range(steps):
        t = torch.full((rows.shape[0], 1), float(times[i]))
        a = (a - float(times[i] - times[i + 1]) * algo.velocity(a, algo.score(rows, a, t), t)).detach()
    return a.clamp(-1, 1).view(obs.shape[0], n, -1)


def with_fresh_actor(algo, sets: list[str], seed: int):
    """A new instance of the run's algorithm with `sets` applied to its config and a freshly initialised
    actor (torch seeded with `seed`), holding the run's trained critic, temperature and replay buffer."""
    config = apply_overrides(type(algo.config), sets, dataclasses.asdict(algo.config), base_name="the run's config")[0]
    torch.manual_seed(seed)
    fresh = type(algo)(algo.obs_dim, algo.act_dim, config, torch.device("cpu"))
    fresh.critic, fresh.critic_target = algo.critic, algo.critic_target  # the run's (its width, whatever the actor's)
    fresh.temperature.load_state_dict(algo.temperature.state_dict())
    fresh.buffer = algo.buffer
    return fresh


def measure(run: str, states: int, seed: int, over: str | None = None, train_actor: int = 0,
            fresh_actor: list[str] | None = None) -> dict:
    record, path = stored_run(run)
    algo, info, step = build_policy(record, path, torch.device("cpu"))
    if over is not None:
        algo.config = dataclasses.replace(algo.config, standardize_q_over=over)
    if fresh_actor is not None:
        algo = with_fresh_actor(algo, fresh_actor, seed)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    batch = algo.buffer.sample(states, generator=gen)
    obs, actions = batch.obs, batch.action
    grid = action_grid(states, info.act_dim, gen)
    q = q_of(algo, obs, grid)
    gen_actions = generator_actions(algo, obs)
    out = {"run": run, "step": step, "alpha": float(algo.temperature.alpha.detach()),
           "beta_q": float(algo.inverse_temperature()),
           "standardize_q_over": algo.config.standardize_q_over,
           "q_std_within_state": float(q.std(1).mean()), "q_std_batch": float(q.std()),
           "generator_regret": regret_of(algo, obs, gen_actions, q),
           "uniform_regret": regret_of(algo, obs, torch.rand((states, 32, info.act_dim), generator=gen) * 2 - 1, q),
           "generator_action_std_in_state": float(gen_actions.std(1).mean()),
           "argmax_action_abs_mean": float(grid.gather(1, q.argmax(1).view(-1, 1, 1).expand(-1, 1, grid.shape[2])).abs().mean()),
           "target_regret_batch": target_regret(algo, q, "batch"), "target_regret_state": target_regret(algo, q, "state"),
           "field_regret": regret_of(algo, obs[:128], integrated_field(algo, obs[:128], seed=seed), q[:128])}
    for t in (0.05, 0.2, 0.5):
        for o in ("batch", "state"):
            for key, value in weight_stats(algo, obs, actions, t, o, gen).items():
                out[f"t{t}_{o}_{key}"] = value
    if train_actor:
        history = []
        every = max(1, train_actor // 10)
        for i in range(1, train_actor + 1):
            algo.actor_step(algo.buffer.sample(algo.config.batch_size))
            if i % every == 0:
                history.append((i, round(regret_of(algo, obs, generator_actions(algo, obs), q), 3)))
        out["train_actor_regret"] = history
    return out


def evaluate_with(run: str, particles: int, episodes: int = 10) -> dict:
    """The run's final policy evaluated as its evaluations are (same episode seeds), but acting best-of-
    `particles` (1: the generator alone; the default evaluation of SOM: best-of-32)."""
    from algorithms.common.spaces import ActionScaler
    from sombench.envs import make_env
    from sombench.train.trainer import evaluate

    record, path = stored_run(run)
    algo, info, step = build_policy(record, path, torch.device("cpu"))
    algo.config = dataclasses.replace(algo.config, eval_particles=particles)
    env = make_env(record["run"]["env"])
    try:
        returns = evaluate(algo, env, ActionScaler(info.act_low, info.act_high, info.act_shape, info.act_dtype), episodes,
                           int(record["run"]["seed"]), step)
    finally:
        env.close()
    return {"run": run, "step": step, "eval_particles": particles, "return_mean": float(returns.mean()),
            "return_std": float(returns.std())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--states", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--over", choices=("batch", "state"), default=None,
                        help="standardize_q_over for the field and the actor steps (default: the run's)")
    parser.add_argument("--train-actor", type=int, default=0)
    parser.add_argument("--fresh-actor", action="store_true",
                        help="replace the run's actor by a fresh one (config with --set applied) before measuring")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--evaluate-particles", type=int, default=None, metavar="N",
                        help="only evaluate the run's final policy acting best-of-N (10 episodes, the run's seeds)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        if args.evaluate_particles is not None:
            print(json.dumps(evaluate_with(run, args.evaluate_particles)))
            continue
        print(json.dumps(measure(run, args.states, args.seed, args.over, args.train_actor,
                                 args.set if args.fresh_actor else None)))


if __name__ == "__main__":
    run_lab(main)
