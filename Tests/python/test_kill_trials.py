"""Interruption (issue 9, items 3 and 5), short versions of the scripts' full runs: SIGKILL at
random moments never leaves a damaged file under a final name and resumes to the same bytes;
a second writer to a busy output is refused; reruns give byte-identical files."""
import re
import subprocess
import sys
import time

import h5py
import numpy as np

from conftest import BIN, ROOT
from test_parity import make_model

CFG = dict(n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=256)


def script(name, *args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), "--bin", BIN, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_kill_trials_every_kill_survived():
    p = script("kill_trials.py", "--trials", 3, "--seed", 7, "--size", "small")
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"^(\d+) kills, (\d+) survived$", p.stdout, re.M)
    assert m and int(m.group(1)) == 12 and m.group(1) == m.group(2), p.stdout


def test_reruns_are_byte_identical():
    p = script("determinism.py", "--threads", "1,2", "--size", "small")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "12 of 12 files bit-identical across reruns" in p.stdout, p.stdout


def wait_for(predicate, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_second_writer_is_refused_and_the_first_finishes(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", CFG)
    args = ["capture", "--model", model, "--sites", "resid", "--corpus", "synthetic", "--tokens", 256 * 2400,
            "--batch", 8, "--threads", 1]
    out, lock = tmp_path / "acts.h5", tmp_path / ".acts.h5.lock"
    first = subprocess.Popen([BIN, *map(str, args), "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid))
    # A resume of the same capture, and another command, into the busy output.
    for second in (args + ["--resume"], ["fit", "--dense", model, "--sparse", model, "--tokens", 2048]):
        r = cli(*second, "--out", out, check=False)
        assert r.code != 0, "the second writer must be refused"
        assert r.err.strip() == f"sparsebridge: error: {out}: is being written by another sparsebridge process " \
                                f"(pid {first.pid}); wait for it to finish or stop it", r.err
        assert first.poll() is None, "the refusal came after the first writer ended: make its capture longer"
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert not lock.exists() and not (tmp_path / ".acts.h5.partial").exists()
    with h5py.File(out, "r") as f:
        assert f.attrs["rows_complete"] == 256 * 2400 == f["sites/blocks.0.hook_resid_pre"].shape[0]
        rows = f["tokens"][:]
    # The refused --resume must not have touched the partial file: the tokens are those of a clean run.
    alone = tmp_path / "alone.h5"
    cli(*args[:8], 256 * 8, *args[9:], "--out", alone)
    with h5py.File(alone, "r") as f:
        assert np.array_equal(f["tokens"][:], rows[:8])


def test_a_killed_writer_leaves_no_lock(tmp_path, cli):
    _, model = make_model(tmp_path, cli, "m", CFG)
    args = ["capture", "--model", model, "--sites", "resid", "--corpus", "synthetic", "--tokens", 256 * 2400,
            "--batch", 8, "--threads", 1, "--out", tmp_path / "acts.h5"]
    lock = tmp_path / ".acts.h5.lock"
    first = subprocess.Popen([BIN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid))
    first.kill()
    first.wait()
    assert lock.exists(), "SIGKILL runs no exit handler: the (unlocked) file stays"
    r = cli(*args[:8], 256 * 8, *args[9:])
    assert "wrote" in r.out and not lock.exists()
