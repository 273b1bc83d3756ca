#!/usr/bin/env bash
# Usage: scripts/identical_outputs.sh SOMBENCH_BIN OUTDIR
# Five short Pendulum-v1 runs (sac, som, mfp, dacer, ppo) into OUTDIR/results, then OUTDIR/hashes.txt:
# sha256 of every eval.csv / train.csv with the wall_s column dropped (values exactly as written).
# Run twice into two OUTDIRs and `diff` the hashes.txt files: they must be identical (determinism);
# run with a changed sombench and diff against the hashes of a reference commit: a refactor that must not change
# behaviour leaves them equal. docs/data/identical-outputs-7db9141.txt holds commit 7db9141's (after issue 24's
# evaluation streams, which changed the numbers on purpose; the --updates-per-step, act_batch and tracking commits
# left them equal); docs/data/identical-outputs-8d6ae62.txt the older ones, before the layering refactor of issue 23.
set -euo pipefail
BIN=${1:?usage: identical_outputs.sh SOMBENCH_BIN OUTDIR}
OUT=${2:?usage: identical_outputs.sh SOMBENCH_BIN OUTDIR}
mkdir -p "$OUT"
RES="$OUT/results"
PY="$(dirname "$BIN")/python"

COMMON=(--env Pendulum-v1 --steps 1000 --eval-every 200 --eval-episodes 2 --log-every 200
        --threads 1 --device cpu --seeds 1 --results "$RES")
OFF=(--set warmup_steps=200 --set batch_size=64 --set hidden_sizes=32,32 --set buffer_size=10000)

declare -A EXTRA
EXTRA[sac]="${OFF[*]}"
EXTRA[som]="${OFF[*]} --set num_particles=8 --set num_score_samples=16 --set alpha_delay=50"
EXTRA[mfp]="${OFF[*]} --set num_particles=8"
EXTRA[dacer]="${OFF[*]} --set diffusion_steps=5 --set entropy_samples=20 --set alpha_delay=100"
EXTRA[ppo]="--set batch_size=200 --set hidden_sizes=32,32 --set policy_iters=10 --set value_iters=10"

: > "$OUT/times.txt"
for algo in sac som mfp dacer ppo; do
    # shellcheck disable=SC2086
    start=$(date +%s.%N)
    nice -n 10 "$BIN" run --algo "$algo" "${COMMON[@]}" ${EXTRA[$algo]} > "$OUT/run_$algo.log" 2>&1
    end=$(date +%s.%N)
    printf '%s %.1f s\n' "$algo" "$(echo "$end - $start" | bc)" | tee -a "$OUT/times.txt"
done

# hash every csv with wall_s dropped (csv module only: the bytes hashed are the values as written)
"$PY" - "$RES" > "$OUT/hashes.txt" 2> "$OUT/paths.txt" <<'PYEOF'
import csv, hashlib, io, pathlib, sys
root = pathlib.Path(sys.argv[1])
for path in sorted(list(root.rglob("eval.csv")) + list(root.rglob("train.csv"))):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    keep = [i for i, name in enumerate(header) if name != "wall_s"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in rows:
        w.writerow([row[i] for i in keep if i < len(row)])
    digest = hashlib.sha256(buf.getvalue().encode()).hexdigest()
    rel = path.relative_to(root)          # <env>/<algo>@<tag>/seed_<n>/<file>
    algo = rel.parts[1].split("@")[0]
    # keyed by algo (not the tag, which hashes the config): diff this file across versions
    print(f"{digest}  {rel.parts[0]}/{algo}/{rel.parts[2]}/{rel.name}  rows={len(rows) - 1}")
    print(f"{rel}", file=sys.stderr)
PYEOF
cat "$OUT/hashes.txt"
echo "(full run paths incl. tags in $OUT/paths.txt)"
