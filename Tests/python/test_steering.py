"""Steering mechanics against the NumPy reference: with a hand-made bridge whose decoder
row c points along the unembedding difference, the steered logit difference equals the
reference forward pass with h_t + α·Δ_t·D[c, :] added at the site; α = 0 is the unsteered run."""
import json

import h5py
import numpy as np

from reference import forward, full_config
from test_parity import make_model

CFG = dict(n_layer=2, d_model=16, n_head=2, d_mlp=32, n_ctx=64)
SITE = "blocks.1.hook_resid_mid"


def write_bridge(path, dense, sparse, cfg, decoder_w):
    import hashlib
    d = cfg["d_model"]
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "sparsebridge.bridge"
        f.attrs["format_version"] = 1
        for side, p in (("dense", dense), ("sparse", sparse)):
            f.attrs[f"{side}_model"] = str(p)
            f.attrs[f"{side}_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
            f.attrs[f"{side}_config"] = json.dumps(full_config(cfg))
        f.attrs["provenance"] = json.dumps({"made_by": "test"})
        f.attrs["sites"] = json.dumps([SITE])
        g = f.create_group(f"sites/{SITE}")
        for name, w in (("encoder", np.eye(d)), ("decoder", decoder_w)):
            m = g.create_group(name)
            m["W"] = w.astype(np.float32)
            m["b"] = np.zeros(d, np.float32)
            for a in ("nmse", "nmse_uncentered", "lambda", "lambda_relative", "rms_in", "rms_out"):
                m.attrs[a] = 1.0
            m.attrs["train_tokens"] = 1
            m.attrs["heldout_tokens"] = 1
        g["mean_dense"] = np.zeros(d, np.float32)
        g["mean_sparse"] = np.zeros(d, np.float32)


def test_steering_moves_the_logit_difference_by_the_predicted_amount(tmp_path, cli):
    weights, dense = make_model(tmp_path, cli, "dense", CFG, seed=11)
    sweights, sparse = make_model(tmp_path, cli, "sparse", CFG, seed=12)
    c = 5
    u = weights["unembed.W_U"][:, ord('"')].astype(np.float64) - weights["unembed.W_U"][:, ord("'")]
    decoder = np.eye(16)
    decoder[c] = 3 * u / np.linalg.norm(u)
    bridge = tmp_path / "b.h5"
    write_bridge(bridge, dense, sparse, CFG, decoder)
    r = cli("steer", "--dense", dense, "--sparse", sparse, "--bridge", bridge, "--site", SITE, "--channel", c,
            "--strengths", "0:1:0.5", "--pairs", 6, "--json")
    got = json.loads(r.out)
    samples = json.loads(cli("tasks", "sample", "single_double_quote", "--count", 6, "--seed", 2, "--json").out)
    expected = {0.0: [], 0.5: [], 1.0: []}
    for pair in samples:
        pres, cf = pair
        tp = np.frombuffer(pres["prompt"].encode(), np.uint8).astype(np.int64)[-64:]  # the last n_ctx tokens
        tc = np.frombuffer(cf["prompt"].encode(), np.uint8).astype(np.int64)[-64:]
        a_p = forward(CFG, sweights, tp[None])[SITE][0][:, c]
        a_c = forward(CFG, sweights, tc[None])[SITE][0][:, c]
        delta = a_c - a_p
        tgt, alt = ord(pres["target"]), ord(pres["alternative"])
        for alpha in expected:
            edit = alpha * delta[:, None] * decoder[c][None, :]
            logits = forward(CFG, weights, tp[None], perturb={SITE: edit[None]})["logits"][0, -1]
            expected[alpha].append(logits[tgt] - logits[alt])
    for point in got["curve"]:
        want = np.mean(expected[point["alpha"]])
        assert abs(point["mean_logit_diff"] - want) < 1e-4 * max(1, abs(want)), (point, want)
    # The edit moves the logit difference (it is not a no-op), and the control does not track it.
    assert abs(got["curve"][2]["mean_logit_diff"] - got["curve"][0]["mean_logit_diff"]) > 1e-3
    assert got["curve"][0]["mean_logit_diff"] == got["curve"][0]["control_mean_logit_diff"]


def test_steering_attribution_is_exact(tmp_path, cli):
    _, dense = make_model(tmp_path, cli, "dense", CFG, seed=11)
    _, sparse = make_model(tmp_path, cli, "sparse", CFG, seed=12)
    out = tmp_path / "b.h5"
    cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 64 * 30, "--seq-len", 64, "--out", out)
    r = cli("steer", "--dense", dense, "--sparse", sparse, "--bridge", out, "--site", "blocks.1.hook_resid_pre",
            "--strengths", "0:1:1", "--pairs", 4, "--attribute", "--json")
    a = json.loads(r.out)["attribution"]
    assert a["max_relative_error"] < 1e-4
    routes = sum(x["score"] for x in a["routes"])
    assert abs(routes - a["steering_score"]) < 1e-4 * max(1, abs(a["steering_score"]))
