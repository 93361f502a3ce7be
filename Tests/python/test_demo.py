"""The demo end to end on small models made here (a quick run), its notebook executed in a
real Jupyter kernel, and the bad inputs: a missing shipped file, a missing or outdated run."""
import json

import h5py
import nbclient
import nbformat
import pytest

from conftest import ROOT
from test_parity import make_model

SETTINGS = ROOT / "models" / "demo.json"

CFG = dict(n_layer=2, d_model=16, n_head=2, d_mlp=32, n_ctx=256)


@pytest.fixture
def shipped(tmp_path, cli):
    _, dense = make_model(tmp_path, cli, "dense", CFG, seed=1)
    _, sparse = make_model(tmp_path, cli, "sparse", dict(CFG, d_model=24, n_head=3, d_mlp=48), seed=2)
    bridge = tmp_path / "bridge.h5"
    cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 256 * 12, "--seq-len", 128, "--out", bridge)
    return dense, sparse, bridge


def test_quick_demo_and_its_notebook_runs(tmp_path, cli, shipped):
    dense, sparse, bridge = shipped
    run, nb = tmp_path / "run", tmp_path / "demo.ipynb"
    settings = tmp_path / "demo.json"
    settings.write_text(json.dumps({"steering_site": "blocks.1.hook_resid_pre", "dilution_lengths": [4, 8, 16, 24]}))
    r = cli("demo", "--quick", "--out", run, "--notebook", nb, "--dense", dense, "--sparse", sparse, "--bridge", bridge,
            "--settings", settings, "--circuits", tmp_path, timeout=600)
    assert "Task accuracy" in r.out and "Steering quote type" in r.out
    results = json.loads((run / "results.json").read_text())
    assert results["format"] == "sparsebridge.demo" and len(results["tasks"]) == 5
    assert results["depass"]["max_relative_error"] < 1e-4
    with h5py.File(run / "data.h5", "r") as f:
        assert f["steering/alpha"][0] == 0 and f["steering/alpha"][-1] == 1
        assert len(f["splice/ce_recovered_d2s"]) == len(json.loads(f["splice"].attrs["sites"])) == 5
        assert "sparse" in f["dilution"] and "dense" in f["dilution"]
    notebook = nbformat.read(nb, as_version=4)
    nbformat.validate(notebook)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert sum(1 for c in notebook.cells if c.cell_type == "markdown") >= 6


def test_demo_refuses_a_missing_shipped_file(tmp_path, cli, shipped):
    dense, sparse, _ = shipped
    r = cli("demo", "--quick", "--out", tmp_path / "run", "--dense", dense, "--sparse", sparse,
            "--bridge", tmp_path / "nope.h5", "--settings", SETTINGS, check=False)
    assert r.code != 0 and "nope.h5 is missing" in r.err and "make bridges" in r.err
    assert not (tmp_path / "run" / "results.json").exists()


def test_notebook_export_refuses_missing_or_outdated_runs(tmp_path, cli):
    r = cli("export", "notebook", "--run", tmp_path / "nothing", "--out", tmp_path / "x.ipynb", check=False)
    assert r.code != 0 and "no results.json" in r.err
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({"format": "sparsebridge.demo", "format_version": 0}))
    (old / "data.h5").write_bytes(b"")
    r = cli("export", "notebook", "--run", old, "--out", tmp_path / "x.ipynb", check=False)
    assert r.code != 0 and "format_version 0" in r.err and "rerun" in r.err
    assert not (tmp_path / "x.ipynb").exists()
