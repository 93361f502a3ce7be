"""The circuit command's file and its errors, on a small random model."""
import json

from test_parity import make_model

CFG = dict(n_layer=1, d_model=16, n_head=2, d_mlp=32, n_ctx=256)


def test_unreachable_target_is_a_clear_error(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", CFG, seed=1)
    out = tmp_path / "c.json"
    # Refused before any optimisation step: the full model itself misses the target.
    r = cli("circuit", "--model", model, "--task", "bracket_counting", "--steps", 100000, "--pairs", 4, "--eval-pairs", 8,
            "--out", out, check=False)
    assert r.code != 0 and "not within --target-loss 0.15" in r.err and "standard error" in r.err and not out.exists()


def test_circuit_file_layout(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", CFG, seed=1)
    out, dot = tmp_path / "c.json", tmp_path / "c.dot"
    cli("circuit", "--model", model, "--task", "bracket_counting", "--steps", 5, "--pairs", 4, "--eval-pairs", 8,
        "--target-loss", 5, "--out", out, "--dot", dot)
    c = json.loads(out.read_text())
    assert c["task"] == "bracket_counting" and c["ablation"] == "mean" and c["total_nodes"] == 16 * 7 + 32 + 16
    assert c["node_count"] == len(c["nodes"]) and c["edges_listed"] == len(c["edges"]) <= c["edge_count"]
    assert c["checks"]["heldout_prompts"] == 16 and c["confidence"] == 2
    for key in ("full_model", "circuit_alone", "circuit_ablated"):
        assert 0 <= c["checks"][key]["accuracy"] <= 1 and c["checks"][key]["loss_standard_error"] >= 0
    assert c["checks"]["circuit_alone_within_target"] == (c["checks"]["circuit_alone"]["loss"] <= 5)
    ids = {n["id"] for n in c["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in c["edges"])
    assert dot.read_text().startswith("digraph circuit {")
