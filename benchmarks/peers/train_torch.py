"""PyTorch peer for the training benchmark: the same architecture as forward_torch.py,
trained with the same step (cross-entropy, backward, gradient RMS scaling, AdamW with
betas (0.9, 0.95) and weight decay on matrices), float32, best of K steps."""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-head", type=int, default=8)
    ap.add_argument("--d-mlp", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--label", default="pytorch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    d, H, f, L, V = a.d_model, a.n_head, a.d_mlp, a.layers, 128
    dh = d // H

    def p(*shape, std=0.02):
        return torch.nn.Parameter(torch.randn(*shape) * std)

    params = {"W_E": p(V, d), "W_pos": p(a.seq, d), "W_U": p(d, V), "b_U": p(V, std=0), "lnf_w": p(d, std=0) , "lnf_b": p(d, std=0)}
    params["lnf_w"].data.fill_(1)
    for l in range(L):
        for n, s in [("W_Q", (d, d)), ("W_K", (d, d)), ("W_V", (d, d)), ("W_O", (d, d)), ("W_in", (d, f)), ("W_out", (f, d))]:
            params[f"{l}.{n}"] = p(*s)
        for n, s in [("b_Q", d), ("b_K", d), ("b_V", d), ("b_O", d), ("b_in", f), ("b_out", d), ("ln1_b", d), ("ln2_b", d)]:
            params[f"{l}.{n}"] = p(s, std=0)
        for n in ("ln1_w", "ln2_w"):
            params[f"{l}.{n}"] = p(d, std=0)
            params[f"{l}.{n}"].data.fill_(1)
    matrices = [v for k, v in params.items() if v.dim() == 2]
    others = [v for k, v in params.items() if v.dim() != 2]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95))

    def forward(tokens):
        B, T = tokens.shape
        x = params["W_E"][tokens] + params["W_pos"][:T]
        for l in range(L):
            g = lambda n: params[f"{l}.{n}"]
            u = F.layer_norm(x, (d,), g("ln1_w"), g("ln1_b"))
            q, k, v = [(u @ g(f"W_{m}") + g(f"b_{m}")).view(B, T, H, dh).transpose(1, 2) for m in "QKV"]
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + z.transpose(1, 2).reshape(B, T, d) @ g("W_O") + g("b_O")
            u = F.layer_norm(x, (d,), g("ln2_w"), g("ln2_b"))
            x = x + F.gelu(u @ g("W_in") + g("b_in")) @ g("W_out") + g("b_out")
        return F.layer_norm(x, (d,), params["lnf_w"], params["lnf_b"]) @ params["W_U"] + params["b_U"]

    gen = torch.Generator().manual_seed(1)

    def step():
        tokens = torch.randint(32, 127, (a.batch, a.seq + 1), generator=gen)
        logits = forward(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        with torch.no_grad():
            grads = [q.grad for q in params.values()]
            rms = torch.sqrt(sum((g * g).sum() for g in grads) / sum(g.numel() for g in grads))
            for g in grads:
                g.div_(rms)
        opt.step()

    step()
    best = math.inf
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"what": "train_step", "engine": a.label, "threads": a.threads, "tokens_per_s": a.batch * a.seq / best}))


if __name__ == "__main__":
    main()
