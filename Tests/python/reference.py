"""An independent NumPy (float64) implementation of SparseBridge's forward pass, written from
DESIGN.md, used to check the Swift implementation hook by hook. Also a minimal safetensors
reader/writer so the tests need nothing beyond numpy and h5py."""
import json
import math
import struct

import numpy as np

# ---------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def write_safetensors(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        blob = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, e_ = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b: 8 + n + e_], dtype=_DTYPES[e["dtype"]]).reshape(e["shape"])
    return out, meta


# ---------------------------------------------------------------- config and weights

NODE_LOCATIONS = ["attn_in", "attn_q", "attn_k", "attn_v", "attn_out", "mlp_in", "mlp_neuron", "mlp_out"]


def full_config(cfg):
    c = dict(vocab=128, norm="layer", activation="gelu", positional="learned", attention_sink=False,
             bigram_table=False, afrac=1.0, afrac_locations=NODE_LOCATIONS, tied_unembed=False, bias=True,
             norm_eps=1e-5)
    c.update(cfg)
    c.setdefault("d_head", c["d_model"] // c["n_head"])
    return c


def parameter_shapes(cfg):
    """Our parameter names (dot form) and shapes, in file order."""
    c = full_config(cfg)
    d, a, f, v = c["d_model"], c["n_head"] * c["d_head"], c["d_mlp"], c["vocab"]
    norm_bias = c["bias"] and c["norm"] == "layer"
    shapes = {"embed.W_E": (v, d)}
    if c["positional"] == "learned":
        shapes["pos_embed.W_pos"] = (c["n_ctx"], d)
    for l in range(c["n_layer"]):
        p = f"blocks.{l}."
        shapes[p + "ln1.w"] = (d,)
        if norm_bias:
            shapes[p + "ln1.b"] = (d,)
        for m in "QKV":
            shapes[p + f"attn.W_{m}"] = (d, a)
        if c["bias"]:
            for m in "QKV":
                shapes[p + f"attn.b_{m}"] = (a,)
        shapes[p + "attn.W_O"] = (a, d)
        if c["bias"]:
            shapes[p + "attn.b_O"] = (d,)
        if c["attention_sink"]:
            shapes[p + "attn.sink"] = (c["n_head"],)
        shapes[p + "ln2.w"] = (d,)
        if norm_bias:
            shapes[p + "ln2.b"] = (d,)
        shapes[p + "mlp.W_in"] = (d, f)
        if c["bias"]:
            shapes[p + "mlp.b_in"] = (f,)
        shapes[p + "mlp.W_out"] = (f, d)
        if c["bias"]:
            shapes[p + "mlp.b_out"] = (d,)
    shapes["ln_final.w"] = (d,)
    if norm_bias:
        shapes["ln_final.b"] = (d,)
    if not c["tied_unembed"]:
        shapes["unembed.W_U"] = (d, v)
    if c["bias"]:
        shapes["unembed.b_U"] = (v,)
    if c["bigram_table"]:
        shapes["bigram.table"] = (v, v)
    return shapes


def random_weights(cfg, seed):
    """Weights large enough that attention is peaked and every nonlinearity matters."""
    rng = np.random.default_rng(seed)
    w = {}
    for name, shape in parameter_shapes(cfg).items():
        leaf = name.split(".")[-1]
        if leaf in ("w",):
            x = 1 + 0.2 * rng.standard_normal(shape)
        elif leaf.startswith("b") or leaf == "sink":
            x = 0.3 * rng.standard_normal(shape)
        elif leaf == "table":
            x = 0.5 * rng.standard_normal(shape)
        elif leaf in ("W_E", "W_pos"):
            x = rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape) * (1.5 / math.sqrt(shape[0]))
        w[name] = x.astype(np.float32)
    return w


# ---------------------------------------------------------------- forward pass

def _norm(c, x, g, b):
    if c["norm"] == "layer":
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + c["norm_eps"]) * g
        return y + b if b is not None else y
    rms = np.sqrt((x ** 2).mean(-1, keepdims=True) + c["norm_eps"])
    return x / rms * g


def _act(c, x):
    if c["activation"] == "relu":
        return np.maximum(x, 0)
    if c["activation"] == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _topk(c, loc, x):
    if c["afrac"] >= 1 or loc not in c["afrac_locations"]:
        return x
    width = x.shape[-1]
    k = max(1, int(math.floor(c["afrac"] * width)))
    flat = x.reshape(-1, width)
    order = np.argsort(-np.abs(flat), axis=1, kind="stable")[:, :k]
    out = np.zeros_like(flat)
    np.put_along_axis(out, order, np.take_along_axis(flat, order, axis=1), axis=1)
    return out.reshape(x.shape)


def forward(cfg, weights, tokens, perturb=None):
    """tokens [B, T] → dict of hook name → float64 array shaped per batch ([B, T, …]).
    `perturb` maps hook names to arrays added to the activation at that hook (for finite
    differences with respect to activations)."""
    c = full_config(cfg)
    perturb = perturb or {}

    class Recorder(dict):
        def __setitem__(self, name, value):
            if name in perturb:
                value = value + perturb[name]
            super().__setitem__(name, value)

    W = {k: v.astype(np.float64) for k, v in weights.items()}
    B, T = tokens.shape
    H, dh = c["n_head"], c["d_head"]
    get = W.get
    hooks = Recorder()
    hooks["hook_embed"] = W["embed.W_E"][tokens]
    resid = hooks["hook_embed"].copy()
    if c["positional"] == "learned":
        hooks["hook_pos_embed"] = np.broadcast_to(W["pos_embed.W_pos"][:T], (B, T, c["d_model"]))
        resid = resid + hooks["hook_pos_embed"]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for l in range(c["n_layer"]):
        p = f"blocks.{l}."
        hooks[p + "hook_resid_pre"] = resid
        resid = hooks[p + "hook_resid_pre"]
        a = _topk(c, "attn_in", _norm(c, resid, W[p + "ln1.w"], get(p + "ln1.b")))
        hooks[p + "ln1.hook_normalized"] = a
        a = hooks[p + "ln1.hook_normalized"]
        qkv = {}
        for m, loc in (("Q", "attn_q"), ("K", "attn_k"), ("V", "attn_v")):
            y = a @ W[p + f"attn.W_{m}"]
            if c["bias"]:
                y = y + W[p + f"attn.b_{m}"]
            y = _topk(c, loc, y)
            qkv[m] = y.reshape(B, T, H, dh)
            hooks[p + f"attn.hook_{m.lower()}"] = qkv[m]
            qkv[m] = hooks[p + f"attn.hook_{m.lower()}"]
        scores = np.einsum("bihd,bjhd->bhij", qkv["Q"], qkv["K"]) / math.sqrt(dh)
        scores = np.where(causal, scores, -np.inf)
        m = scores.max(-1, keepdims=True)
        if c["attention_sink"]:
            sink = W[p + "attn.sink"].reshape(1, H, 1, 1)
            m = np.maximum(m, sink)
            e = np.exp(scores - m)
            pattern = e / (e.sum(-1, keepdims=True) + np.exp(sink - m))
        else:
            e = np.exp(scores - m)
            pattern = e / e.sum(-1, keepdims=True)
        hooks[p + "attn.hook_pattern"] = pattern
        pattern = np.where(causal, hooks[p + "attn.hook_pattern"], 0)  # entries above the diagonal are ignored
        z = np.einsum("bhij,bjhd->bihd", pattern, qkv["V"])
        hooks[p + "attn.hook_z"] = z
        z = hooks[p + "attn.hook_z"]
        attn_out = z.reshape(B, T, H * dh) @ W[p + "attn.W_O"]
        if c["bias"]:
            attn_out = attn_out + W[p + "attn.b_O"]
        attn_out = _topk(c, "attn_out", attn_out)
        hooks[p + "hook_attn_out"] = attn_out
        attn_out = hooks[p + "hook_attn_out"]
        resid = _topk(c, "resid_post_attn", resid + attn_out)
        hooks[p + "hook_resid_mid"] = resid
        resid = hooks[p + "hook_resid_mid"]
        u = _topk(c, "mlp_in", _norm(c, resid, W[p + "ln2.w"], get(p + "ln2.b")))
        hooks[p + "ln2.hook_normalized"] = u
        u = hooks[p + "ln2.hook_normalized"]
        pre = u @ W[p + "mlp.W_in"]
        if c["bias"]:
            pre = pre + W[p + "mlp.b_in"]
        hooks[p + "mlp.hook_pre"] = pre
        pre = hooks[p + "mlp.hook_pre"]
        post = _topk(c, "mlp_neuron", _act(c, pre))
        hooks[p + "mlp.hook_post"] = post
        post = hooks[p + "mlp.hook_post"]
        out = post @ W[p + "mlp.W_out"]
        if c["bias"]:
            out = out + W[p + "mlp.b_out"]
        out = _topk(c, "mlp_out", out)
        hooks[p + "hook_mlp_out"] = out
        out = hooks[p + "hook_mlp_out"]
        resid = _topk(c, "resid_post_mlp", resid + out)
        hooks[p + "hook_resid_post"] = resid
        resid = hooks[p + "hook_resid_post"]
    x = _norm(c, resid, W["ln_final.w"], get("ln_final.b"))
    hooks["ln_final.hook_normalized"] = x
    x = hooks["ln_final.hook_normalized"]
    logits = x @ (W["embed.W_E"].T if c["tied_unembed"] else W["unembed.W_U"])
    if c["bias"]:
        logits = logits + W["unembed.b_U"]
    if c["bigram_table"]:
        logits = logits + W["bigram.table"][tokens]
    hooks["logits"] = logits
    logits = hooks["logits"]
    return hooks


def as_rows(name, value, cfg):
    """A per-batch hook value in the activation file's row layout [B·T, width]."""
    c = full_config(cfg)
    if name.endswith("hook_pattern"):  # [B, H, Tq, Tk] → rows per query token: [B·Tq, H·Tk]
        B, H, T, _ = value.shape
        return value.transpose(0, 2, 1, 3).reshape(B * T, H * T)
    B, T = value.shape[:2]
    return value.reshape(B * T, -1)


# ---------------------------------------------------------------- circuit_sparsity's GPT

def circuit_sparsity_state_dict(beeg, seed, zero_fraction=0.3):
    """A random state_dict in circuit_sparsity's key layout (nn.Linear weights [out, in]) for a
    beeg_config dict; about `zero_fraction` of each weight matrix is exactly zero."""
    rng = np.random.default_rng(seed)
    d, h, v, n = beeg["d_model"], beeg["n_head"], beeg["vocab_size"], beeg["block_size"]
    dh, m = beeg.get("d_head") or d // h, beeg.get("d_mlp") or 4 * d
    rms, bias = beeg.get("rms_norm", False), beeg.get("bias", True)
    ln_bias = beeg.get("ln_bias", True) and not rms

    def w(*shape):
        x = rng.standard_normal(shape) * (1.5 / math.sqrt(shape[-1]))
        x[rng.random(shape) < zero_fraction] = 0.0
        return x

    sd = {"transformer.wte.weight": rng.standard_normal((v, d)), "transformer.wpe.weight": rng.standard_normal((n, d))}
    for l in range(beeg["n_layer"]):
        p = f"transformer.h.{l}."
        for ln in ("ln_1", "ln_2"):
            sd[p + ln + ".weight"] = 1 + 0.2 * rng.standard_normal(d)
            if ln_bias:
                sd[p + ln + ".bias"] = 0.3 * rng.standard_normal(d)
        for name, shape in (("attn.c_attn", (3 * h * dh, d)), ("attn.c_proj", (d, h * dh)),
                            ("mlp.c_fc", (m, d)), ("mlp.c_proj", (d, m))):
            sd[p + name + ".weight"] = w(*shape)
            if bias:
                sd[p + name + ".bias"] = 0.3 * rng.standard_normal(shape[0])
        if beeg.get("sink"):
            sd[p + "attn.attn_imp.sink_logit"] = rng.standard_normal(h)
    sd["transformer.ln_f.weight"] = 1 + 0.2 * rng.standard_normal(d)
    if ln_bias:
        sd["transformer.ln_f.bias"] = 0.3 * rng.standard_normal(d)
    sd["lm_head.weight"] = sd["transformer.wte.weight"] if beeg.get("tied_unembed", True) else w(v, d)
    sd["final_logits_bias"] = 0.3 * rng.standard_normal(v)
    if beeg.get("enable_bigram_table"):
        sd["bigram_table"] = 0.5 * rng.standard_normal((v, v))
    return {k: x.astype(np.float32) for k, x in sd.items()}


def circuit_sparsity_forward(beeg, sd, tokens):
    """circuit_sparsity/inference/gpt.py's forward pass, read directly off its state_dict, in
    float64. tokens [B, T] → dict of circuit_sparsity hook names (`0.attn.q`, `final_resid`, …)
    plus `logits`, each [B, T, width]."""
    W = {k: x.astype(np.float64) for k, x in sd.items()}
    d, H = beeg["d_model"], beeg["n_head"]
    dh = beeg.get("d_head") or d // H
    rms = beeg.get("rms_norm", False)
    afrac, locs = beeg.get("afrac"), beeg.get("afrac_loctypes", "attn_in,attn_out,mlp_in,mlp_out").split(",")
    act = {"gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
           "relu": lambda x: np.maximum(x, 0)}[beeg.get("activation_type", "gelu")]

    def sparsity(x, loc):  # GPTConfig.maybe_activation_sparsity: keep int(afrac·width) largest |x|
        if afrac is None or loc not in locs:
            return x
        k = int(afrac * x.shape[-1])
        idx = np.argsort(-np.abs(x), axis=-1, kind="stable")[..., :k]
        out = np.zeros_like(x)
        np.put_along_axis(out, idx, np.take_along_axis(x, idx, -1), -1)
        return out

    def norm(x, p):
        if rms:  # nn.RMSNorm, eps = float32 machine epsilon
            return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + np.finfo(np.float32).eps) * W[p + ".weight"]
        mu = x.mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * W[p + ".weight"]
        return y + W[p + ".bias"] if p + ".bias" in W else y

    def linear(x, p):  # nn.Linear: x Wᵀ + b
        y = x @ W[p + ".weight"].T
        return y + W[p + ".bias"] if p + ".bias" in W else y

    B, T = tokens.shape
    hooks = {}
    x = W["transformer.wte.weight"][tokens] + W["transformer.wpe.weight"][:T]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for l in range(beeg["n_layer"]):
        p, hp = f"transformer.h.{l}.", f"{l}."
        hooks[hp + "resid_in"] = x
        a = sparsity(norm(x, p + "ln_1"), "attn_in")
        hooks[hp + "attn.act_in"] = a
        q, k, v = np.split(linear(a, p + "attn.c_attn"), 3, axis=-1)
        k, q, v = sparsity(k, "attn_k"), sparsity(q, "attn_q"), sparsity(v, "attn_v")
        hooks[hp + "attn.q"], hooks[hp + "attn.k"], hooks[hp + "attn.v"] = q, k, v
        q, k, v = (t.reshape(B, T, H, dh).transpose(0, 2, 1, 3) for t in (q, k, v))  # [B, H, T, dh]
        s = np.where(causal, q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh), -np.inf)
        if beeg.get("sink"):  # SDPAWithSink: a key slot of logit sink_h and zero value
            s = np.concatenate([np.broadcast_to(W[p + "attn.attn_imp.sink_logit"].reshape(1, H, 1, 1), (B, H, T, 1)), s], -1)
            v = np.concatenate([np.zeros((B, H, 1, dh)), v], 2)
        e = np.exp(s - s.max(-1, keepdims=True))
        y = (e / e.sum(-1, keepdims=True)) @ v
        y = y.transpose(0, 2, 1, 3).reshape(B, T, H * dh)
        hooks[hp + "attn.y"] = y
        delta = sparsity(linear(y, p + "attn.c_proj"), "attn_out")
        hooks[hp + "attn.resid_delta"] = delta
        x = sparsity(x + delta, "resid_post_attn")
        hooks[hp + "resid_mid"] = x
        u = sparsity(norm(x, p + "ln_2"), "mlp_in")
        hooks[hp + "mlp.act_in"] = u
        post = sparsity(act(linear(u, p + "mlp.c_fc")), "mlp_neuron")
        hooks[hp + "mlp.post_act"] = post
        delta = sparsity(linear(post, p + "mlp.c_proj"), "mlp_out")
        hooks[hp + "mlp.resid_delta"] = delta
        x = sparsity(x + delta, "resid_post_mlp")
    hooks["final_resid"] = x
    logits = norm(x, "transformer.ln_f") @ W["lm_head.weight"].T + W["final_logits_bias"]
    if beeg.get("enable_bigram_table"):
        logits = logits + W["bigram_table"][tokens]
    hooks["logits"] = logits
    return hooks
