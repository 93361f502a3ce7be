"""Bridge fitting and splicing: a planted linear map against NumPy least squares on the
same HDF5 activations, streamed (on the fly) equal to fitted-from-files, an identity bridge
that splices perfectly, and the bad inputs."""
import hashlib
import json
import math

import h5py
import numpy as np
import pytest

from test_parity import BASE, make_model

DENSE = dict(BASE, n_layer=2, d_model=16, n_head=2, d_mlp=32, n_ctx=32)
SPARSE = dict(BASE, n_layer=2, d_model=24, n_head=3, d_mlp=48, n_ctx=32)
SITES = ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre",
         "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post"]


def is_heldout(i, f):
    return math.floor((i + 1) * f) > math.floor(i * f)


def write_acts(path, model_path, cfg, tokens, sites):
    """An activation file in the documented layout, written by h5py."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "sparsebridge.activations"
        f.attrs["format_version"] = 1
        f.attrs["model"] = str(model_path)
        f.attrs["model_sha256"] = hashlib.sha256(model_path.read_bytes()).hexdigest()
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["tokenizer"] = json.dumps({"kind": "char", "vocab": 128})
        f.attrs["corpus"] = "planted"
        f.attrs["n_ctx"] = tokens.shape[1]
        f.attrs["sites"] = json.dumps(list(sites))
        f.attrs["sequences_requested"] = tokens.shape[0]
        f.attrs["rows_complete"] = tokens.size
        f["tokens"] = tokens.astype(np.int32)
        for name, values in sites.items():
            f[f"sites/{name}"] = values.astype(np.float32)


def read_bridge(path):
    out = {}
    with h5py.File(path, "r") as f:
        for site in json.loads(f.attrs["sites"]):
            g = f["sites"][site]
            out[site] = {m: (g[m]["W"][:], g[m]["b"][:], dict(g[m].attrs)) for m in ("encoder", "decoder")}
    return out


@pytest.fixture
def models(tmp_path, cli):
    _, dense = make_model(tmp_path, cli, "dense", DENSE, seed=1)
    _, sparse = make_model(tmp_path, cli, "sparse", SPARSE, seed=2)
    return dense, sparse


def test_planted_map_matches_numpy_least_squares(tmp_path, cli, models):
    dense, sparse = models
    rng = np.random.default_rng(0)
    n_seq, T = 40, 32
    tokens = rng.integers(32, 127, size=(n_seq, T))
    A = rng.standard_normal((16, 24))
    c = rng.standard_normal(24)
    X = rng.standard_normal((n_seq * T, 16)) * rng.uniform(0.5, 2, 16) + rng.standard_normal(16)
    noise = 0.05
    Y = X @ A + c + noise * rng.standard_normal((n_seq * T, 24))
    site = "blocks.1.hook_resid_mid"
    write_acts(tmp_path / "d.h5", dense, dict(__import__("reference").full_config(DENSE)), tokens, {site: X})
    write_acts(tmp_path / "s.h5", sparse, dict(__import__("reference").full_config(SPARSE)), tokens, {site: Y})
    out = tmp_path / "b.h5"
    r = cli("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
            "--sites", site, "--ridge", 0, "--heldout", 0.25, "--out", out, "--json")
    got = read_bridge(out)[site]
    # NumPy on the same rows: the training split, the same float32 values.
    Xf, Yf = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
    train = np.repeat([not is_heldout(i, 0.25) for i in range(n_seq)], T)
    held = ~train
    for name, x, y in (("encoder", Xf, Yf), ("decoder", Yf, Xf)):
        sol, *_ = np.linalg.lstsq(np.hstack([x[train], np.ones((train.sum(), 1))]), y[train], rcond=None)
        W, b = sol[:-1], sol[-1]
        gW, gb, attrs = got[name]
        assert np.abs(gW - W).max() < 1e-4 * max(1, np.abs(W).max()), name
        assert np.abs(gb - b).max() < 1e-4 * max(1, np.abs(b).max()), name
        pred = x[held] @ W + b
        nmse = ((y[held] - pred) ** 2).sum() / ((y[held] - y[held].mean(0)) ** 2).sum()
        assert abs(attrs["nmse"] - nmse) < 1e-6 + 1e-4 * nmse, name
        assert abs(attrs["nmse_uncentered"] - ((y[held] - pred) ** 2).sum() / (y[held] ** 2).sum()) < 1e-6
        assert attrs["train_tokens"] == train.sum() and attrs["heldout_tokens"] == held.sum()
    # The encoder recovers the planted map to the noise level.
    gW, gb, attrs = got["encoder"]
    assert np.abs(gW - A).max() < 0.02 and np.abs(gb - c).max() < 0.05
    assert attrs["nmse"] < 2 * noise ** 2 * 24 / ((X @ A) ** 2).sum(1).mean() + 1e-3


def test_streamed_fit_equals_fit_from_files(tmp_path, cli, models):
    dense, sparse = models
    args = ["--corpus", "synthetic", "--seed", 7, "--tokens", 32 * 24, "--seq-len", 32, "--sites", "resid", "--batch", 16]
    cli("capture", "--model", dense, *args, "--out", tmp_path / "d.h5")
    cli("capture", "--model", sparse, *args, "--out", tmp_path / "s.h5")
    cli("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
        "--out", tmp_path / "files.h5")
    cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 32 * 24, "--seq-len", 32, "--seed", 7,
        "--out", tmp_path / "stream.h5")
    a, b = read_bridge(tmp_path / "files.h5"), read_bridge(tmp_path / "stream.h5")
    assert a.keys() == b.keys() == set(SITES)
    for site in a:
        for m in ("encoder", "decoder"):
            assert np.array_equal(a[site][m][0], b[site][m][0]) and np.array_equal(a[site][m][1], b[site][m][1])
            assert a[site][m][2] == b[site][m][2]


def test_identity_bridge_splices_perfectly(tmp_path, cli, models):
    dense, _ = models
    out = tmp_path / "id.h5"
    cli("fit", "--dense", dense, "--sparse", dense, "--tokens", 32 * 30, "--seq-len", 32, "--out", out)
    for m in read_bridge(out).values():
        W, b, attrs = m["encoder"]
        assert np.abs(W - np.eye(16)).max() < 1e-3 and attrs["nmse"] < 1e-6
    r = cli("splice", "--bridge", out, "--site", "all", "--tokens", 32 * 8, "--seq-len", 32, "--json")
    for row in json.loads(r.out):
        assert abs(row["ce_recovered"] - 1) < 1e-3, row
        assert row["kl"] < 1e-5, row


def test_nan_in_activations_names_site_and_row(tmp_path, cli, models):
    dense, sparse = models
    args = ["--corpus", "synthetic", "--seed", 7, "--tokens", 32 * 4, "--seq-len", 32, "--sites", "resid"]
    cli("capture", "--model", dense, *args, "--out", tmp_path / "d.h5")
    cli("capture", "--model", sparse, *args, "--out", tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        f["sites/blocks.1.hook_resid_pre"][77, 3] = np.nan
    out = tmp_path / "b.h5"
    r = cli("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
            "--out", out, check=False)
    assert r.code != 0 and "blocks.1.hook_resid_pre" in r.err and "row 77" in r.err and "s.h5" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()


def test_activation_files_from_different_tokens_are_refused(tmp_path, cli, models):
    dense, sparse = models
    base = ["--corpus", "synthetic", "--tokens", 32 * 4, "--seq-len", 32, "--sites", "resid"]
    cli("capture", "--model", dense, *base, "--seed", 1, "--out", tmp_path / "d.h5")
    cli("capture", "--model", sparse, *base, "--seed", 2, "--out", tmp_path / "s.h5")
    r = cli("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
            "--out", tmp_path / "b.h5", check=False)
    assert r.code != 0 and "different tokens" in r.err


def test_bridge_with_wrong_widths_and_missing_site(tmp_path, cli, models):
    dense, sparse = models
    out = tmp_path / "b.h5"
    cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 32 * 20, "--seq-len", 32, "--sites",
        "blocks.1.hook_resid_pre", "--out", out)
    r = cli("splice", "--bridge", out, "--site", "blocks.1.hook_resid_pre", "--dense", dense, "--sparse", dense, check=False)
    assert r.code != 0 and "d_model" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("splice", "--bridge", out, "--site", "blocks.0.hook_resid_mid", check=False)
    assert r.code != 0 and "holds no site blocks.0.hook_resid_mid" in r.err


def test_too_few_tokens_is_singular_and_suggests_ridge(tmp_path, cli, models):
    dense, sparse = models
    r = cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 8, "--seq-len", 8, "--ridge", 0, "--heldout", 0,
            "--out", tmp_path / "b.h5", check=False)
    assert r.code != 0 and "singular" in r.err and "--ridge" in r.err
    assert not (tmp_path / "b.h5").exists()


def test_activation_files_of_different_n_ctx_are_refused(tmp_path, cli, models):
    dense, sparse = models
    base = ["--corpus", "synthetic", "--seed", 1, "--tokens", 32 * 4, "--sites", "resid"]
    cli("capture", "--model", dense, *base, "--seq-len", 32, "--out", tmp_path / "d.h5")
    cli("capture", "--model", sparse, *base, "--seq-len", 16, "--out", tmp_path / "s.h5")
    r = cli("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
            "--out", tmp_path / "b.h5", check=False)
    assert r.code != 0 and "has n_ctx 32 but" in r.err and "has 16; they do not pair" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "b.h5").exists()


def test_json_output_of_file_writing_commands(tmp_path, cli, models):
    dense, _ = models
    r = cli("export", "--model", dense, "--out", tmp_path / "m.safetensors", "--json")
    assert json.loads(r.out)["layout"] == "sparsebridge"
    r = cli("convert", "--from", tmp_path / "m.safetensors", "--out", tmp_path / "m.h5", "--json")
    assert json.loads(r.out)["parameters"] > 0
