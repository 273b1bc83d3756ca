"""GPU-days of the paper's Table 1 grid at Table 2's RTX 4090 times, at 1 env / R 1 and at 5 envs / R 0.2 (issue 26).

The seven algorithms of Table 2, the nine paper tasks, 5 seeds, each at its paper budget (`sombench sweep --algos ...
--envs paper --seeds 5 --dry-run` builds the same specs); per run `sombench.measure.cost.run_seconds` with Table 2's
update and acting times (one acting call on N observations assumed to cost one call on the GPU) and env steps timed
on this CPU. Nothing is measured for the algorithms themselves, so it runs in about a minute.

    python scripts/paper_grid_projection.py
"""

from __future__ import annotations

from sombench.app import sweep
from sombench.measure.cost import AlgoTime, env_step_ms, paper_times, run_seconds

TABLE2 = ["som", "qsm", "dpmd", "dipo", "sdac", "dacer", "qvpo"]


def main() -> int:
    paper = paper_times()
    print("| setting | runs | env steps | GPU-days | of which updates | acting | env steps (this CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, extra in (("1 env, R 1", {}), ("5 envs, R 0.2", {"num_envs": "5", "updates_per_step": "0.2"})):
        plan = sweep.prepare(sweep.SweepRequest(TABLE2, ["paper"], seeds=5, device="cpu", **extra), dry_run=True)
        total = updates = acting = env = 0.0
        for spec in plan.specs:
            n = spec.config().num_envs
            train_ms, infer_ms = paper[spec.algo]
            ms = env_step_ms(spec.env_id)
            alone = run_seconds(spec, AlgoTime(0.0, 0.0, "", n), ms)
            env += alone
            updates += run_seconds(spec, AlgoTime(train_ms, 0.0, "", n), ms) - alone
            acting += run_seconds(spec, AlgoTime(0.0, infer_ms, "", n), ms) - alone
            total += run_seconds(spec, AlgoTime(train_ms, infer_ms, "", n), ms)
        days = 86400
        print(f"| {label} | {len(plan.specs)} | {sum(s.total_steps for s in plan.specs):.3g} | {total / days:.1f} | "
              f"{updates / days:.1f} | {acting / days:.1f} | {env / days:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
