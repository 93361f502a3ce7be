"""Regression tests for what fuzzing found (fuzz/, docs/reliability.md): each feeds the
exact kind of input that crashed or misbehaved and expects one clean line of error."""
import json
import pathlib
import subprocess

import pytest

from conftest import BIN

from test_bad_input import assert_clean_failure

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FINDINGS = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"


def write_model(tmp_path, cli, name="m"):
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"n_layer": 1, "d_model": 8, "n_head": 2, "d_mlp": 16, "n_ctx": 8}))
    model = tmp_path / f"{name}.h5"
    cli("init", "--config", config, "--seed", 1, "--out", model)
    return model


def test_config_key_with_a_newline_gives_one_line(tmp_path, cli):
    # fuzz-json's first input: an unknown key quoted in the error split the error in two.
    config = tmp_path / "c.json"
    config.write_bytes(b'{"' + b"\\\\" * 22 + b'\\n_,ayer":08}\n')
    out = tmp_path / "m.h5"
    r = cli("init", "--config", config, "--seed", 1, "--out", out, check=False)
    assert_clean_failure(r, "c.json", "unknown config field", "\\n_,ayer", out=out)


def test_files_are_written_in_the_checksummed_format(tmp_path, cli):
    # libhdf5 1.10 crashed (heap overflow, SIGSEGV) on a fuzzed model file of the original
    # format, whose object headers carry no checksum; ours now use the 1.8 format (superblock
    # version 2: version 3 would keep a killed writer's file from being opened for --resume).
    data = write_model(tmp_path, cli).read_bytes()
    assert data[:8] == HDF5_SIGNATURE
    assert data[8] == 2, f"superblock version {data[8]}"
    assert b"OHDR" in data


@pytest.mark.parametrize("kind", ["model", "bridge"])
def test_damaged_object_headers_are_refused(tmp_path, cli, kind):
    if kind == "model":
        path = write_model(tmp_path, cli)
        command = ["info"]
    else:
        dense, sparse = write_model(tmp_path, cli, "d"), write_model(tmp_path, cli, "s")
        path = tmp_path / "b.h5"
        cli("fit", "--dense", dense, "--sparse", sparse, "--tokens", 64, "--seq-len", 8,
            "--sites", "blocks.0.hook_resid_post", "--ridge", "0.01", "--out", path, "--threads", 1)
        command = ["info"]
    data = path.read_bytes()
    headers = [i for i in range(len(data)) if data.startswith(b"OHDR", i)]
    assert len(headers) >= 3
    for n, at in enumerate(headers):
        damaged = bytearray(data)
        damaged[at + 12] ^= 0x5A   # inside the header's first chunk, which its checksum covers
        bad = tmp_path / f"damaged{n}.h5"
        bad.write_bytes(damaged)
        r = cli(*command, bad, check=False)
        assert r.code == 1, (at, r.code, r.err)
        assert_clean_failure(r, bad.name)


# fuzz-hdf5-files inputs that crash or hang inside libhdf5 1.10.8 (Debian 12) before any of
# our checks could run: a damaged attribute message in an original-format object header (no
# checksum there), and damaged global heap collections, where variable-length strings live
# and which no HDF5 format checksums. The CLI has a process of its own read every file's
# metadata first (MetadataProbe), so these are clean errors: a crash is reported with its
# signal, a hang after 10 s.
@pytest.mark.parametrize("name,needle", [("libhdf5-attribute-message.h5", "crashed reading its metadata (signal 11)"),
                                         ("libhdf5-global-heap-overflow.h5", "crashed reading its metadata (signal 11)"),
                                         ("libhdf5-global-heap-hang.h5", "still reading its metadata after 10 s")])
def test_library_findings_give_a_clean_error(tmp_path, cli, name, needle):
    # `cli` fails the test when the binary is missing.
    path = tmp_path / name
    path.write_bytes((FINDINGS / name).read_bytes())
    try:
        proc = subprocess.run([BIN, "info", str(path)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: no answer in 60 s")
    assert proc.returncode == 1, f"{name}: exit status {proc.returncode}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "damaged file" in lines[0] and needle in lines[0], proc.stderr


def test_a_damaged_input_leaves_no_output(tmp_path, cli):
    # The probe refuses the file before a command starts writing: `run` on a model whose
    # metadata crashes libhdf5 exits with one line and makes nothing.
    path = tmp_path / "m.h5"
    path.write_bytes((FINDINGS / "libhdf5-global-heap-overflow.h5").read_bytes())
    out = tmp_path / "out.h5"
    r = cli("capture", "--model", path, "--tokens", 16, "--seq-len", 8,
            "--sites", "blocks.0.hook_resid_post", "--corpus", "synthetic", "--out", out, check=False)
    assert_clean_failure(r, "m.h5", "damaged file", out=out)


def test_the_probe_passes_healthy_files(tmp_path, cli):
    # Every healthy file still opens: the probe reads it and says nothing.
    model = write_model(tmp_path, cli)
    r = cli("info", model)
    assert r.code == 0 and r.err == ""
