"""Every user mistake gives one line on stderr naming the file or argument, a non-zero
exit, and no file under the output name."""
import json
import struct

import pytest

from conftest import ascii_corpus
from reference import write_safetensors
from test_parity import BASE, make_model


def assert_clean_failure(r, *needles, out=None):
    assert r.code != 0
    lines = [l for l in r.err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    assert "Fatal error" not in r.err and "Stack dump" not in r.err
    if out is not None:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.name}.partial*")), "a temporary was left behind"


@pytest.fixture
def model(tmp_path, cli):
    return make_model(tmp_path, cli, "m", BASE)[1]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    ascii_corpus(p, 400, seed=0)
    return p


def test_missing_model_file(tmp_path, cli, corpus):
    out = tmp_path / "a.h5"
    r = cli("capture", "--model", tmp_path / "nope.h5", "--sites", "resid", "--corpus", corpus, "--tokens", 16, "--out", out, check=False)
    assert_clean_failure(r, "nope.h5", "no such file", out=out)


def test_wrong_format_activations_given_as_model(tmp_path, cli, model, corpus):
    acts = tmp_path / "a.h5"
    cli("capture", "--model", model, "--sites", "resid", "--corpus", corpus, "--tokens", 16, "--out", acts)
    r = cli("run", "--model", acts, "--text", "x", check=False)
    assert_clean_failure(r, str(acts), "sparsebridge.activations", "expected sparsebridge.model")


def test_text_file_given_as_model(tmp_path, cli, corpus):
    r = cli("info", corpus, check=False)
    assert_clean_failure(r, str(corpus), "not an HDF5 file")


@pytest.mark.parametrize("keep", [0.5, 0.9, 200])
def test_truncated_hdf5_model(tmp_path, cli, model, keep):
    data = model.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    r = cli("run", "--model", cut, "--text", "x", check=False)
    assert_clean_failure(r, str(cut))


def lying_safetensors(path, kind):
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}
    data = b"\0" * 24
    if kind == "offset-past-end":
        header["b"]["data_offsets"] = [16, 4000]
    elif kind == "size-mismatch":
        header["a"]["shape"] = [3, 3]
    elif kind == "overlap":
        header["b"]["data_offsets"] = [8, 16]
        header["b"]["shape"] = [2]
    raw = json.dumps(header).encode()
    length = len(raw) if kind != "header-length" else 10 ** 9
    path.write_bytes(struct.pack("<Q", length) + raw + data)


@pytest.mark.parametrize("kind,needle", [("offset-past-end", "outside"), ("size-mismatch", "needs"),
                                         ("overlap", "overlap"), ("header-length", "exceeds the file size")])
def test_safetensors_header_that_lies(tmp_path, cli, kind, needle):
    st, out = tmp_path / "bad.safetensors", tmp_path / "m.h5"
    lying_safetensors(st, kind)
    r = cli("convert", "--from", st, "--out", out, check=False)
    assert_clean_failure(r, str(st), needle, out=out)


def test_unknown_hook_suggests_names(tmp_path, cli, model, corpus):
    out = tmp_path / "a.h5"
    r = cli("capture", "--model", model, "--sites", "blocks.0.hook_resid_pr", "--corpus", corpus, "--tokens", 16, "--out", out, check=False)
    assert_clean_failure(r, "blocks.0.hook_resid_pr", "blocks.0.hook_resid_pre", out=out)


def test_non_ascii_corpus_names_the_position(tmp_path, cli, model):
    corpus, out = tmp_path / "c.txt", tmp_path / "a.h5"
    corpus.write_text("x = 1\ny = 'caf\u00e9'\n" * 3)
    r = cli("capture", "--model", model, "--sites", "resid", "--corpus", corpus, "--tokens", 16, "--out", out, check=False)
    assert_clean_failure(r, str(corpus), "U+E9", "byte 14", "line 2, column 9", out=out)


def test_non_ascii_prompt(cli, model):
    r = cli("run", "--model", model, "--text", "ab\u00ff", check=False)
    assert_clean_failure(r, "U+FF", "position 2")


@pytest.mark.parametrize("cfg,needle", [
    (dict(BASE, d_model=30, n_head=4), "not divisible by n_head"),
    (dict(BASE, d_mlp=0), "d_mlp must be positive"),
    (dict(BASE, afrac=1.5), "afrac"),
    (dict(BASE, n_layers=3), "unknown config field \"n_layers\""),
])
def test_inconsistent_config(tmp_path, cli, cfg, needle):
    path, out = tmp_path / "cfg.json", tmp_path / "m.h5"
    path.write_text(json.dumps(cfg))
    r = cli("init", "--config", path, "--seed", 1, "--out", out, check=False)
    assert_clean_failure(r, str(path), needle, out=out)


def test_safetensors_with_wrong_shape_for_config(tmp_path, cli):
    st, out = tmp_path / "m.safetensors", tmp_path / "m.h5"
    cfg = dict(BASE, vocab=128)
    write_safetensors(st, {"embed.W_E": [[0.0] * 8] * 4}, {"config": json.dumps(cfg)})
    r = cli("convert", "--from", st, "--out", out, check=False)
    assert_clean_failure(r, str(st), "embed.W_E", out=out)


def test_output_folder_missing(tmp_path, cli, model, corpus):
    out = tmp_path / "no" / "such" / "a.h5"
    r = cli("capture", "--model", model, "--sites", "resid", "--corpus", corpus, "--tokens", 16, "--out", out, check=False)
    assert_clean_failure(r, "does not exist")


def test_corpus_too_short(tmp_path, cli, model, corpus):
    out = tmp_path / "a.h5"
    r = cli("capture", "--model", model, "--sites", "resid", "--corpus", corpus, "--tokens", 100000, "--out", out, check=False)
    assert_clean_failure(r, "has only", out=out)
