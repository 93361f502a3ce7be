#!/usr/bin/env python3
"""The bad-input matrix: every subcommand, every file it reads, every way that file can be bad.

Builds small valid files of each kind with the CLI itself (init, capture, fit, train, circuit,
export), derives corrupted copies (empty, random bytes, truncated, another of our formats,
missing dataset or attribute, wrong dtype or shape, NaN/Inf, lying safetensors headers, a
future format_version), runs every (command, file argument, corruption) case and checks that
the process exits non-zero without a signal, prints exactly one stderr line starting with
`sparsebridge: error:` that names the file, and leaves nothing under the output name.

    scripts/bad_input_matrix.py [--bin .build/release/sparsebridge] [--quick] [--only REGEX]

Prints the table and "N cases tried, M passed"; exits 1 if any case fails.
"""
import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120

DENSE_CFG = {"n_layer": 1, "d_model": 16, "n_head": 2, "d_mlp": 32, "n_ctx": 256, "vocab": 128}
SPARSE_CFG = {"n_layer": 1, "d_model": 24, "n_head": 2, "d_mlp": 32, "n_ctx": 256, "vocab": 128}
RECIPE = {"model": {"n_layer": 1, "d_model": 16, "n_head": 2, "d_mlp": 32, "n_ctx": 32, "vocab": 128},
          "seed": 1, "steps": 2, "batch": 2, "seq_len": 16, "lr": 0.001, "warmup_steps": 1,
          "eval_every": 2, "eval_pairs": 4, "checkpoint_every": 1, "heldout_sequences": 2}


class Binary:
    def __init__(self, path):
        self.path = str(path)

    def run(self, args, timeout=TIMEOUT):
        env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "SkylakeX"))
        start = time.time()
        try:
            p = subprocess.run([self.path, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                               errors="replace")
            return p.returncode, p.stdout, p.stderr, time.time() - start
        except subprocess.TimeoutExpired as e:
            return None, "", f"timed out after {timeout} s", time.time() - start

    def ok(self, *args):
        code, out, err, _ = self.run(args, timeout=600)
        if code != 0:
            raise SystemExit(f"building a valid file failed: sparsebridge {' '.join(map(str, args))}\n{err}")
        return out


# --------------------------------------------------------------------------------------------
# Valid files


def ascii_text(path, n, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(32, 127, size=n)
    codes[rng.random(n) < 0.05] = 10
    Path(path).write_bytes(bytes(codes.astype("uint8")))


def build_valid(b, d):
    """Every valid input, made by the program itself (so the formats are exactly ours)."""
    d.mkdir(parents=True, exist_ok=True)
    v = {}
    v["config"] = d / "config.json"
    v["config"].write_text(json.dumps(DENSE_CFG))
    (d / "sparse_config.json").write_text(json.dumps(SPARSE_CFG))
    v["model"] = d / "dense.h5"
    b.ok("init", "--config", v["config"], "--seed", 1, "--out", v["model"])
    v["sparse"] = d / "sparse.h5"
    b.ok("init", "--config", d / "sparse_config.json", "--seed", 2, "--out", v["sparse"])
    v["corpus"] = d / "corpus.txt"
    ascii_text(v["corpus"], 4000, 0)
    v["activations"] = d / "acts_dense.h5"
    b.ok("capture", "--model", v["model"], "--sites", "resid", "--corpus", "synthetic", "--tokens", 1280, "--seq-len", 64,
         "--out", v["activations"], "--threads", 1)
    v["sparse_activations"] = d / "acts_sparse.h5"
    b.ok("capture", "--model", v["sparse"], "--sites", "resid", "--corpus", "synthetic", "--tokens", 1280, "--seq-len", 64,
         "--out", v["sparse_activations"], "--threads", 1)
    v["bridge"] = d / "bridge.h5"
    b.ok("fit", "--dense", v["model"], "--sparse", v["sparse"], "--dense-acts", v["activations"],
         "--sparse-acts", v["sparse_activations"], "--out", v["bridge"], "--threads", 1)
    v["safetensors"] = d / "dense.safetensors"
    b.ok("export", "safetensors", "--model", v["model"], "--out", v["safetensors"])
    v["recipe"] = d / "recipe.json"
    v["recipe"].write_text(json.dumps(RECIPE))
    v["trained"] = d / "trained.h5"
    b.ok("train", "--recipe", v["recipe"], "--out", v["trained"], "--threads", 1)
    v["circuit"] = d / "circuit.json"
    b.ok("circuit", "--model", v["sparse"], "--task", "bracket_counting", "--steps", 2, "--pairs", 2, "--eval-pairs", 8,
         "--target-loss", 1000, "--out", v["circuit"], "--threads", 1)
    # A random model's circuit prunes every node; the dilution study needs attention writes,
    # so one is added in the layout `circuit` writes.
    doc = json.loads(v["circuit"].read_text())
    doc["nodes"].append({"id": "0.attn_out:3", "index": 3, "location": "0.attn_out", "reads": [], "reads_count": 0,
                         "writes": [], "writes_count": 0})
    doc["node_count"] = len(doc["nodes"])
    v["circuit"].write_text(json.dumps(doc, indent=1))
    v["circuits"] = d / "circuits"
    v["circuits"].mkdir()
    shutil.copy(v["circuit"], v["circuits"] / "sparse_bracket_counting.json")
    v["settings"] = d / "demo.json"
    v["settings"].write_text(json.dumps({"steering_site": "blocks.0.hook_resid_mid", "steering_source": "sparse",
                                         "steering_rescale": "rms", "steering_rank": "separation",
                                         "dilution_lengths": [4, 8]}))
    v["basis"] = d / "basis.h5"
    with h5py.File(v["basis"], "w") as f:
        f["B"] = np.eye(2, 16, dtype=np.float32)
    # A circuit_sparsity checkpoint folder (torch zip + its config), from the committed fixture.
    v["pt_folder"] = d / "cs"
    shutil.copytree(ROOT / "Tests" / "fixtures" / "circuit_sparsity" / "tiny", v["pt_folder"])
    v["pt"] = v["pt_folder"] / "final_model.pt"
    return v


# --------------------------------------------------------------------------------------------
# Corruptions: each writes a bad copy of a valid file at `dst` (or leaves it absent).


def copy(src, dst):
    if Path(src).is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)


def truncated(fraction=None, size=None):
    def make(src, dst, v):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: size if size is not None else int(len(data) * fraction)])
    return make


def empty(src, dst, v):
    Path(dst).write_bytes(b"")


def random_bytes(src, dst, v):
    Path(dst).write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def missing(src, dst, v):
    pass


def other(kind):
    def make(src, dst, v):
        copy(v[kind], dst)
    return make


def h5_edit(edit):
    def make(src, dst, v):
        copy(src, dst)
        with h5py.File(dst, "r+") as f:
            edit(f)
    return make


def set_attr(f, name, value):
    """Replaces an attribute keeping its stored type (our strings are fixed-length)."""
    old = f.attrs.get_id(name).dtype if name in f.attrs else None
    del f.attrs[name]
    if isinstance(value, str) and old is not None and old.kind == "S":
        f.attrs.create(name, np.bytes_(value.encode()))
    else:
        f.attrs[name] = value


def replace_dataset(f, name, data):
    chunks, maxshape = f[name].chunks, f[name].maxshape
    del f[name]
    if chunks and data.ndim == len(chunks):
        f.create_dataset(name, data=data, chunks=chunks, maxshape=(None,) + tuple(maxshape[1:]))
    else:
        f.create_dataset(name, data=data)


def poke(name, value, index=None):
    """Writes `value` into one element of dataset `name` (the middle row for 2-d data)."""
    def edit(f):
        a = f[name][...]
        flat = a.reshape(-1)
        i = index if index is not None else (a.shape[0] // 2) * (a.shape[1] if a.ndim > 1 else 1)
        flat[i] = value
        f[name][...] = a
    return edit


def hdf5_corruptions(kind, dataset, attribute, json_attribute, others):
    """The common HDF5 cases for one of our file kinds; `dataset` is a float tensor to damage."""
    cases = {
        "missing file": missing, "empty": empty, "random bytes": random_bytes,
        "truncated 256 B": truncated(size=256), "truncated 25%": truncated(0.25),
        "truncated 50%": truncated(0.5), "truncated 90%": truncated(0.9),
        "missing dataset": h5_edit(lambda f: f.__delitem__(dataset)),
        "missing attribute": h5_edit(lambda f: f.attrs.__delitem__(attribute)),
        "wrong dtype": h5_edit(lambda f: replace_dataset(f, dataset, f[dataset][...].astype(np.int32))),
        "wrong shape": h5_edit(lambda f: replace_dataset(f, dataset, np.ones(
            f[dataset].shape[:-1] + (f[dataset].shape[-1] - 1,), np.float32))),
        "NaN": h5_edit(poke(dataset, np.nan)),
        "Inf": h5_edit(poke(dataset, -np.inf)),
    }
    if json_attribute:
        cases["garbled JSON attribute"] = h5_edit(lambda f: set_attr(f, json_attribute, "{\"n_layer\": "))
    if kind != "basis":
        cases["future format_version"] = h5_edit(lambda f: set_attr(f, "format_version", np.int64(99)))
    for o in others:
        cases[f"given {o}"] = other(o)
    return cases


def st_rewrite(change):
    """Rewrites a safetensors file with its header (dict) and data (bytearray) changed."""
    def make(src, dst, v):
        raw = Path(src).read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        header, data = json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])
        names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
        header, data = change(header, data, names)
        h = json.dumps(header).encode()
        Path(dst).write_bytes(struct.pack("<Q", len(h)) + h + bytes(data))
    return make


def st_overlap(h, d, names):
    a, b = names[0], names[1]
    h[b]["data_offsets"] = [h[a]["data_offsets"][0], h[a]["data_offsets"][0] + (h[b]["data_offsets"][1] - h[b]["data_offsets"][0])]
    return h, d


def st_out_of_range(h, d, names):
    last = names[-1]
    h[last]["data_offsets"] = [h[last]["data_offsets"][0], len(d) + 64]
    return h, d


def st_shape(h, d, names):
    h[names[0]]["shape"] = [s + 1 for s in h[names[0]]["shape"]]
    return h, d


def st_dtype(h, d, names):
    h[names[0]]["dtype"] = "I32"
    return h, d


def st_drop(h, d, names):
    del h[names[0]]
    return h, d


def st_value(value):
    def change(h, d, names):
        begin = h[names[0]]["data_offsets"][0]
        d[begin:begin + 4] = struct.pack("<f", value)
        return h, d
    return change


def st_header_length(src, dst, v):
    raw = Path(src).read_bytes()
    Path(dst).write_bytes(struct.pack("<Q", 10 ** 12) + raw[8:])


def st_header_not_json(src, dst, v):
    raw = Path(src).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    Path(dst).write_bytes(raw[:8] + b"{" * n + raw[8 + n:])


def zip_edit(change):
    """Rewrites a torch zip with one member's bytes changed."""
    def make(src, dst, v):
        import zipfile
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                zout.writestr(info, change(info.filename, zin.read(info.filename)))
    return make


def pt_value(value):
    def change(name, data):
        if re.search(r"/data/\d+$", name) and len(data) >= 4:
            return struct.pack("<f", value) + data[4:]
        return data
    return change


def pt_drop_pickle(src, dst, v):
    import zipfile
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith("data.pkl"):
                zout.writestr(info, zin.read(info.filename))


def json_edit(change):
    def make(src, dst, v):
        doc = json.loads(Path(src).read_text())
        Path(dst).write_text(change(doc) if callable(change) else change)
    return make


def text(content):
    def make(src, dst, v):
        Path(dst).write_text(content)
    return make


def json_corruptions(others, drop, wrong_type, huge):
    """`drop`: a required field; `wrong_type`: (field, value); `huge`: a numeric field set to 1e999 (Inf)."""
    def without(doc):
        doc.pop(drop)
        return json.dumps(doc)

    def retyped(doc):
        doc[wrong_type[0]] = wrong_type[1]
        return json.dumps(doc)

    def infinite(doc):
        return json.dumps(doc).replace(json.dumps({huge: doc[huge]})[1:-1], f'"{huge}": 1e999', 1)

    cases = {"missing file": missing, "empty": empty, "random bytes": random_bytes, "truncated 50%": truncated(0.5),
             "not an object": text("[1, 2, 3]"), "missing field": json_edit(without),
             "wrong type": json_edit(retyped), "Inf value": json_edit(infinite), "NaN literal": json_edit(
                 lambda d: json.dumps(d).replace(json.dumps({huge: d[huge]})[1:-1], f'"{huge}": NaN', 1))}
    for o in others:
        cases[f"given {o}"] = other(o)
    return cases


MODEL = lambda: hdf5_corruptions("model", "blocks/0/attn/W_Q", "config", "config", ["activations", "bridge", "safetensors"])
SPARSE = lambda: {k: c for k, c in MODEL().items()}
ACTS = lambda: hdf5_corruptions("activations", "sites/blocks.0.hook_resid_mid", "rows_complete", "model_config",
                                ["model", "bridge"])
BRIDGE = lambda: hdf5_corruptions("bridge", "sites/blocks.0.hook_resid_mid/encoder/W", "dense_config", "sparse_config",
                                  ["model", "activations"])
BASIS = lambda: {k: c for k, c in hdf5_corruptions("basis", "B", None, None, ["model"]).items()
                 if k not in ("missing attribute",)}

SAFETENSORS = lambda: {
    "missing file": missing, "empty": empty, "random bytes": random_bytes, "truncated 4 B": truncated(size=4),
    "truncated in header": truncated(size=40), "truncated in data": truncated(0.9), "given model (HDF5)": other("model"),
    "header length past end": st_header_length, "header not JSON": st_header_not_json,
    "overlapping offsets": st_rewrite(st_overlap), "offsets out of range": st_rewrite(st_out_of_range),
    "wrong shape": st_rewrite(st_shape), "wrong dtype": st_rewrite(st_dtype), "missing tensor": st_rewrite(st_drop),
    "NaN": st_rewrite(st_value(float("nan"))), "Inf": st_rewrite(st_value(float("inf"))),
}
PT = lambda: {
    "missing file": missing, "empty": empty, "random bytes": random_bytes, "truncated 25%": truncated(0.25),
    "truncated 50%": truncated(0.5), "truncated 90%": truncated(0.9), "given model (HDF5)": other("model"),
    "missing pickle": pt_drop_pickle, "NaN": zip_edit(pt_value(float("nan"))), "Inf": zip_edit(pt_value(float("inf"))),
}
CONFIG = lambda: json_corruptions(["recipe", "model"], "d_model", ("n_head", "four"), "d_mlp")
RECIPE_CASES = lambda: {**json_corruptions(["config", "circuit", "model"], "steps", ("lr", "fast"), "lr"),
                        "future model field": json_edit(lambda d: json.dumps({**d, "model": {**d["model"], "n_layers": 2}}))}
SETTINGS = lambda: {k: c for k, c in json_corruptions(["config", "circuit", "model"], "steering_site",
                                                     ("dilution_lengths", "long"), "dilution_lengths").items()
                    if k not in ("Inf value", "NaN literal")} | {
    "negative length": json_edit(lambda d: json.dumps({**d, "dilution_lengths": [-4, 8]})),
    "huge length": json_edit(lambda d: json.dumps({**d, "dilution_lengths": [4, 1e300]})),
}
CIRCUIT = lambda: {
    "missing file": missing, "empty": empty, "random bytes": random_bytes, "truncated 50%": truncated(0.5),
    "not an object": text("[1, 2, 3]"), "given config": other("config"), "given model": other("model"),
    "no nodes": json_edit(lambda d: json.dumps({k: x for k, x in d.items() if k != "nodes"})),
    "channel out of range": json_edit(lambda d: json.dumps({**d, "nodes": [
        {**n, "index": 10 ** 6} if n.get("location", "").endswith("attn_out") else n for n in d["nodes"]]})),
    "channel Inf": json_edit(lambda d: json.dumps({**d, "nodes": [
        {**n, "index": 1e300} if n.get("location", "").endswith("attn_out") else n for n in d["nodes"]]})),
    "layer out of range": json_edit(lambda d: json.dumps({**d, "nodes": [
        {**n, "location": "7.attn_out"} if n.get("location", "").endswith("attn_out") else n for n in d["nodes"]]})),
    "other task": json_edit(lambda d: json.dumps({**d, "task": "single_double_quote"})),
}
CORPUS = lambda: {"missing file": missing, "empty": empty, "random bytes": random_bytes, "given model": other("model"),
                  "NUL bytes": lambda s, d, v: Path(d).write_bytes(b"x = 1\n\0\0\0\n" * 50)}


# --------------------------------------------------------------------------------------------
# Slots: a command line with one file argument {F}; the other files are valid; {O} is an empty
# output folder that must still be empty (of files) after the failure.

TEXT = "x = 'a"
SITE = "blocks.0.hook_resid_mid"


def slots(v):
    m, s, b, c = v["model"], v["sparse"], v["bridge"], v["corpus"]
    demo = ["demo", "--quick", "--notebook", "", "--circuits", v["circuits"], "--threads", 1, "--out", "{O}/run"]
    settings = ["--settings", v["settings"]]
    model_lines = {
        "info": ["info", "{F}"],
        "run": ["run", "--model", "{F}", "--text", TEXT],
        "tokenize": ["tokenize", "--model", "{F}", "--text", TEXT],
        "grad": ["grad", "--model", "{F}", "--text", TEXT, "--sites", "resid", "--out", "{O}/g.h5"],
        "capture": ["capture", "--model", "{F}", "--sites", "resid", "--corpus", c, "--tokens", 128, "--seq-len", 64,
                    "--threads", 1, "--out", "{O}/a.h5"],
        "export safetensors": ["export", "safetensors", "--model", "{F}", "--out", "{O}/m.safetensors"],
        "tasks eval": ["tasks", "eval", "--model", "{F}", "--task", "single_double_quote", "--count", 2],
        "attribute": ["attribute", "--model", "{F}", "--text", TEXT, "--target", "'"],
        "faithfulness": ["faithfulness", "--model", "{F}", "--task", "single_double_quote", "--pairs", 2, "--ks", 1,
                         "--threads", 1],
        "circuit": ["circuit", "--model", "{F}", "--task", "bracket_counting", "--steps", 2, "--pairs", 2,
                    "--target-loss", 1000, "--threads", 1, "--out", "{O}/c.json", "--dot", "{O}/c.dot"],
        "fit --dense": ["fit", "--dense", "{F}", "--sparse", s, "--tokens", 1280, "--seq-len", 64, "--threads", 1,
                        "--out", "{O}/b.h5"],
        "splice --dense": ["splice", "--bridge", b, "--dense", "{F}", "--sparse", s, "--site", SITE, "--tokens", 128,
                           "--seq-len", 64, "--threads", 1],
        "steer --dense": ["steer", "--dense", "{F}", "--sparse", s, "--bridge", b, "--site", SITE, "--pairs", 2,
                          "--strengths", "0:1:1", "--threads", 1],
        "dilution --dense": ["dilution", "--dense", "{F}", "--sparse", s, "--bridge", b, "--lengths", "4:8:4",
                             "--pairs", 2, "--threads", 1],
        "demo --dense": demo + settings + ["--dense", "{F}", "--sparse", s, "--bridge", b],
    }
    sparse_lines = {
        "fit --sparse": ["fit", "--dense", m, "--sparse", "{F}", "--tokens", 1280, "--seq-len", 64, "--threads", 1,
                         "--out", "{O}/b.h5"],
        "splice --sparse": ["splice", "--bridge", b, "--dense", m, "--sparse", "{F}", "--site", SITE, "--tokens", 128,
                            "--seq-len", 64, "--threads", 1],
        "steer --sparse": ["steer", "--dense", m, "--sparse", "{F}", "--bridge", b, "--site", SITE, "--pairs", 2,
                           "--strengths", "0:1:1", "--threads", 1],
        "dilution --sparse": ["dilution", "--dense", m, "--sparse", "{F}", "--bridge", b, "--lengths", "4:8:4",
                              "--pairs", 2, "--threads", 1],
        "demo --sparse": demo + settings + ["--dense", m, "--sparse", "{F}", "--bridge", b],
    }
    fit_acts = ["fit", "--dense", m, "--sparse", s, "--threads", 1, "--out", "{O}/b.h5"]
    bridge_lines = {
        "info": ["info", "{F}"],
        "splice --bridge": ["splice", "--bridge", "{F}", "--dense", m, "--sparse", s, "--site", SITE, "--tokens", 128,
                            "--seq-len", 64, "--threads", 1],
        "steer --bridge": ["steer", "--dense", m, "--sparse", s, "--bridge", "{F}", "--site", SITE, "--pairs", 2,
                           "--strengths", "0:1:1", "--threads", 1],
        "dilution --bridge": ["dilution", "--dense", m, "--sparse", s, "--bridge", "{F}", "--lengths", "4:8:4",
                              "--pairs", 2, "--threads", 1],
        "demo --bridge": demo + settings + ["--dense", m, "--sparse", s, "--bridge", "{F}"],
    }
    table = []
    for name, line in model_lines.items():
        table.append((name, "model", "model", line))
    for name, line in sparse_lines.items():
        table.append((name, "model", "sparse", line))
    table += [
        ("info", "activations", "activations", ["info", "{F}"]),
        ("fit --dense-acts", "activations", "activations", fit_acts + ["--dense-acts", "{F}", "--sparse-acts", v["sparse_activations"]]),
        ("fit --sparse-acts", "activations", "sparse_activations", fit_acts + ["--dense-acts", v["activations"], "--sparse-acts", "{F}"]),
    ]
    table += [(name, "bridge", "bridge", line) for name, line in bridge_lines.items()]
    table += [
        ("convert --from", "safetensors", "safetensors", ["convert", "--from", "{F}", "--out", "{O}/m.h5"]),
        ("info", "safetensors", "safetensors", ["info", "{F}"]),
        ("run --model", "safetensors", "safetensors", ["run", "--model", "{F}", "--text", TEXT]),
        ("convert --from", "pt", "pt", ["convert", "--from", "{F}", "--out", "{O}/m.h5"]),
        ("info", "pt", "pt", ["info", "{F}"]),
        ("init --config", "config", "config", ["init", "--config", "{F}", "--seed", 1, "--out", "{O}/m.h5"]),
        ("train --recipe", "recipe", "recipe", ["train", "--recipe", "{F}", "--threads", 1, "--out", "{O}/m.h5"]),
        ("dilution --circuit", "circuit", "circuit", ["dilution", "--dense", m, "--sparse", s, "--bridge", b,
                                                      "--circuit", "{F}", "--lengths", "4:8:4", "--pairs", 2, "--threads", 1]),
        ("demo --circuits", "circuit", "circuit", demo + settings + ["--dense", m, "--sparse", s, "--bridge", b]),
        ("demo --settings", "settings", "settings", demo + ["--settings", "{F}", "--dense", m, "--sparse", s, "--bridge", b]),
        ("capture --corpus", "corpus", "corpus", ["capture", "--model", m, "--sites", "resid", "--corpus", "{F}",
                                                  "--tokens", 128, "--seq-len", 64, "--threads", 1, "--out", "{O}/a.h5"]),
        ("tokenize --file", "corpus", "corpus", ["tokenize", "--model", m, "--file", "{F}"]),
        ("attribute --basis", "basis", "basis", ["attribute", "--model", m, "--text", TEXT, "--target", "'",
                                                 "--level", "subspace", "--basis", "{F}:B"]),
    ]
    return table


# Cases that are not mistakes for that command (documented in docs/reliability.md).
NOT_AN_ERROR = {
    ("info", "activations", "NaN"): "info summarises an activation file's layout, it does not read the values",
    ("info", "activations", "Inf"): "info summarises an activation file's layout, it does not read the values",
    ("info", "safetensors", "NaN"): "info lists a safetensors header; values are checked by convert/run",
    ("info", "safetensors", "Inf"): "info lists a safetensors header; values are checked by convert/run",
    ("info", "safetensors", "wrong dtype"): "info lists any safetensors file, integer tensors included",
    ("info", "safetensors", "missing tensor"): "info lists any safetensors file, whatever tensors it holds",
    ("demo --circuits", "circuit", "missing file"): "the demo's circuit files are optional (it skips absent ones)",
    ("tokenize --file", "corpus", "empty"): "tokenize gives the (empty) token list of exactly the text it is given",
    ("tokenize --file", "corpus", "NUL bytes"): "tokenize gives the tokens of exactly the text it is given (NUL is id 0)",
}

CORRUPTIONS = {"model": MODEL, "activations": ACTS, "bridge": BRIDGE, "safetensors": SAFETENSORS, "pt": PT,
               "config": CONFIG, "recipe": RECIPE_CASES, "circuit": CIRCUIT, "settings": SETTINGS, "corpus": CORPUS,
               "basis": BASIS}
SUFFIX = {"model": ".h5", "activations": ".h5", "bridge": ".h5", "basis": ".h5", "safetensors": ".safetensors",
          "pt": ".pt", "corpus": ".txt"}


# --------------------------------------------------------------------------------------------
# Running and judging one case


def judge(code, err, bad_path, out_dir):
    """The reasons a failure was not clean (empty when it was)."""
    problems = []
    if code is None:
        return ["timed out"]
    if code < 0 or code >= 128:
        problems.append(f"killed by signal {-code if code < 0 else code - 128}")
    elif code == 0:
        problems.append("exit code 0")
    lines = [l for l in err.splitlines() if l.strip()]
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    elif not lines[0].startswith("sparsebridge: error:"):
        problems.append("stderr line does not start with 'sparsebridge: error:'")
    elif bad_path.name not in lines[0]:
        problems.append("error does not name the file")
    if "Fatal error" in err or "Stack dump" in err or "Current stack trace" in err:
        problems.append("crash report")
    left = [str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if not p.is_dir()]
    if left:
        problems.append("left " + ", ".join(sorted(left)))
    return problems


def run_case(b, v, work, index, line, kind, base, corruption):
    case = work / f"case{index:04d}"
    in_dir, out_dir = case / "in", case / "out"
    in_dir.mkdir(parents=True)
    out_dir.mkdir()
    if kind == "circuit" and "--circuits" in line:
        # The demo reads circuits from a folder by name.
        bad = in_dir / "circuits" / "sparse_bracket_counting.json"
        bad.parent.mkdir()
        corruption(v[base], bad, v)
        args = [str(in_dir / "circuits") if a == str(v["circuits"]) else a for a in map(str, line)]
    else:
        suffix = SUFFIX.get(kind, ".json")
        bad = in_dir / ("bad_" + Path(v[base]).stem + suffix)
        corruption(v[base], bad, v)
        if kind == "pt":
            shutil.copy(Path(v[base]).parent / "beeg_config.json", in_dir)
        args = [str(a).replace("{F}", str(bad)) for a in line]
    args = [a.replace("{O}", str(out_dir)) for a in args]
    code, _, err, seconds = b.run(args)
    problems = judge(code, err, bad, out_dir)
    return problems, err.strip().splitlines()[-1] if err.strip() else "", seconds, args


def valid_run(b, v, work, line, base, index):
    """The slot with its valid file must succeed, or its failures would prove nothing."""
    out_dir = work / f"valid{index:04d}"
    out_dir.mkdir()
    args = [str(a).replace("{F}", str(v[base])).replace("{O}", str(out_dir)) for a in line]
    code, _, err, _ = b.run(args, timeout=600)
    return code == 0, err.strip()[-300:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / ".build" / "release" / "sparsebridge"))
    ap.add_argument("--only", help="regex over 'command / file kind / corruption'")
    ap.add_argument("--skip-valid", action="store_true", help="do not check that every slot succeeds on valid files")
    ap.add_argument("--keep", help="work folder to keep (default: a temporary one, removed)")
    ap.add_argument("--verbose", action="store_true", help="print each case's error line")
    a = ap.parse_args()
    b = Binary(a.bin)
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bad-input-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.time()
        v = build_valid(b, work / "valid")
        print(f"valid files built in {time.time() - started:.1f} s", flush=True)
        pattern = re.compile(a.only) if a.only else None
        rows, tried, passed, failures, invalid = [], 0, 0, [], []
        index = 0
        for name, kind, base, line in slots(v):
            cases = CORRUPTIONS[kind]()
            if line[0] == "info":
                # `info` reads every one of our kinds: another kind is not a mistake there.
                cases = {c: f for c, f in cases.items() if not c.startswith("given") or kind == "pt"}
            cases = {c: f for c, f in cases.items() if (name, kind, c) not in NOT_AN_ERROR}
            selected = [(c, f) for c, f in cases.items() if not pattern or pattern.search(f"{name} / {kind} / {c}")]
            if not selected:
                continue
            if not a.skip_valid:
                ok, err = valid_run(b, v, work, line, base, index)
                if not ok:
                    invalid.append(f"{name} [{kind}] fails on its valid file: {err}")
            cells = []
            for cname, make in selected:
                index += 1
                problems, last, seconds, args = run_case(b, v, work, index, line, kind, base, make)
                tried += 1
                if problems:
                    failures.append(f"{name} [{kind}] {cname}: {'; '.join(problems)}\n    sparsebridge {' '.join(args)}\n    stderr: {last}")
                else:
                    passed += 1
                if a.verbose:
                    print(f"  {name} [{kind}] {cname} ({seconds:.2f} s): {last}", flush=True)
                cells.append((cname, not problems))
            rows.append((name, kind, cells))
            mark = " ".join("." if ok else "F" for _, ok in cells)
            print(f"{name + ' [' + kind + ']':34} {mark}", flush=True)
        print()
        print_table(rows)
        print("Not counted (not a mistake for that command):")
        for (n, k, c), why in NOT_AN_ERROR.items():
            print(f"  {n} [{k}] {c}: {why}")
        for f in failures:
            print("FAIL", f)
        for i in invalid:
            print("INVALID", i)
        print(f"\n{tried} cases tried, {passed} passed ({len(rows)} command/file slots, {time.time() - started:.0f} s)")
        return 0 if passed == tried and not invalid else 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def print_table(rows):
    """One block per file kind: commands down, corruptions across, pass/FAIL in the cells."""
    kinds = []
    for _, kind, _ in rows:
        if kind not in kinds:
            kinds.append(kind)
    for kind in kinds:
        block = [(n, cells) for n, k, cells in rows if k == kind]
        names = [c for c, _ in block[0][1]]
        print(f"== {kind}: " + ", ".join(f"{i + 1}={c}" for i, c in enumerate(names)))
        width = max(len(n) for n, _ in block)
        print(" " * width + "  " + " ".join(f"{i + 1:>4}" for i in range(len(names))))
        for n, cells in block:
            print(n.ljust(width) + "  " + " ".join(f"{'pass' if ok else 'FAIL':>4}" for _, ok in cells))
        print()


if __name__ == "__main__":
    sys.exit(main())
