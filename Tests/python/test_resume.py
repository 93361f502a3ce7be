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
