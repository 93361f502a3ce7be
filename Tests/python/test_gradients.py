"""The Swift backward pass against central finite differences of the Float64 NumPy
reference: every parameter tensor (sampled elements) and hook-site gradients, on tiny
models with every option switched on."""
import json

import h5py
import numpy as np
import pytest

from reference import forward
from test_parity import make_model

BASE = dict(n_layer=2, d_model=16, n_head=2, d_mlp=24, n_ctx=12)
CONFIGS = {
    "layernorm-sink-bigram-abstopk-gelu": dict(BASE, attention_sink=True, bigram_table=True, afrac=0.5, d_head=6),
    "rms-relu-tied-gelu_tanh-nobias-nopos": dict(BASE, norm="rms", activation="gelu_tanh", tied_unembed=True, bias=False,
                                                 positional="none", attention_sink=True),
    "rms-relu-resid-abstopk": dict(BASE, norm="rms", activation="relu", afrac=0.75,
                                   afrac_locations=["attn_q", "attn_k", "mlp_neuron", "resid_post_attn"]),
    "long-context-three-causal-blocks": dict(BASE, n_ctx=140, attention_sink=True),
}
TEXT = "x = 'ab' + [1, (2)]"[:13]
LONG_TEXT = ("def f(a, b):\n    return [a, 'b', (1, 2)]\n" * 4)[:141]
SITES = ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern", "blocks.0.mlp.hook_post", "blocks.1.attn.hook_v",
         "ln_final.hook_normalized"]


def loss(cfg, weights, tokens, perturb=None):
    logits = forward(cfg, weights, tokens[None, :-1], perturb)["logits"][0]
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -logp[np.arange(len(tokens) - 1), tokens[1:]].mean()


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_match_finite_differences(tmp_path, cli, name):
    cfg = CONFIGS[name]
    weights, model = make_model(tmp_path, cli, name, cfg, seed=3)
    out = tmp_path / "g.h5"
    text = LONG_TEXT if cfg["n_ctx"] > 64 else TEXT
    cli("grad", "--model", model, "--text", text, "--sites", ",".join(SITES), "--out", out)
    tokens = np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64)
    rng = np.random.default_rng(0)
    eps = 1e-5
    with h5py.File(out, "r") as f:
        assert abs(f.attrs["loss"] - loss(cfg, weights, tokens)) < 1e-5
        names = []
        f["params"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert len(names) == len(weights)
        for n in names:
            key = n.replace("/", ".")
            got = f["params"][n][:]
            scale = np.abs(got).max() + 1e-8
            for _ in range(4):
                idx = tuple(rng.integers(0, s) for s in got.shape)
                w = {k: v.astype(np.float64) for k, v in weights.items()}
                w[key][idx] += eps
                up = loss(cfg, w, tokens)
                w[key][idx] -= 2 * eps
                down = loss(cfg, w, tokens)
                fd = (up - down) / (2 * eps)
                assert abs(got[idx] - fd) <= 2e-3 * scale + 1e-6, f"{key}{idx}: swift {got[idx]:.6g} vs fd {fd:.6g}"
        ref = forward(cfg, weights, tokens[None, :-1])
        for site in SITES:
            got = f["sites"][site][:]
            shape = ref[site].shape[1:]
            assert got.shape == shape, site
            scale = np.abs(got).max() + 1e-8
            for _ in range(4):
                idx = tuple(rng.integers(0, s) for s in shape)
                delta = np.zeros((1,) + shape)
                delta[(0,) + idx] = eps
                fd = (loss(cfg, weights, tokens, {site: delta}) - loss(cfg, weights, tokens, {site: -delta})) / (2 * eps)
                assert abs(got[idx] - fd) <= 2e-3 * scale + 1e-6, f"{site}{idx}: swift {got[idx]:.6g} vs fd {fd:.6g}"
