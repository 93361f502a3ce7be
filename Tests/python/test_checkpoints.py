"""Checkpoint round trips (HDF5 ↔ safetensors, both layouts) and a Hugging Face GPT-2 import
checked against a NumPy GPT-2 written from the Hugging Face layout."""
import json
import math

import h5py
import numpy as np
import pytest

from conftest import ascii_corpus
from reference import full_config, random_weights, read_safetensors, write_safetensors
from test_parity import make_model

GPT2_CFG = dict(n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=16, activation="gelu_tanh")


def h5_contents(path):
    out = {}
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        f.visititems(lambda n, o: out.__setitem__(n, o[:]) if isinstance(o, h5py.Dataset) else None)
    return attrs, out


@pytest.mark.parametrize("layout,cfg", [
    ("sparsebridge", dict(GPT2_CFG, norm="rms", attention_sink=True, bigram_table=True, afrac=0.25, bias=False)),
    ("hf-gpt2", GPT2_CFG),
])
def test_h5_safetensors_h5_is_bit_identical(tmp_path, cli, layout, cfg):
    _, model = make_model(tmp_path, cli, "m", cfg)
    st, back = tmp_path / "m.safetensors", tmp_path / "back.h5"
    cli("export", "--model", model, "--layout", layout, "--out", st)
    cli("convert", "--from", st, "--out", back)
    attrs_a, data_a = h5_contents(model)
    attrs_b, data_b = h5_contents(back)
    assert attrs_a == attrs_b
    assert data_a.keys() == data_b.keys()
    for k in data_a:
        assert data_a[k].tobytes() == data_b[k].tobytes(), k
    # And safetensors → HDF5 → safetensors gives the same tensor bytes.
    st2 = tmp_path / "again.safetensors"
    cli("export", "--model", back, "--layout", layout, "--out", st2)
    t1, m1 = read_safetensors(st)
    t2, m2 = read_safetensors(st2)
    assert m1 == m2 and t1.keys() == t2.keys()
    for k in t1:
        assert t1[k].tobytes() == t2[k].tobytes(), k


def gpt2_numpy_logits(sd, n_head, tokens):
    """GPT-2 from Hugging Face tensor names (Conv1D weights are [in, out])."""
    g = lambda k: sd["transformer." + k].astype(np.float64)
    T = len(tokens)
    x = g("wte.weight")[tokens] + g("wpe.weight")[:T]
    d = x.shape[-1]
    dh = d // n_head

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g(p + ".weight") + g(p + ".bias")

    n_layer = len({k.split(".")[2] for k in sd if k.startswith("transformer.h.")})
    mask = np.tril(np.ones((T, T), bool))
    for l in range(n_layer):
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")
        q, k, v = np.split(qkv, 3, axis=-1)
        heads = []
        for h in range(n_head):
            s = slice(h * dh, (h + 1) * dh)
            sc = np.where(mask, q[:, s] @ k[:, s].T / math.sqrt(dh), -np.inf)
            pr = np.exp(sc - sc.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            heads.append(pr @ v[:, s])
        x = x + np.concatenate(heads, -1) @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        hmid = ln(x, p + "ln_2") @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias")
        hmid = 0.5 * hmid * (1 + np.tanh(math.sqrt(2 / math.pi) * (hmid + 0.044715 * hmid ** 3)))
        x = x + hmid @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    return ln(x, "ln_f") @ g("wte.weight").T  # tied lm_head


def test_hugging_face_gpt2_import_matches_numpy(tmp_path, cli):
    rng = np.random.default_rng(7)
    d, f, L, V, P, H = 32, 128, 2, 128, 16, 4
    sd = {"transformer.wte.weight": rng.standard_normal((V, d)), "transformer.wpe.weight": rng.standard_normal((P, d)),
          "transformer.ln_f.weight": 1 + 0.1 * rng.standard_normal(d), "transformer.ln_f.bias": 0.1 * rng.standard_normal(d)}
    for l in range(L):
        p = f"transformer.h.{l}."
        sd.update({p + "ln_1.weight": 1 + 0.1 * rng.standard_normal(d), p + "ln_1.bias": 0.1 * rng.standard_normal(d),
                   p + "attn.c_attn.weight": rng.standard_normal((d, 3 * d)) / math.sqrt(d),
                   p + "attn.c_attn.bias": 0.1 * rng.standard_normal(3 * d),
                   p + "attn.c_proj.weight": rng.standard_normal((d, d)) / math.sqrt(d),
                   p + "attn.c_proj.bias": 0.1 * rng.standard_normal(d),
                   p + "ln_2.weight": 1 + 0.1 * rng.standard_normal(d), p + "ln_2.bias": 0.1 * rng.standard_normal(d),
                   p + "mlp.c_fc.weight": rng.standard_normal((d, f)) / math.sqrt(d),
                   p + "mlp.c_fc.bias": 0.1 * rng.standard_normal(f),
                   p + "mlp.c_proj.weight": rng.standard_normal((f, d)) / math.sqrt(f),
                   p + "mlp.c_proj.bias": 0.1 * rng.standard_normal(d)})
    sd = {k: v.astype(np.float32) for k, v in sd.items()}
    folder = tmp_path / "gpt2"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", sd)
    (folder / "config.json").write_text(json.dumps({"n_head": H, "activation_function": "gelu_new",
                                                     "layer_norm_epsilon": 1e-5}))
    model = tmp_path / "gpt2.h5"
    cli("convert", "--from", folder / "model.safetensors", "--tokenizer", "char", "--out", model)
    corpus = tmp_path / "c.txt"
    ascii_corpus(corpus, 100, seed=4)
    acts = tmp_path / "a.h5"
    cli("capture", "--model", model, "--sites", "logits", "--corpus", corpus, "--tokens", 16, "--out", acts)
    with h5py.File(acts, "r") as fa:
        tokens = fa["tokens"][0].astype(np.int64)
        got = fa["sites/logits"][:]
    want = gpt2_numpy_logits(sd, H, tokens)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_hf_gpt2_without_config_json_is_a_clear_error(tmp_path, cli):
    rng = np.random.default_rng(0)
    write_safetensors(tmp_path / "m.safetensors", {
        "wte.weight": rng.standard_normal((16, 8)), "wpe.weight": rng.standard_normal((4, 8)),
        "h.0.attn.c_attn.weight": rng.standard_normal((8, 24)), "h.0.mlp.c_fc.weight": rng.standard_normal((8, 32))})
    r = cli("convert", "--from", tmp_path / "m.safetensors", "--out", tmp_path / "x.h5", check=False)
    assert r.code != 0 and "config.json" in r.err and "--hf-config" in r.err
    assert not (tmp_path / "x.h5").exists()


def test_hf_gpt2_export_refuses_incompatible_models(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", dict(GPT2_CFG, attention_sink=True))
    r = cli("export", "--model", model, "--layout", "hf-gpt2", "--out", tmp_path / "x.safetensors", check=False)
    assert r.code != 0 and "attention sink" in r.err
    assert not (tmp_path / "x.safetensors").exists()
