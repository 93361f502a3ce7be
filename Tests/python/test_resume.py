"""A capture killed with SIGKILL part-way, then resumed, equals an uninterrupted capture."""
import json
import signal
import subprocess
import time

import h5py
import numpy as np

from conftest import BIN, ascii_corpus
from test_parity import make_model

CFG = dict(n_layer=2, d_model=64, n_head=4, d_mlp=128, n_ctx=64)


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[:]) if isinstance(o, h5py.Dataset) else None)
        attrs = {k: f.attrs[k] for k in f.attrs}
    return attrs, out


def test_killed_capture_resumes_to_the_same_file(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", CFG)
    corpus = tmp_path / "c.txt"
    tokens = 64 * 1200
    ascii_corpus(corpus, tokens + 1000, seed=5)
    args = ["capture", "--model", model, "--sites", "resid,blocks.1.mlp.hook_post", "--corpus", corpus,
            "--tokens", tokens, "--batch", 4, "--threads", 1]
    reference = tmp_path / "ref.h5"
    cli(*args, "--out", reference)

    out = tmp_path / "a.h5"
    partial = tmp_path / ".a.h5.partial"
    proc = subprocess.Popen([BIN, *map(str, args), "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Killed once about 40% of the rows are on disk (by the partial file's size, not by a time
    # that a busy machine stretches).
    end = time.time() + 60
    while time.time() < end and not (partial.exists() and partial.stat().st_size > 0.4 * reference.stat().st_size):
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "killed at 40% of the rows, the final file must not exist yet"
    assert partial.exists()

    r = cli(*args, "--out", out, "--resume")
    assert "resumed after" in r.out
    assert not partial.exists()
    attrs_a, data_a = datasets(reference)
    attrs_b, data_b = datasets(out)
    attrs_a.pop("model"), attrs_b.pop("model")
    assert attrs_a == attrs_b
    assert data_a.keys() == data_b.keys()
    for k in data_a:
        assert np.array_equal(data_a[k], data_b[k]), k


def test_a_partial_file_with_no_complete_batch_starts_afresh(tmp_path, cli):
    # A run killed before its first batch reached the disk leaves a partial file with
    # rows_complete 0, or one HDF5 cannot open (killed while creating it). Continuing it kept
    # its layout, and the result differed from an uninterrupted run in its bytes (found by
    # scripts/kill_trials.py); such a file is replaced, and --resume gives the same bytes.
    _, model = make_model(tmp_path, cli, "m", CFG)
    args = ["capture", "--model", model, "--sites", "resid", "--corpus", "synthetic", "--tokens", 64 * 40,
            "--batch", 4, "--threads", 1]
    reference = tmp_path / "ref.h5"
    cli(*args, "--out", reference)
    out, partial = tmp_path / "a.h5", tmp_path / ".a.h5.partial"
    with h5py.File(reference, "r") as f:
        header = {k: f.attrs[k] for k in f.attrs}
    for made in ("header only", "truncated"):
        if made == "header only":
            with h5py.File(partial, "w") as f:
                for k, v in header.items():
                    f.attrs[k] = v
                f.attrs["rows_complete"] = 0
                f.create_dataset("tokens", shape=(8, 64), maxshape=(None, 64), dtype="i4")
        else:
            partial.write_bytes(reference.read_bytes()[:300])
        out.unlink(missing_ok=True)
        r = cli(*args, "--out", out, "--resume")
        assert "nothing to resume" in r.err, (made, r.err)
        assert not partial.exists()
        assert out.read_bytes() == reference.read_bytes(), made
