#!/usr/bin/env bash
# Capture and fit as jobs of 1 and 2 processes (mpirun) on the shipped models: tokens/s of
# the work itself (from each command's --json, model loading excluded) and of the whole
# job (process start, MPI start-up and model loading included), plus the allreduce of the
# fit, and tokens per CPU-second of the whole job (what the work costs whatever the
# machine's other load). Needs `make build-mpi` (the MPI build) and the default build. TOKENS sets the size
# (default 65536, sequences of 256), REPEAT the runs per row (default 3, best kept); every
# process runs one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
ONE=.build/release/sparsebridge
MPI=.build-mpi/release/sparsebridge
TOKENS=${TOKENS:-65536}
REPEAT=${REPEAT:-3}
WORK=$(mktemp -d /tmp/sparsebridge-scaling.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export SPARSEBRIDGE_THREADS=1

echo "# $($ONE --version | tail -1); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# dense models/dense.h5 (4 x 128) and sparse models/sparse.h5 (4 x 256), $TOKENS tokens, sequences of 256, 9 resid sites, best of $REPEAT"
printf '%-28s %9s %12s %12s %12s %12s %14s\n' task processes "work tok/s" "job tok/s" "tok/CPU-s" "allreduce s" "statistics MB"

# run LABEL N COMMAND…: REPEAT runs of one job (N processes; 0 = the default build without
# mpirun), each timed whole; prints the best work and job rates (the machine is shared).
run() {
    local label=$1 n=$2; shift 2
    local start end runs=()
    local TIMEFORMAT='%U %S'
    for _ in $(seq "$REPEAT"); do
        start=$(date +%s.%N)
        # bash's `time` gives the CPU seconds of the whole job (mpirun waits for its processes).
        { time if [ "$n" = 0 ]; then "$ONE" "$@" --json; else "${MPIRUN[@]}" -np "$n" "$MPI" "$@" --json; fi >"$WORK/out"; } 2>"$WORK/cpu"
        end=$(date +%s.%N)
        runs+=("$start $end $(tail -1 "$WORK/cpu") $(tail -1 "$WORK/out")")
    done
    python3 - "$label" "$n" "$TOKENS" "${runs[@]}" <<'PY'
import json, sys
label, n, tokens = sys.argv[1], max(1, int(sys.argv[2])), int(sys.argv[3])
runs = []
for arg in sys.argv[4:]:
    start, end, user, system, out = arg.split(" ", 4)
    runs.append((float(end) - float(start), float(user) + float(system), json.loads(out)))
work = min(r["seconds"] for _, _, r in runs)
job = min(wall for wall, _, _ in runs)
cpu = min(c for _, c, _ in runs)
sums = min((r["allreduce_seconds"] for _, _, r in runs if "allreduce_seconds" in r), default=None)
stats = runs[0][2].get("statistics_bytes")
print(f"{label:<28} {n:>9} {tokens / work:>12.0f} {tokens / job:>12.0f} {tokens / cpu:>12.0f} "
      f"{'-' if sums is None else f'{sums:.3f}':>12} {'-' if stats is None else f'{stats / 1e6:.1f}':>14}")
PY
}

CAPTURE=(--corpus synthetic --seed 7 --tokens "$TOKENS" --seq-len 256 --sites resid --batch 16)
FIT=(--dense models/dense.h5 --sparse models/sparse.h5 --seq-len 256 --batch 16)
# Process count 0 = the default build started directly (no mpirun).
suffix() { if [ "$1" = 0 ]; then echo " (no mpirun)"; fi; }
for n in 0 1 2; do
    run "capture dense$(suffix $n)" "$n" capture --model models/dense.h5 "${CAPTURE[@]}" --out "$WORK/d$n.h5"
done
for n in 0 1 2; do
    run "fit, capturing$(suffix $n)" "$n" fit "${FIT[@]}" --tokens "$TOKENS" --seed 7 --out "$WORK/b$n.h5"
done
# Fit from files: the 2-process captures (virtual files over shards), read by 1 and 2 processes.
"${MPIRUN[@]}" -np 2 "$MPI" capture --model models/sparse.h5 "${CAPTURE[@]}" --out "$WORK/s2.h5" >/dev/null
for n in 1 2; do
    run "fit, from activation files" "$n" fit "${FIT[@]}" --dense-acts "$WORK/d2.h5" --sparse-acts "$WORK/s2.h5" --out "$WORK/f$n.h5"
done
