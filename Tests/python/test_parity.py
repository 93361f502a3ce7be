"""The Swift forward pass against the NumPy reference, hook by hook, and the documented
file layouts as h5py sees them."""
import json

import h5py
import numpy as np
import pytest

from conftest import ascii_corpus
from reference import as_rows, forward, full_config, parameter_shapes, random_weights, write_safetensors

BASE = dict(n_layer=2, d_model=32, n_head=4, d_mlp=48, n_ctx=16)
CONFIGS = {
    "layernorm-plain": dict(BASE),
    "rms-sink-bigram-nopos-nobias-relu": dict(BASE, norm="rms", attention_sink=True, bigram_table=True,
                                              positional="none", bias=False, activation="relu", d_head=6),
    "layernorm-sink-bigram-abstopk-tied": dict(BASE, attention_sink=True, bigram_table=True, afrac=0.25,
                                               activation="gelu_tanh", tied_unembed=True),
    "rms-abstopk-resid-locations": dict(BASE, norm="rms", afrac=0.5, norm_eps=1.1920929e-07,
                                        afrac_locations=["attn_in", "attn_v", "mlp_neuron", "resid_post_attn"]),
    # Longer than one 64-row causal block: the blocked attention products must match too.
    "long-context-sink": dict(BASE, n_ctx=150, attention_sink=True),
}


def make_model(tmp_path, cli, name, cfg, seed=0):
    weights = random_weights(cfg, seed)
    st = tmp_path / f"{name}.safetensors"
    write_safetensors(st, weights, {"format": "sparsebridge.model", "config": json.dumps(full_config(cfg)),
                                    "tokenizer": json.dumps({"kind": "char", "vocab": 128})})
    model = tmp_path / f"{name}.h5"
    cli("convert", "--from", st, "--out", model)
    return weights, model


def relative_error(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_hook_and_logits_match_numpy(tmp_path, cli, name):
    cfg = CONFIGS[name]
    weights, model = make_model(tmp_path, cli, name, cfg)
    corpus = tmp_path / "corpus.txt"
    ascii_corpus(corpus, 2000, seed=1)
    acts = tmp_path / "acts.h5"
    # 4 sequences in batches of 3: the last batch is partial.
    T = cfg["n_ctx"]
    cli("capture", "--model", model, "--sites", "all", "--corpus", corpus, "--tokens", 4 * T,
        "--seq-len", T, "--batch", 3, "--out", acts)
    with h5py.File(acts, "r") as f:
        tokens = f["tokens"][:]
        assert tokens.shape == (4, T)
        assert bytes(tokens.reshape(-1).astype("uint8")) == corpus.read_bytes()[:4 * T]
        ref = forward(cfg, weights, tokens.astype(np.int64))
        sites = json.loads(f.attrs["sites"])
        assert set(sites) == set(ref), set(sites) ^ set(ref)
        for site in sites:
            got = f["sites"][site][:]
            want = as_rows(site, ref[site], cfg)
            assert got.shape == want.shape, site
            err = relative_error(got, want)
            assert err < 1e-4, f"{site}: relative error {err:.2e}"


def test_model_file_layout_in_h5py(tmp_path, cli):
    cfg = CONFIGS["layernorm-sink-bigram-abstopk-tied"]
    weights, model = make_model(tmp_path, cli, "m", cfg)
    with h5py.File(model, "r") as f:
        assert f.attrs["format"] == "sparsebridge.model"
        assert int(f.attrs["format_version"]) == 1
        stored = json.loads(f.attrs["config"])
        assert stored == full_config(cfg)
        assert json.loads(f.attrs["tokenizer"]) == {"kind": "char", "vocab": 128}
        json.loads(f.attrs["provenance"])
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        expected = {k.replace(".", "/"): v for k, v in parameter_shapes(cfg).items()}
        assert set(names) == set(expected)
        for n, shape in expected.items():
            assert f[n].dtype == np.float32 and f[n].shape == shape
            assert np.array_equal(f[n][:], weights[n.replace("/", ".")])


def test_activation_file_layout_in_h5py(tmp_path, cli):
    cfg = CONFIGS["layernorm-plain"]
    _, model = make_model(tmp_path, cli, "m", cfg)
    corpus = tmp_path / "c.txt"
    ascii_corpus(corpus, 500, seed=2)
    acts = tmp_path / "a.h5"
    cli("capture", "--model", model, "--sites", "resid,blocks.0.attn.hook_q", "--corpus", corpus,
        "--tokens", 40, "--out", acts, "--gzip")
    import hashlib
    with h5py.File(acts, "r") as f:
        assert f.attrs["format"] == "sparsebridge.activations"
        assert f.attrs["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
        assert int(f.attrs["n_ctx"]) == 16
        assert int(f.attrs["rows_complete"]) == 48  # 40 tokens round up to 3 sequences of 16
        assert f.attrs["corpus"] == f"text:{corpus}"
        assert json.loads(f.attrs["model_config"]) == full_config(cfg)
        sites = json.loads(f.attrs["sites"])
        assert sites == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre",
                         "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post", "blocks.0.attn.hook_q"]
        assert f["tokens"].shape == (3, 16) and f["tokens"].dtype == np.int32
        assert f["sites/blocks.0.hook_resid_pre"].shape == (48, 32)
        assert f["sites/blocks.0.attn.hook_q"].shape == (48, 32)
        assert f["sites/blocks.0.hook_resid_pre"].maxshape == (None, 32)
        assert f["sites/blocks.0.hook_resid_pre"].compression == "gzip"
        chunk = f["sites/blocks.0.hook_resid_pre"].chunks
        assert chunk[0] * chunk[1] * 4 <= 1 << 20


def test_aliases_capture_the_same_site(tmp_path, cli):
    cfg = CONFIGS["layernorm-plain"]
    _, model = make_model(tmp_path, cli, "m", cfg)
    corpus = tmp_path / "c.txt"
    ascii_corpus(corpus, 200, seed=3)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    cli("capture", "--model", model, "--sites", "1.mlp.post_act,final_resid", "--corpus", corpus, "--tokens", 16, "--out", a)
    cli("capture", "--model", model, "--sites", "blocks.1.mlp.hook_post,blocks.1.hook_resid_post", "--corpus", corpus,
        "--tokens", 16, "--out", b)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert json.loads(fa.attrs["sites"]) == json.loads(fb.attrs["sites"])
        for s in json.loads(fa.attrs["sites"]):
            assert np.array_equal(fa["sites"][s][:], fb["sites"][s][:])
