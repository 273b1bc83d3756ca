"""The Figure 5 table of docs/som-notes.md section 15: every algorithm's bandit report in one Markdown table.

Reads each `RESULTS/<env>/<algo>[@variant]/bandit_modes.json` that `sombench bandit` wrote and prints, per
task, algorithm and seed: the paper's own measure (the 7 x 7 noise grid's endpoints per high-reward region,
Appendix H.3), the 1,000-sample counts and their in-region share, and the trained critic's correlation with
the reward and its peak heights over the true one (sombench.train.bandit.critic_report).

    python scripts/figure5_table.py RESULTS [--env sombench/EightGaussians-v0 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(path: Path) -> list[str]:
    payload = json.loads(path.read_text())
    out = []
    for r in payload["seeds"]:
        names = list(r["counts"])
        few = len(names) <= 4
        counts = r["counts"]
        # more than four regions (checkerboard's eight squares): the range over regions, and how many hold >= 2%
        samples = ("/".join(str(counts[k]) for k in names) if few else
                   f"{min(counts.values())}-{max(counts.values())}, {sum(v >= 0.02 * r['n'] for v in counts.values())} of {len(names)} regions >= 2%")
        grid = "-"
        if "grid" in r:
            g = r["grid"]
            grid = ("/".join(str(g["counts"][k]) for k in names) if few else
                    f"{sum(v > 0 for v in g['counts'].values())} of {len(names)} regions hit") + f" ({g['total']}/49)"
        critic = "-"
        if r.get("critic"):
            c = r["critic"]
            peaks = list(c["region_peak"].values())
            shown = "/".join(f"{p:.2f}" for p in peaks) if few else f"{min(peaks):.2f}-{max(peaks):.2f}"
            critic = f"{c['corr']:.2f}; {shown}; origin {c['q_origin']:.2f}"
        variant = path.parent.name
        out.append(f"| {variant} | {r['seed']} | {grid} | {samples} = {r['fraction']:.1%} | {critic} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--env", action="append", default=None, help="env ids (default: every bandit env in RESULTS)")
    args = parser.parse_args()
    envs = args.env or sorted(str(p.relative_to(args.results)) for p in args.results.glob("sombench/*") if p.is_dir())
    for env in envs:
        files = sorted((args.results / env).glob("*/bandit_modes.json"))
        if not files:
            continue
        print(f"\n{env}\n")
        print("| algorithm | seed | 7x7 grid per region (in a region / 49) | 1,000 samples per region = in a region | "
              "critic: corr(Q, r); peaks / true; Q(0) / true |")
        print("|---|---|---|---|---|")
        for path in files:
            print("\n".join(rows(path)))


if __name__ == "__main__":
    main()
