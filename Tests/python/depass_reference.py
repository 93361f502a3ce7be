"""DePass written independently in NumPy (float64) from DESIGN.md, on top of reference.py's
forward pass: freeze patterns, norm scales and MLP coefficients, carry components."""
import math

import numpy as np

from reference import full_config, forward


def _norm_component(c, x_comp, rstd, g, b, is_bias):
    if c["norm"] == "layer":
        y = g * (x_comp - x_comp.mean(-1, keepdims=True)) * rstd
    else:
        y = g * x_comp * rstd
    if is_bias and b is not None:
        y = y + b
    return y


def _rstd(c, h):
    if c["norm"] == "layer":
        var = ((h - h.mean(-1, keepdims=True)) ** 2).mean(-1, keepdims=True)
        return 1 / np.sqrt(var + c["norm_eps"])
    return 1 / np.sqrt((h ** 2).mean(-1, keepdims=True) + c["norm_eps"])


def depass(cfg, weights, tokens, comps, start_layer, start_stage, rule="softmax", tau=0.1, bigram_owner=None):
    """comps: [K+1, T, d] (bias last) summing to the residual at the start point;
    start_stage in {"pre", "mid", "post"}. Returns per-component logits [K+1, T, V]."""
    c = full_config(cfg)
    assert c["afrac"] >= 1, "the reference covers models without AbsTopK"
    W = {k: v.astype(np.float64) for k, v in weights.items()}
    hooks = forward(cfg, weights, tokens[None])
    T = len(tokens)
    H, dh = c["n_head"], c["d_head"]
    comps = comps.astype(np.float64).copy()
    K1 = comps.shape[0]
    bias_mask = np.zeros((K1, 1, 1))
    bias_mask[-1] = 1
    for l in range(start_layer, c["n_layer"]):
        p = f"blocks.{l}."
        if l > start_layer or start_stage == "pre":
            h = hooks[p + "hook_resid_pre"][0]
            n = _norm_component(c, comps, _rstd(c, h), W[p + "ln1.w"], W.get(p + "ln1.b"), False)
            if c["norm"] == "layer" and p + "ln1.b" in W:
                n = n + bias_mask * W[p + "ln1.b"]
            v = n @ W[p + "attn.W_V"] + (bias_mask * W[p + "attn.b_V"] if c["bias"] else 0)
            A = hooks[p + "attn.hook_pattern"][0]  # [H, T, T]
            z = np.einsum("hij,kjhd->kihd", A, v.reshape(K1, T, H, dh)).reshape(K1, T, H * dh)
            comps = comps + z @ W[p + "attn.W_O"] + (bias_mask * W[p + "attn.b_O"] if c["bias"] else 0)
        if l > start_layer or start_stage in ("pre", "mid"):
            h = hooks[p + "hook_resid_mid"][0]
            n = _norm_component(c, comps, _rstd(c, h), W[p + "ln2.w"], W.get(p + "ln2.b"), False)
            if c["norm"] == "layer" and p + "ln2.b" in W:
                n = n + bias_mask * W[p + "ln2.b"]
            z = n @ W[p + "mlp.W_in"] + (bias_mask * W[p + "mlp.b_in"] if c["bias"] else 0)  # [K+1, T, F]
            pre, post = hooks[p + "mlp.hook_pre"][0], hooks[p + "mlp.hook_post"][0]
            if rule == "ratio":
                ratio = np.where(pre == 0, 0, post / np.where(pre == 0, 1, pre))
                shares = z * ratio
            else:
                logits = np.where(z == 0, -np.inf, z / tau)
                mx = logits.max(0, keepdims=True)
                e = np.where(z == 0, 0, np.exp(logits - mx))
                shares = post * e / e.sum(0, keepdims=True)
            comps = comps + shares @ W[p + "mlp.W_out"] + (bias_mask * W[p + "mlp.b_out"] if c["bias"] else 0)
    h = hooks[f"blocks.{c['n_layer'] - 1}.hook_resid_post"][0]
    n = _norm_component(c, comps, _rstd(c, h), W["ln_final.w"], W.get("ln_final.b"), False)
    if c["norm"] == "layer" and "ln_final.b" in W:
        n = n + bias_mask * W["ln_final.b"]
    out = n @ (W["embed.W_E"].T if c["tied_unembed"] else W["unembed.W_U"])
    if c["bias"]:
        out = out + bias_mask * W["unembed.b_U"]
    if c["bigram_table"]:
        for t in range(T):
            owner = bigram_owner(t) if bigram_owner else K1 - 1
            out[owner, t] += W["bigram.table"][tokens[t]]
    return out, hooks


def token_components(cfg, weights, tokens):
    c = full_config(cfg)
    T, d = len(tokens), c["d_model"]
    comps = np.zeros((T + 1, T, d))
    for t in range(T):
        comps[t, t] = weights["embed.W_E"][tokens[t]]
        if c["positional"] == "learned":
            comps[t, t] += weights["pos_embed.W_pos"][t]
    return comps
