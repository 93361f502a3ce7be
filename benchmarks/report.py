"""Turns benchmark JSON lines into a table with ratios against the faster PyTorch run."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(cfg, what, engine, t):
    for r in rows:
        if r["config"] == cfg and r["what"] == what and r["engine"] == engine and r["threads"] == t:
            return r["tokens_per_s"]
    return None

print(f"{'config':6} {'threads':>7} {'sparsebridge':>13} {'pytorch':>9} {'pytorch+malloc':>15} {'ratio':>6} "
      f"{'capture resid':>14} {'capture cost':>13}")
for cfg in sorted({r["config"] for r in rows}):
    for t in sorted({r["threads"] for r in rows}):
        ours, pt, ptm = get(cfg, "forward", "sparsebridge", t), get(cfg, "forward", "pytorch", t), get(cfg, "forward", "pytorch-malloc", t)
        cap = get(cfg, "capture_resid", "sparsebridge", t)
        best = max(x for x in (pt, ptm) if x)
        print(f"{cfg:6} {t:>7} {ours:>13.0f} {pt:>9.0f} {ptm:>15.0f} {ours / best:>5.2f}x "
              f"{cap:>14.0f} {ours / cap - 1:>12.1%}")
