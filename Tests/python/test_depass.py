"""DePass in Swift against the Float64 NumPy reference (token and head levels, both MLP
rules, both norms, with and without an attention sink), and the exactness report."""
import json

import numpy as np
import pytest

from depass_reference import depass, token_components
from reference import full_config
from test_parity import make_model

BASE = dict(n_layer=2, d_model=16, n_head=2, d_mlp=32, n_ctx=16)
CONFIGS = {
    "layernorm": dict(BASE),
    "rms-sink-bigram-nobias": dict(BASE, norm="rms", attention_sink=True, bigram_table=True, bias=False, activation="relu"),
    "layernorm-sink-gelu_tanh-tied": dict(BASE, attention_sink=True, activation="gelu_tanh", tied_unembed=True),
}
TEXT = "x = 'ab' + f("


def run(cli, model, level, rule, layer=0):
    r = cli("attribute", "--model", model, "--text", TEXT, "--target", "(", "--alt", ")", "--level", level,
            "--layer", layer, "--rule", rule, "--top", 1000, "--json")
    return json.loads(r.out)


@pytest.mark.parametrize("rule", ["softmax", "ratio"])
@pytest.mark.parametrize("name", CONFIGS)
def test_token_level_matches_numpy(tmp_path, cli, name, rule):
    cfg = CONFIGS[name]
    weights, model = make_model(tmp_path, cli, name, cfg, seed=5)
    tokens = np.frombuffer(TEXT.encode(), np.uint8).astype(np.int64)
    comps = token_components(cfg, weights, tokens)
    logits, hooks = depass(cfg, weights, tokens, comps, 0, "pre", rule=rule, bigram_owner=lambda t: t)
    # Exact in the reference too: the components sum to the real logits.
    assert np.abs(logits.sum(0) - hooks["logits"][0]).max() < 1e-9
    ref = logits[:, -1, ord("(")] - logits[:, -1, ord(")")]
    got = run(cli, model, "token", rule)
    assert got["max_relative_error"] < 1e-4
    # Token components are named "position:character"; key them by position.
    scores = {(c["name"].split(":")[0] if c["name"] != "bias" else "bias"): c["score"] for c in got["components"]}
    names = [str(t) for t in range(len(tokens))] + ["bias"]
    scale = np.abs(ref).max()
    for n, r in zip(names, ref):
        assert abs(scores[n] - r) <= 1e-4 * scale, (n, scores[n], r)


@pytest.mark.parametrize("name", CONFIGS)
def test_head_level_matches_numpy(tmp_path, cli, name):
    cfg = CONFIGS[name]
    c = full_config(cfg)
    weights, model = make_model(tmp_path, cli, name, cfg, seed=6)
    tokens = np.frombuffer(TEXT.encode(), np.uint8).astype(np.int64)
    from reference import forward
    hooks = forward(cfg, weights, tokens[None])
    T, H, dh, d = len(tokens), c["n_head"], c["d_head"], c["d_model"]
    L = 1
    z = hooks[f"blocks.{L}.attn.hook_z"][0]
    W_O = weights[f"blocks.{L}.attn.W_O"].astype(np.float64)
    comps = np.zeros((H + 2, T, d))
    comps[0] = hooks[f"blocks.{L}.hook_resid_pre"][0]
    for h in range(H):
        comps[1 + h] = z[:, h] @ W_O[h * dh:(h + 1) * dh]
    if c["bias"]:
        comps[-1] = weights[f"blocks.{L}.attn.b_O"]
    logits, _ = depass(cfg, weights, tokens, comps, L, "mid", bigram_owner=lambda t: 0)
    ref = logits[:, -1, ord("(")] - logits[:, -1, ord(")")]
    got = run(cli, model, "head", "softmax", layer=L)
    scores = {x["name"]: x["score"] for x in got["components"]}
    names = ["resid_pre"] + [f"L{L}H{h}" for h in range(H)] + ["bias"]
    for n, r in zip(names, ref):
        assert abs(scores[n] - r) <= 1e-4 * np.abs(ref).max(), (n, scores[n], r)


def test_every_level_is_exact_at_every_site(tmp_path, cli):
    import h5py
    cfg = dict(BASE, n_layer=3, attention_sink=True, bigram_table=True, afrac=0.5)  # AbsTopK too
    _, model = make_model(tmp_path, cli, "m", cfg, seed=7)
    with h5py.File(tmp_path / "basis.h5", "w") as f:
        f["b"] = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    for level, extra in [("token", []), ("head", ["--layer", 1]), ("neuron", ["--layer", 2]),
                         ("subspace", ["--layer", 1, "--basis", f"{tmp_path / 'basis.h5'}:b"])]:
        for rule in ("softmax", "ratio"):
            r = cli("attribute", "--model", model, "--text", TEXT, "--target", "(", "--level", level, *extra,
                    "--rule", rule, "--json")
            got = json.loads(r.out)
            assert got["max_relative_error"] < 1e-4, (level, rule, got["checks"])
            assert len(got["checks"]) >= 2
            assert "warning" not in r.err
