"""Env steps per second of training runs at 1, 4 and 8 envs, sync and async, at updates-per-step 1 and 0.2 (issue 26).

Each cell is one `sombench run` (its own process, one torch thread, CPU), run one after another so the cells share
the machine alike; SPS is what the run records in state.json: env steps over the wall time of the training loop
(warm-up, updates, acting, env steps and the one evaluation at the end; start-up excluded). Prints a markdown
table (rows: algorithm and ratio; columns: envs and mode).

    python scripts/vector_sps.py --out /tmp/sps [--algos sac,som] [--env Hopper-v4] [--steps 4000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results store for the runs")
    parser.add_argument("--algos", default="sac,som")
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--envs", default="1,4,8")
    parser.add_argument("--ratios", default="1,0.2")
    args = parser.parse_args(argv)
    bin_ = Path(sys.executable).parent / "sombench"
    algos, envs, ratios = args.algos.split(","), [int(n) for n in args.envs.split(",")], args.ratios.split(",")
    sps: dict[tuple[str, str, int, str], float] = {}
    for algo, ratio, n, mode in itertools.product(algos, ratios, envs, ("sync", "async")):
        tag = f"sps-n{n}-r{ratio}-{mode}"
        cmd = [str(bin_), "run", "--algo", algo, "--env", args.env, "--steps", str(args.steps), "--results", str(args.out),
               "--tag", tag, "--threads", "1", "--device", "cpu", "--eval-every", str(args.steps), "--eval-episodes", "1",
               "--set", "hidden_sizes=64,64", "--set", "batch_size=64", "--set", f"warmup_steps={args.warmup}",
               "--num-envs", str(n), "--updates-per-step", ratio, "--vector-mode", mode]
        subprocess.run(cmd, check=True, capture_output=True)
        state = json.loads((args.out / args.env / f"{algo}@{tag}" / "seed_0" / "state.json").read_text())
        sps[(algo, ratio, n, mode)] = float(state["sps"])
        print(f"{algo} R={ratio} N={n} {mode}: {sps[(algo, ratio, n, mode)]:.0f} SPS", file=sys.stderr, flush=True)
    head = [f"{n} env{'s' if n > 1 else ''} {mode}" for n in envs for mode in ("sync", "async")]
    print(f"| {args.env}, {args.steps:,} steps ({args.warmup:,} warm-up), 2 x 64, batch 64 | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for algo, ratio in itertools.product(algos, ratios):
        base = sps[(algo, ratio, envs[0], "sync")]
        cells = [f"{sps[(algo, ratio, n, m)]:,.0f} ({sps[(algo, ratio, n, m)] / base:.2f}x)" for n in envs for m in ("sync", "async")]
        print(f"| {algo}, updates-per-step {ratio} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
