#!/usr/bin/env bash
# Benchmarks beside their PyTorch peers, same model weights, same thread counts, in one run.
# Prints a table of tokens/s and the ratio to the faster of the two PyTorch runs (plain, and
# with glibc malloc tuned, which helps PyTorch a lot here). Needs `make bench` (builds, and
# installs PyTorch in .venv-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release
PY=.venv-bench/bin/python
WORK=$(mktemp -d /tmp/sparsebridge-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# THREADS picks the thread counts (default both); RESULTS keeps the JSON lines (appended).
THREADS=${THREADS:-"1 2"}
MALLOC=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_TOP_PAD_=1073741824)
# NumPy's bundled OpenBLAS has the same kernel-detection problem: give it the kernel
# sparsebridge itself would choose, so that the peer runs at its best.
PEER_CORE=${OPENBLAS_CORETYPE:-$(if grep -qw avx512bw /proc/cpuinfo; then echo SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then echo Haswell; else echo Prescott; fi)}

echo "# $($B/sparsebridge --version | tail -1)"
echo "# PyTorch $($PY -c 'import torch; print(torch.__version__)'), $(nproc) cores"
$PY - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
json.dump({"n_layer": 4, "d_model": 256, "n_head": 8, "d_mlp": 1024, "n_ctx": 256, "vocab": 128}, open(f"{w}/D.json", "w"))
json.dump({"n_layer": 4, "d_model": 1024, "n_head": 16, "d_mlp": 4096, "n_ctx": 256, "vocab": 128}, open(f"{w}/S.json", "w"))
PY
results=${RESULTS:-"$WORK/results.jsonl"}
for cfg in D S; do
    $B/sparsebridge init --config "$WORK/$cfg.json" --seed 1 --out "$WORK/$cfg.h5" >/dev/null
    $B/sparsebridge export --model "$WORK/$cfg.h5" --out "$WORK/$cfg.safetensors" >/dev/null
    iters=$([ $cfg = D ] && echo 8 || echo 3)
    for t in $THREADS; do
        $B/sparsebridge-bench-forward "$WORK/$cfg.h5" --threads $t --iters $iters --capture "$WORK" \
            | sed "s/^{/{\"config\": \"$cfg\", /" >> "$results"
        $PY benchmarks/peers/forward_torch.py "$WORK/$cfg.safetensors" --threads $t --iters $iters \
            | sed "s/^{/{\"config\": \"$cfg\", /" >> "$results"
        env "${MALLOC[@]}" $PY benchmarks/peers/forward_torch.py "$WORK/$cfg.safetensors" --threads $t --iters $iters \
            --label pytorch-malloc | sed "s/^{/{\"config\": \"$cfg\", /" >> "$results"
    done
done
# Weight-sparse inference: config S made weight-sparse at 1/4, 1/16, 1/64 (and the shipped
# sparse model), dense path (BLAS) against sparse path (sparse kernel), beside PyTorch running
# the same zero-filled weights densely (as the paper's code does). Then DePass, K = 16.
for frac in 0.25 0.0625 0.015625; do
    for t in $THREADS; do
        $B/sparsebridge-bench-sparse forward "$WORK/S.h5" --fraction $frac --save "$WORK/S-sparse.h5" --threads $t --iters 3 \
            | sed 's/^{/{"config": "S", /' >> "$results"
        $B/sparsebridge export --model "$WORK/S-sparse.h5" --out "$WORK/S-sparse.safetensors" >/dev/null
        label=$(python3 -c "print(f'1/{round(1 / $frac)}')")
        for engine in pytorch pytorch-malloc; do
            env $([ $engine = pytorch-malloc ] && echo "${MALLOC[@]}") $PY benchmarks/peers/forward_torch.py \
                "$WORK/S-sparse.safetensors" --threads $t --iters 3 --label $engine \
                | sed "s|^{|{\"config\": \"S\", \"model\": \"$label\", |; s|\"what\": \"forward\"|\"what\": \"sparse_forward\"|" >> "$results"
        done
    done
done
for t in $THREADS; do
    $B/sparsebridge-bench-sparse forward models/sparse.h5 --threads $t --iters 3 | sed 's/^{/{"config": "shipped", /' >> "$results"
    $B/sparsebridge-bench-sparse depass models/sparse.h5 --components 16 --seq 256 --threads $t --iters 3 >> "$results"
done
# Training steps on config D (AdamW, batch 32 × 256), and the sparse projection's share.
for t in $THREADS; do
    $B/sparsebridge-bench-train --threads $t --steps 5 | sed 's/^{/{"config": "D", /' >> "$results"
    $PY benchmarks/peers/train_torch.py --threads $t --steps 5 | sed 's/^{/{"config": "D", /' >> "$results"
    env "${MALLOC[@]}" $PY benchmarks/peers/train_torch.py --threads $t --steps 5 --label pytorch-malloc \
        | sed 's/^{/{"config": "D", /' >> "$results"
done
# Bridge fit: a 256 → 1024 map on 100k tokens, beside NumPy lstsq on the same data.
$PY benchmarks/peers/fit_numpy.py make-data "$WORK/fit.h5" --tokens 100000
for t in $THREADS; do
    $B/sparsebridge-bench-fit "$WORK/fit.h5" --threads $t >> "$results"
    OPENBLAS_CORETYPE=$PEER_CORE OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t $PY benchmarks/peers/fit_numpy.py fit "$WORK/fit.h5" --threads $t >> "$results"
done
$PY benchmarks/report.py "$results"
