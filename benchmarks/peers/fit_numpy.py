"""Peer for the bridge-fit benchmark. `make-data` writes x [N, 256] and y = x A + c + noise
[N, 1024] (float32) to an HDF5 file; `fit` loads both into memory and solves the same
least-squares problem with numpy.linalg.lstsq (bias as a column of ones), printing time
(load + solve) and peak memory as JSON."""
import argparse
import json
import resource
import time

import h5py
import numpy as np


def make_data(path, n, d_in, d_out):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((d_in, d_out)).astype(np.float32) / np.sqrt(d_in)
    c = rng.standard_normal(d_out).astype(np.float32)
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (n, d_in), dtype="f4")
        y = f.create_dataset("y", (n, d_out), dtype="f4")
        for s in range(0, n, 10000):
            e = min(n, s + 10000)
            xb = rng.standard_normal((e - s, d_in)).astype(np.float32)
            x[s:e] = xb
            y[s:e] = xb @ a + c + 0.1 * rng.standard_normal((e - s, d_out)).astype(np.float32)


def fit(path, threads):
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        x, y = f["x"][:], f["y"][:]
    x1 = np.hstack([x, np.ones((x.shape[0], 1), np.float32)])
    sol, *_ = np.linalg.lstsq(x1, y, rcond=None)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"what": "fit", "engine": "numpy-lstsq", "threads": threads, "seconds": seconds,
                      "peak_rss_mb": rss, "w00": float(sol[0, 0])}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["make-data", "fit"])
    ap.add_argument("path")
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.command == "make-data":
        make_data(a.path, a.tokens, 256, 1024)
    else:
        fit(a.path, a.threads)
