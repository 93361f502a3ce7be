"""Turns benchmark JSON lines into a table with ratios against the faster PyTorch run."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(cfg, what, engine, t):
    for r in rows:
        if r.get("config") == cfg and r["what"] == what and r["engine"] == engine and r["threads"] == t:
            return r["tokens_per_s"]
    return None

print(f"{'config':6} {'threads':>7} {'sparsebridge':>13} {'pytorch':>9} {'pytorch+malloc':>15} {'ratio':>6} "
      f"{'capture resid':>14} {'capture cost':>13}")
for cfg in sorted({r.get("config") for r in rows if r["what"] == "forward"}):
    for t in sorted({r["threads"] for r in rows}):
        ours, pt, ptm = get(cfg, "forward", "sparsebridge", t), get(cfg, "forward", "pytorch", t), get(cfg, "forward", "pytorch-malloc", t)
        cap = get(cfg, "capture_resid", "sparsebridge", t)
        best = max(x for x in (pt, ptm) if x)
        print(f"{cfg:6} {t:>7} {ours:>13.0f} {pt:>9.0f} {ptm:>15.0f} {ours / best:>5.2f}x "
              f"{cap:>14.0f} {ours / cap - 1:>12.1%}")

train = [r for r in rows if r["what"] == "train_step"]
if train:
    print()
    print(f"{'training (D)':12} {'threads':>7} {'sparsebridge':>13} {'pytorch':>9} {'pytorch+malloc':>15} {'ratio':>6} {'projection share':>17}")
    for t in sorted({r["threads"] for r in train}):
        ours, pt, ptm = (get("D", "train_step", e, t) for e in ("sparsebridge", "pytorch", "pytorch-malloc"))
        share = next(r["share_of_step"] for r in rows if r["what"] == "sparse_projection" and r["threads"] == t)
        print(f"{'':12} {t:>7} {ours:>13.0f} {pt:>9.0f} {ptm:>15.0f} {ours / max(pt, ptm):>5.2f}x {share:>16.1%}")

fits = [r for r in rows if r["what"] == "fit"]
if fits:
    print()
    print(f"{'bridge fit 256→1024, 100k tokens':34} {'threads':>7} {'sparsebridge s':>15} {'numpy s':>8} {'time ratio':>11} {'sb MB':>7} {'numpy MB':>9} {'memory ratio':>13}")
    for t in sorted({r["threads"] for r in fits}):
        ours = next(r for r in fits if r["engine"] == "sparsebridge" and r["threads"] == t)
        peer = next(r for r in fits if r["engine"] == "numpy-lstsq" and r["threads"] == t)
        print(f"{'':34} {t:>7} {ours['seconds']:>15.2f} {peer['seconds']:>8.2f} {ours['seconds'] / peer['seconds']:>10.2f}x "
              f"{ours['peak_rss_mb']:>7.0f} {peer['peak_rss_mb']:>9.0f} {ours['peak_rss_mb'] / peer['peak_rss_mb']:>12.2f}x")
