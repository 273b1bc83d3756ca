#!/usr/bin/env python3
"""Time `sombench table --results DIR` (median of N wall times, fresh process each) and report which
heavy packages it imports, with torch's cumulative import time (python -X importtime).

Usage: python scripts/bench_table_import.py SOMBENCH_BIN RESULTS_DIR [N]
  SOMBENCH_BIN: e.g. /tmp/before/.venv/bin/sombench (its python is the sibling `python`).
"""
import os
import re
import statistics
import subprocess
import sys
import time

bin_, results = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 5
py = os.path.join(os.path.dirname(bin_), "python")

# 1. wall time of the real console script
times = []
for _ in range(n + 1):  # first run is a warm-up (page cache), not counted
    t0 = time.perf_counter()
    subprocess.run([bin_, "table", "--results", results], check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - t0)
times = times[1:]
print(f"sombench table wall times (s): {' '.join(f'{t:.3f}' for t in times)}")
print(f"median of {n}: {statistics.median(times):.3f} s")

# 2. what gets imported
code = f"from sombench.cli import main; main(['table', '--results', {results!r}])"
proc = subprocess.run([py, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
rows = []  # (self_us, cumulative_us, name)
for line in proc.stderr.splitlines():
    m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
    if m:
        rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)))
names = {r[3] for r in rows}
top = {r[3]: r for r in rows if r[2] == 1}  # top-level imports (depth 1)
total_us = sum(r[0] for r in rows)
print(f"modules imported: {len(names)}; summed self import time {total_us / 1e6:.3f} s")
for pkg in ("torch", "algorithms", "pandas", "scipy", "matplotlib", "numpy", "gymnasium", "rich", "typer"):
    hit = [r for r in rows if r[3] == pkg or r[3].startswith(pkg + ".")]
    if not hit:
        print(f"  {pkg:12s} NOT imported")
        continue
    root = [r for r in hit if r[3] == pkg]
    cum = max(r[1] for r in root) if root else max(r[1] for r in hit)
    own = sum(r[0] for r in hit)
    print(f"  {pkg:12s} imported ({len(hit)} modules), cumulative of its root import {cum / 1e6:.3f} s, "
          f"summed self time of all its modules {own / 1e6:.3f} s")
# who imports torch first (a function-level import shows as a top-level row: grep the source for it): the line above it in nesting order is its importer chain
for target in ("torch", "algorithms"):
    for i, r in enumerate(rows):
        if r[3] == target:
            # importtime prints children before parents; the parent is the next row with smaller indent
            chain, depth = [r[3]], r[2]
            for r2 in rows[i + 1:]:
                if r2[2] < depth:
                    chain.append(r2[3])
                    depth = r2[2]
            print(f"  {target} import chain (innermost first): " + " <- ".join(chain))
            break
