"""PyTorch peer for the forward benchmark: the same architecture (DESIGN.md) in eager
PyTorch, loading the same weights from our safetensors export, timed the same way
(best of K forwards on a [B, T] batch of random printable characters)."""
import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {k: torch.from_numpy(np.frombuffer(data[8 + n + e["data_offsets"][0]: 8 + n + e["data_offsets"][1]],
                                                 dtype=np.float32).reshape(e["shape"]).copy()) for k, e in header.items()}
    return tensors, json.loads(meta["config"])


class Model(torch.nn.Module):
    def __init__(self, w, c):
        super().__init__()
        self.w, self.c = w, c

    def norm(self, x, p):
        if self.c["norm"] == "layer":
            return F.layer_norm(x, x.shape[-1:], self.w[p + ".w"], self.w.get(p + ".b"), self.c["norm_eps"])
        return F.rms_norm(x, x.shape[-1:], self.w[p + ".w"], self.c["norm_eps"])

    def forward(self, tokens):
        w, c = self.w, self.c
        B, T = tokens.shape
        H, dh = c["n_head"], c["d_head"]
        x = w["embed.W_E"][tokens]
        if "pos_embed.W_pos" in w:
            x = x + w["pos_embed.W_pos"][:T]
        for l in range(c["n_layer"]):
            p = f"blocks.{l}."
            a = self.norm(x, p + "ln1")
            q, k, v = [(a @ w[p + f"attn.W_{m}"] + w.get(p + f"attn.b_{m}", 0)).view(B, T, H, dh).transpose(1, 2)
                       for m in "QKV"]
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + z.transpose(1, 2).reshape(B, T, H * dh) @ w[p + "attn.W_O"] + w.get(p + "attn.b_O", 0)
            u = self.norm(x, p + "ln2")
            h = u @ w[p + "mlp.W_in"] + w.get(p + "mlp.b_in", 0)
            h = F.gelu(h) if c["activation"] == "gelu" else F.gelu(h, approximate="tanh") if c["activation"] == "gelu_tanh" else F.relu(h)
            x = x + h @ w[p + "mlp.W_out"] + w.get(p + "mlp.b_out", 0)
        x = self.norm(x, "ln_final")
        return x @ w["unembed.W_U"] + w.get("unembed.b_U", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--label", default="pytorch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, c = read_safetensors(a.weights)
    model = Model(w, c)
    tokens = torch.randint(32, 127, (a.batch, a.seq), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        model(tokens)
        best = math.inf
        for _ in range(a.iters):
            t0 = time.perf_counter()
            model(tokens)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"what": "forward", "engine": a.label, "threads": a.threads,
                      "tokens_per_s": a.batch * a.seq / best}))


if __name__ == "__main__":
    main()
