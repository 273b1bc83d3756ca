"""Cost projection: how long a set of runs will take, before they start.

Per run: env_steps x env step time + (env_steps - warm-up) x (R x update time + acting time): the runner
takes one uniform random action per warm-up step (no network), then one acting call and R updates per
env step (R = updates_per_step, 1 by default); PPO (on-policy) acts every step and runs its update (the timed unit) once per rollout of
`batch_size` steps. Evaluation and checkpoints are left out (a few percent at the default settings).

Update and acting times come from, in order:
1. the latest `sombench latency` CSV for that device in `RESULTS/latency/` (`<env>_<device>_<time>.csv`),
   when the run's config is the algorithm's paper default (the CSV times the defaults);
2. otherwise measured on the spot with the run's own config: a few updates on a random batch with the
   run's own env's shapes, through the same timing path as `sombench latency`
   (sombench/measure/timing.py), with fewer repeats. (Not the latency env's HalfCheetah-v4 shapes:
   that would make a run on any env need MuJoCo, and time the wrong shapes.)
The env step time is measured on the spot per env (random actions, a few hundred steps).

The paper's Table 2 (RTX 4090, `sombench/data/paper_table2.csv`) is a labelled alternative: its
train + inference ms with our env step times. SAC, MFP and PPO are not in Table 2; their GPU time is
estimated as ours x (paper SOM / our SOM) and marked as such (the reference, SOM by default, is
sombench.measure.paper.DEFAULT_REFERENCE). The table is drawn by sombench/render/cost.py.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sombench.measure.paper import DEFAULT_REFERENCE, paper_table2, reference_label
from sombench.runs.outcome import RunState

HOURS_HINT = 3.0
"""`sombench run` prints its projection when the work ahead exceeds this many hours of wall time."""
MAX_SECONDS_PER_STEP = 10.0
"""An upper bound on one env step with its update on any device (SOM at K = 100 is ~0.6 s on a CPU core),
so `sombench run` measures nothing for runs that cannot reach HOURS_HINT."""


@dataclasses.dataclass
class AlgoTime:
    train_ms: float
    infer_ms: float
    """One acting call, which serves `act_envs` env steps."""
    source: str
    act_envs: int = 1
    """Env steps one timed acting call serves: 1, or a run's num_envs N when the call was timed on N observations
    at once (`act_batch`), so acting costs infer_ms / N per env step."""


def latest_latency_csv(results: Path, device: str) -> Path | None:
    """The newest RESULTS/latency/<env>_<device>_<UTC time>.csv for `device` (by its timestamp in the name)."""
    from sombench.runs.store import Store

    folder = Store(results).latency_dir()
    if not folder.is_dir():
        return None
    dev = device.replace(":", "")
    found = [p for p in folder.glob(f"*_{dev}_*.csv")]
    return max(found, key=lambda p: p.stem.rsplit("_", 1)[-1]) if found else None


def from_latency_csv(path: Path) -> dict[str, AlgoTime]:
    frame = pd.read_csv(path)
    return {str(r["algo"]): AlgoTime(float(r["train_ms_mean"]), float(r["infer_ms_mean"]), f"latency CSV {path.name}")
            for _, r in frame.iterrows()}


def measure_algo(algo: str, config: Any, device: str, env_id: str, repeats: int = 3, warmup: int = 1) -> AlgoTime:
    """Time `algo` with `config` at `env_id`'s shapes: `repeats` updates (each its whole update cycle) and
    acting calls, on `sombench latency`'s path (sombench.measure.timing.time_update_and_act)."""
    import torch

    from sombench.envs import describe_env
    from sombench.measure.timing import time_update_and_act
    from sombench.runs.spec import algorithm_class

    info = describe_env(env_id)
    times = time_update_and_act(algorithm_class(algo), config, info, torch.device(device), repeats, warmup)
    n = int(getattr(config, "num_envs", 1))
    if n == 1:
        return AlgoTime(float(np.mean(times.train) * 1e3), float(np.mean(times.infer) * 1e3), "measured now")
    from sombench.measure.latency import time_batched_acting

    batched = time_batched_acting(times.algo, info, torch.device(device), (n,), repeats, warmup)[n]
    return AlgoTime(float(np.mean(times.train) * 1e3), float(batched.mean_ms), f"measured now (acting on {n} envs at once)", n)


_ENV_MS: dict[str, float] = {}


def env_step_ms(env_id: str, steps: int = 300) -> float:
    """Mean ms per env.step with uniform random actions (resets included), measured once per process."""
    if env_id not in _ENV_MS:
        from sombench.envs import make_env

        env = make_env(env_id)
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32))
            if term or trunc:
                env.reset()
        _ENV_MS[env_id] = (time.perf_counter() - t0) / steps * 1e3
        env.close()
    return _ENV_MS[env_id]


def _is_default(spec) -> bool:
    """Whether the spec's update and acting cost that of the algorithm's defaults (its update-to-data ratio
    changes how often an update runs, not what one costs)."""
    from sombench.runs.spec import algorithm_class

    config = spec.config()
    if hasattr(config, "updates_per_step"):
        config = dataclasses.replace(config, updates_per_step=algorithm_class(spec.algo).Config().updates_per_step)
    return spec.preset is None and config == algorithm_class(spec.algo).Config()


def algo_times(specs: list, device: str, results: Path | None) -> dict[tuple[str, str, str], AlgoTime]:
    """(algo, variant label, env) -> AlgoTime for every distinct config and env among specs."""
    csv = latest_latency_csv(results, device) if results is not None else None
    table = from_latency_csv(csv) if csv else {}
    out: dict[tuple[str, str], AlgoTime] = {}
    for spec in specs:
        key = (spec.algo, spec.key.label, spec.env_id)
        if key in out:
            continue
        if spec.algo in table and _is_default(spec):
            out[key] = table[spec.algo]
        else:
            out[key] = measure_algo_at_threads(spec, device)
    return out


def measure_algo_at_threads(spec, device: str) -> AlgoTime:
    """measure_algo for `spec` at the spec's own torch thread count, restored afterwards: at torch's default
    (every core) on a busy 2-core machine one SOM update timed 1,327 ms against 45 ms at the run's 1 thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        return measure_algo(spec.algo, spec.config(), device, spec.env_id)
    finally:
        torch.set_num_threads(before)


def paper_times() -> dict[str, tuple[float, float]]:
    return {str(r["algo"]).lower(): (float(r["train_ms"]), float(r["infer_ms"])) for _, r in paper_table2().iterrows()}


def run_seconds(spec, t: AlgoTime, env_ms: float) -> float:
    """Off-policy: acting and `updates_per_step` updates per env step after the warm-up. On-policy (PPO): acting
    per env step and one update call (the measured unit) per rollout of `batch_size` steps. Acting per env step is
    one call / `t.act_envs` (N envs share one batched call)."""
    from algorithms.common.base import OffPolicyAlgorithm
    from sombench.runs.spec import algorithm_class

    config = spec.config()
    if issubclass(algorithm_class(spec.algo), OffPolicyAlgorithm):
        learning = max(0, spec.total_steps - int(config.warmup_steps))
        return (spec.total_steps * env_ms + learning * (float(config.updates_per_step) * t.train_ms + t.infer_ms / t.act_envs)) / 1e3
    updates = spec.total_steps // max(1, int(getattr(config, "batch_size", 1)))
    return (spec.total_steps * (env_ms + t.infer_ms / t.act_envs) + updates * t.train_ms) / 1e3


@dataclasses.dataclass
class Projection:
    device: str
    rows: list[dict[str, Any]]
    """Per (algo label, env): runs, steps, ms per step here, hours here, paper-GPU hours (or NaN), sources."""
    total_s: float
    paper_total_s: float
    paper_estimated: list[str]
    """Algorithms not in Table 2 whose GPU time is scaled from ours."""

    def hours(self, workers: int = 1) -> float:
        return self.total_s / 3600 / max(1, workers)


def project(specs: list, device: str, results: Path | None, measure_env: bool = True,
            reference: str = DEFAULT_REFERENCE) -> Projection:
    """The projection of `specs`. measure_env=False leaves env step time out (0 ms: a lower bound), so
    nothing steps an environment in this process: `sombench run`'s hint must not touch the user's env
    before the run (a stateful env, or one that counts its steps, would see the extra steps). The paper
    GPU time of an algorithm not in Table 2 is ours scaled by `reference`'s paper / our time."""
    times = algo_times(specs, device, results)
    paper = paper_times()
    ref, label = reference.lower(), reference_label(reference)
    ref_ours = next((t for (a, _, _), t in times.items() if a.lower() == ref), None)
    groups: dict[tuple[str, str], list] = {}
    for spec in specs:
        groups.setdefault((spec.key.label, spec.env_id), []).append(spec)
    rows, total, paper_total, estimated, known = [], 0.0, 0.0, set(), False
    for (label, env), group in groups.items():
        spec = group[0]
        t = times[(spec.algo, label, env)]
        ems = env_step_ms(env) if measure_env else 0.0
        secs = sum(run_seconds(s, t, ems) for s in group)
        # Table 2 times one acting call; with N envs the GPU is assumed to act on N observations in the time of one
        # (the batch is still far from filling it), so acting costs a call / N per env step there
        n = int(getattr(spec.config(), "num_envs", 1))
        if spec.algo in paper:
            pt = AlgoTime(*paper[spec.algo], "paper Table 2", n)
        elif ref_ours is not None and ref in paper and ref_ours.train_ms > 0:
            ratio = (paper[ref][0] + paper[ref][1]) / (ref_ours.train_ms + ref_ours.infer_ms / ref_ours.act_envs)
            pt = AlgoTime(t.train_ms * ratio, t.infer_ms / t.act_envs * ratio, f"estimated: ours x paper {label} / our {label}", n)
            estimated.add(spec.algo)
        else:
            pt = None
        psecs = sum(run_seconds(s, pt, ems) for s in group) if pt else math.nan
        total += secs
        paper_total += 0.0 if math.isnan(psecs) else psecs
        known = known or not math.isnan(psecs)
        rows.append({"algo": label, "env": env, "runs": len(group), "steps": spec.total_steps,
                     "update_ms": t.train_ms, "act_ms": t.infer_ms / t.act_envs, "env_ms": ems, "hours": secs / 3600,
                     "paper_hours": psecs / 3600, "source": t.source, "paper_source": pt.source if pt else "not in Table 2"})
    # NaN when no algorithm of the projection has a paper time (not in Table 2, none to scale from): not 0 h
    return Projection(device, rows, total, paper_total if known else math.nan, sorted(estimated))


def hours_text(hours: float) -> str:
    """Hours as text: `12.3 h`, or days (`3.1 d`) from 48 hours; `-` for NaN."""
    if hours != hours:
        return "-"
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} d"


def run_hint(specs: list, workers: int, results: Path) -> str | None:
    """One line for `sombench run` when its work exceeds HOURS_HINT wall hours on its device, else None.
    Measures nothing when even MAX_SECONDS_PER_STEP per step would stay under the threshold."""
    if not specs:
        return None
    parallel = max(1, min(workers, len(specs)))
    bound = sum(s.total_steps for s in specs) * MAX_SECONDS_PER_STEP / parallel / 3600
    if bound < HOURS_HINT:
        return None
    device = specs[0].device
    rest = []
    from sombench.runs import store

    st = store.Store(results)
    for spec in specs:
        state = store.read_state(st.run_dir(spec.key)) or {}
        if state.get("state") != RunState.DONE:
            rest.append(dataclasses.replace(spec, total_steps=max(1, spec.total_steps - int(state.get("env_step") or 0))))
    if not rest:
        return None
    p = project(rest, device, results, measure_env=False)
    hours = p.hours(parallel)
    if not hours >= HOURS_HINT:  # NaN: an update time nobody can measure (a plug-in without update(batch))
        return None
    unit = "GPU" if device.startswith("cuda") else "CPU"
    hint = "use a GPU (--device cuda) or `sombench sweep` on a cluster" if unit == "CPU" else "use `sombench sweep` on a cluster"
    return (f"projected (updates and acting alone): {hours_text(hours)} wall for {len(rest)} run(s) on {device} ({hours_text(p.total_s / 3600)} {unit} time, "
            f"{p.rows[0]['update_ms']:.1f} ms per update, {p.rows[0]['source']}; the paper's RTX 4090: "
            f"{_paper_hours_text(p.paper_total_s / 3600 / parallel)}); {hint}")


def _paper_hours_text(hours: float) -> str:
    return "not in its Table 2" if hours != hours else hours_text(hours)
