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


def test_pruner_recovers_a_planted_circuit(tmp_path, cli):
    """`plant` writes a model with a known 11-node bracket circuit in shuffled random weights;
    `circuit` must find it (docs/analysis.md, "The pruner against a known circuit")."""
    _, like = make_model(tmp_path, cli, "like", dict(n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=256), seed=3)
    planted = tmp_path / "planted.h5"
    r = cli("plant", "--like", like, "--seed", 2, "--flip-length", 300, "--out", planted, "--json")
    known = json.loads(r.out)["planted_circuit"]["nodes"]
    assert len(known) == 11
    # A finished output is not replaced without --force.
    again = cli("plant", "--like", like, "--out", planted, check=False)
    assert again.code != 0 and str(planted) in again.err and "--force" in again.err
    out = tmp_path / "c.json"
    cli("circuit", "--model", planted, "--task", "bracket_counting", "--steps", 100, "--pairs", 16, "--eval-pairs", 64,
        "--out", out)
    c = json.loads(out.read_text())
    assert c["refined"] is True and c["searched_nodes"] >= c["node_count"]
    assert c["planted"]["nodes"] == 11 and c["planted"]["missing"] == [] and c["planted"]["recovered"] == 11
    assert len(c["planted"]["extra"]) <= 3 and c["node_count"] == 11 + len(c["planted"]["extra"])
