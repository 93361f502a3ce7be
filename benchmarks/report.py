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

def find(**want):
    return next((r for r in rows if all(r.get(k) == v for k, v in want.items())), None)

sparse = [r for r in rows if r["what"] == "sparse_forward" and r["engine"] == "sparsebridge"] if any(
    r["what"] == "sparse_forward" for r in rows) else []
if sparse:
    print()
    print("weight-sparse forward, tokens/s (batch 32 × 256); matmul = the model's matrix products alone")
    print(f"{'model':14} {'threads':>7} {'dense path':>11} {'sparse path':>12} {'speedup':>8} {'pytorch':>8} "
          f"{'vs pytorch':>11} {'matmul dense':>13} {'matmul sparse':>14} {'matmul speedup':>15}")
    for r in sorted(sparse, key=lambda r: (r["config"], r["model"], r["threads"], r["path"])):
        if r["path"] != "sparse":
            continue
        cfg, m, t = r["config"], r["model"], r["threads"]
        dense = find(what="sparse_forward", engine="sparsebridge", config=cfg, model=m, threads=t, path="dense")
        mm = {p: find(what="sparse_matmul", config=cfg, model=m, threads=t, path=p) for p in ("dense", "sparse")}
        peers = [x["tokens_per_s"] for x in rows if x["what"] == "sparse_forward" and x["engine"] != "sparsebridge"
                 and x.get("model") == m and x["threads"] == t]
        name = f"S {m}" if cfg == "S" else "shipped sparse"
        pt = f"{max(peers):>8.0f} {r['tokens_per_s'] / max(peers):>10.2f}x" if peers else f"{'-':>8} {'-':>11}"
        print(f"{name:14} {t:>7} {dense['tokens_per_s']:>11.0f} {r['tokens_per_s']:>12.0f} "
              f"{r['tokens_per_s'] / dense['tokens_per_s']:>7.2f}x {pt} {mm['dense']['tokens_per_s']:>13.0f} "
              f"{mm['sparse']['tokens_per_s']:>14.0f} {mm['dense']['seconds'] / mm['sparse']['seconds']:>14.2f}x")

depass = [r for r in rows if r["what"] == "sparse_depass"]
if depass:
    print()
    print(f"{'DePass, shipped sparse model':30} {'threads':>7} {'K':>3} {'T':>4} {'dense path s':>13} {'sparse path s':>14} {'speedup':>8}")
    for t in sorted({r["threads"] for r in depass}):
        d, s_ = (find(what="sparse_depass", threads=t, path=p) for p in ("dense", "sparse"))
        print(f"{'':30} {t:>7} {d['components']:>3} {d['seq']:>4} {d['seconds']:>13.3f} {s_['seconds']:>14.3f} "
              f"{d['seconds'] / s_['seconds']:>7.2f}x")
