"""One refresh of the sweep's live table for the paper's grid (10 algorithms x 9 tasks x 5 seeds) and one
spec.key access (docs/benchmarks.md "Layering"). Usage: python scripts/bench_sweep_refresh.py"""
import statistics, tempfile, time
from pathlib import Path
from sombench.app import sweep as sw
from sombench.render import sweep as view
t0 = time.perf_counter()
plan = sw.prepare(sw.SweepRequest(algos=["all"], envs=["paper"], seeds=5, device="cpu"))
specs = plan.specs
print(f"{len(specs)} runs; prepare (expand) took {time.perf_counter() - t0:.3f} s")
with tempfile.TemporaryDirectory() as d:
    times = []
    for _ in range(5):
        t = time.perf_counter(); view.render(sw.run_rows(specs, Path(d), {}, set()), "t"); times.append(time.perf_counter() - t)
    print("refresh times (s):", " ".join(f"{x:.4f}" for x in times), "median", f"{statistics.median(times):.4f}")
s = specs[123]
ts = []
for _ in range(200):
    t = time.perf_counter(); s.key; ts.append(time.perf_counter() - t)
print(f"spec.key median of 200 (cached): {statistics.median(ts) * 1e3:.4f} ms")
