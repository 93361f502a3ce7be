"""The bad-input matrix (scripts/bad_input_matrix.py) and writing onto a full disk."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, ROOT, ascii_corpus
from test_bad_input import assert_clean_failure


def test_every_command_refuses_every_bad_file_cleanly():
    """The whole matrix (about a minute): every case must fail cleanly."""
    if not os.path.exists(BIN):
        pytest.fail(f"{BIN} is missing: build with `swift build -c release` first")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bad_input_matrix.py"), "--bin", BIN],
                       capture_output=True, text=True, timeout=900)
    summary = [l for l in p.stdout.splitlines() if "cases tried" in l]
    assert summary, p.stdout[-3000:] + p.stderr[-3000:]
    tried, passed = (int(x) for x in summary[-1].split(" cases tried, ")[0:1] + [summary[-1].split(", ")[1].split()[0]])
    assert tried > 500 and passed == tried and p.returncode == 0, p.stdout[-6000:]


# --- Disk full: a small tmpfs as the output folder -------------------------------------------

@pytest.fixture
def small_disk():
    """A 1 MiB tmpfs, unmounted afterwards (mounting needs root or CAP_SYS_ADMIN)."""
    mount_point = Path(tempfile.mkdtemp(prefix="sb-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if r.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'mount failed'}); the disk-full test needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


BIG = dict(n_layer=2, d_model=128, n_head=4, d_mlp=512, n_ctx=64, vocab=128)   # about 1.6 MB of float32


def assert_nothing_left(folder):
    left = [p.name for p in folder.iterdir()]
    assert not left, f"left behind on the full disk: {left}"


def assert_disk_full_error(r, out):
    assert_clean_failure(r, out.name, out=out)
    assert "no space left on device" in r.err.lower() or "disk full" in r.err.lower(), r.err


def test_init_onto_a_full_disk(tmp_path, cli, small_disk):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(BIG))
    out = small_disk / "m.h5"
    r = cli("init", "--config", cfg, "--seed", 1, "--out", out, check=False)
    assert_disk_full_error(r, out)
    assert_nothing_left(small_disk)


def test_capture_onto_a_full_disk(tmp_path, cli, small_disk):
    model = tmp_path / "m.h5"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(BIG, d_model=64, d_mlp=128)))
    cli("init", "--config", cfg, "--seed", 1, "--out", model)
    out = small_disk / "a.h5"
    # 64 × 128 tokens × (3 sites × 64 floats) ≈ 6 MB: several times the disk.
    r = cli("capture", "--model", model, "--sites", "resid", "--corpus", "synthetic", "--tokens", 64 * 128,
            "--batch", 8, "--threads", 1, "--out", out, check=False)
    assert_disk_full_error(r, out)
    # A capture's temporary is resumable after a kill, but not after a failed write (HDF5's
    # metadata never reached the disk), so it is removed.
    assert_nothing_left(small_disk)


def test_export_safetensors_onto_a_full_disk(tmp_path, cli, small_disk):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(BIG))
    model = tmp_path / "m.h5"
    cli("init", "--config", cfg, "--seed", 1, "--out", model)
    out = small_disk / "m.safetensors"
    r = cli("export", "safetensors", "--model", model, "--out", out, check=False)
    assert_disk_full_error(r, out)
    assert_nothing_left(small_disk)


def test_fit_onto_a_full_disk(tmp_path, cli, small_disk):
    cfgs = {}
    for name, width in (("d", 256), ("s", 384)):
        cfgs[name] = tmp_path / f"{name}.json"
        cfgs[name].write_text(json.dumps(dict(n_layer=2, d_model=width, n_head=4, d_mlp=64, n_ctx=32, vocab=128)))
        cli("init", "--config", cfgs[name], "--seed", 1, "--out", tmp_path / f"{name}.h5")
    # Encoder + decoder at 3 sites: 2 × 3 × 256 × 384 floats ≈ 2.4 MB, more than the disk.
    out = small_disk / "b.h5"
    r = cli("fit", "--dense", tmp_path / "d.h5", "--sparse", tmp_path / "s.h5", "--tokens", 32 * 64, "--ridge", 0.01,
            "--threads", 1, "--out", out, check=False)
    assert_disk_full_error(r, out)
    assert_nothing_left(small_disk)


def test_train_onto_a_full_disk(tmp_path, cli, small_disk):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"model": dict(BIG, n_ctx=32), "seed": 1, "steps": 2, "batch": 2, "seq_len": 16, "lr": 0.001,
                                  "eval_every": 2, "eval_pairs": 4, "checkpoint_every": 1, "heldout_sequences": 2}))
    out = small_disk / "m.h5"
    r = cli("train", "--recipe", recipe, "--threads", 1, "--out", out, check=False)
    assert_disk_full_error(r, out)
    assert_nothing_left(small_disk)
