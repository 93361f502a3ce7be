#!/usr/bin/env python3
"""Determinism (issue 9, item 5): the same commands with the same seeds and thread count give
byte-identical model, activation and bridge files.

For each thread count, the chain init → train → capture (both models) → fit (on the fly and
from the activation files) runs twice in the same folder (outputs record input paths, so the
folder is kept); every output of the second run is compared byte for byte with the first.
Outputs of different thread counts are compared too, for information only: sums split across
threads in another order, so their last bits may differ (docs/reliability.md).

    scripts/determinism.py [--bin .build/release/sparsebridge] [--threads 1,2] [--size full|small]
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = {"full": dict(steps=120, tokens=65536), "small": dict(steps=30, tokens=16384)}
DENSE = {"n_layer": 2, "d_model": 32, "n_head": 2, "d_mlp": 128, "n_ctx": 64, "vocab": 128, "norm": "layer", "activation": "gelu"}
SPARSE = dict(DENSE, d_model=48, n_head=3, d_mlp=192)


def chain(bin_path, folder, threads, size):
    """Runs every command once into `folder`; returns the output files' names."""
    s = SIZES[size]
    (folder / "sparse.json").write_text(json.dumps(SPARSE))
    (folder / "recipe.json").write_text(json.dumps({
        "model": DENSE, "seed": 5, "steps": s["steps"], "batch": 8, "seq_len": 64, "lr": 0.003, "warmup_steps": 5,
        "sparsity": {"target_fraction": 0.25}, "eval_every": s["steps"], "eval_pairs": 20,
        "checkpoint_every": s["steps"] // 3, "heldout_sequences": 8}))
    t = ["--threads", threads]
    steps = [
        ["init", "--config", "sparse.json", "--seed", 9, "--out", "init.h5"],
        ["train", "--recipe", "recipe.json", "--out", "trained.h5", *t],
        ["capture", "--model", "trained.h5", "--sites", "resid", "--corpus", "synthetic", "--tokens", s["tokens"],
         "--batch", 8, "--out", "dense_acts.h5", *t],
        ["capture", "--model", "init.h5", "--sites", "resid", "--corpus", "synthetic", "--tokens", s["tokens"],
         "--batch", 8, "--out", "sparse_acts.h5", *t],
        ["fit", "--dense", "trained.h5", "--sparse", "init.h5", "--tokens", s["tokens"], "--out", "bridge.h5", *t],
        ["fit", "--dense", "trained.h5", "--sparse", "init.h5", "--dense-acts", "dense_acts.h5",
         "--sparse-acts", "sparse_acts.h5", "--out", "bridge_from_acts.h5", *t],
    ]
    for args in steps:
        p = subprocess.run([bin_path, *map(str, args)], cwd=folder, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"sparsebridge {' '.join(map(str, args))} failed: {p.stderr.strip()}")
    return ["init.h5", "trained.h5", "dense_acts.h5", "sparse_acts.h5", "bridge.h5", "bridge_from_acts.h5"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("SPARSEBRIDGE_BIN", str(ROOT / ".build/release/sparsebridge")))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    a = ap.parse_args()
    counts = [int(x) for x in a.threads.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="determinism-") as tmp:
        work = pathlib.Path(tmp)
        for threads in counts:
            for attempt in ("a", "b"):
                run = work / "run"
                run.mkdir()
                names = chain(a.bin, run, threads, a.size)
                results[threads, attempt] = {n: digest(run / n) for n in names}
                shutil.move(str(run), str(work / f"{threads}{attempt}"))
    failures = 0
    print(f"{'file':22} " + "  ".join(f"{t} thr: a == b" for t in counts) + ("   1st vs 2nd count" if len(counts) > 1 else ""))
    for n in names:
        cells = []
        for t in counts:
            same = results[t, "a"][n] == results[t, "b"][n]
            failures += not same
            cells.append(f"{'identical' if same else 'DIFFERENT':>14}")
        cross = ""
        if len(counts) > 1:
            cross = "   " + ("identical" if results[counts[0], "a"][n] == results[counts[1], "a"][n] else "differs")
        print(f"{n:22} " + "  ".join(cells) + cross)
    total = len(names) * len(counts)
    print(f"{total - failures} of {total} files bit-identical across reruns")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
