"""Capture and fitting as one job of two processes under mpirun, against one process on the
same tokens: the virtual activation file h5py reads as one, the bridge from summed
statistics, a failing rank, and a build without MPI refusing mpirun.

Needs the MPI build (`make test-mpi` builds it to .build-mpi): SPARSEBRIDGE_MPI_BIN names
it. Without it these tests are skipped, unless SPARSEBRIDGE_REQUIRE_MPI=1 (make test-mpi)
makes that a failure."""
import json
import os
import pathlib
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from conftest import BIN, ROOT
from test_bridges import SITES, models, read_bridge  # noqa: F401 (models is a fixture)

MPI_BIN = os.environ.get("SPARSEBRIDGE_MPI_BIN", str(ROOT / ".build-mpi" / "release" / "sparsebridge"))
# Two processes of one job with float64 sums added in another order: bridge weights agree
# within 1e-5 of their largest magnitude, held-out NMSE within 1e-9 (docs/scaling.md).
WEIGHT_RTOL, NMSE_ATOL = 1e-5, 1e-9


@pytest.fixture
def mpi():
    missing = None
    if shutil.which("mpirun") is None:
        missing = "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    elif not os.path.exists(MPI_BIN):
        missing = f"{MPI_BIN} is missing (make test-mpi builds it)"
    if missing:
        if os.environ.get("SPARSEBRIDGE_REQUIRE_MPI") == "1":
            pytest.fail(missing)
        pytest.skip(missing)

    def run(*args, np_=2, binary=MPI_BIN, check=True):
        cmd = ["mpirun", "-np", str(np_), "--oversubscribe"]
        if os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        proc = subprocess.run(cmd + [binary, *map(str, args)], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, SPARSEBRIDGE_THREADS="1"))
        if check and proc.returncode != 0:
            raise AssertionError(f"mpirun … {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
        return proc
    return run


# One thread in every process, in the one-process references too: the forward pass's float32
# results depend in their last bits on its thread count.
CAPTURE = ["--corpus", "synthetic", "--seed", 7, "--tokens", 32 * 45, "--seq-len", 32, "--sites", "resid", "--batch", 8,
           "--threads", 1]


def test_two_rank_capture_reads_as_the_one_process_capture(tmp_path, cli, mpi, models):
    dense, _ = models
    one, two = tmp_path / "one" / "acts.h5", tmp_path / "two" / "acts.h5"
    one.parent.mkdir(), two.parent.mkdir()
    cli("capture", "--model", dense, *CAPTURE, "--out", one)
    r = mpi("capture", "--model", dense, *CAPTURE, "--out", two, "--json")
    assert json.loads(r.stdout)["processes"] == 2
    shards = sorted(p.name for p in two.parent.iterdir())
    assert shards == ["acts.h5", "acts.rank0-of-2.h5", "acts.rank1-of-2.h5"]
    with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
        assert b["tokens"].is_virtual and np.array_equal(a["tokens"][:], b["tokens"][:])
        assert b["tokens"].shape == (45, 32)
        for site in SITES:
            assert b["sites"][site].is_virtual and b["sites"][site].shape == a["sites"][site].shape == (45 * 32, 16)
            # Shares start on whole batches: each sequence is computed as in the one-process run.
            np.testing.assert_array_equal(b["sites"][site][:], a["sites"][site][:])
        for key in ("format", "model_sha256", "corpus", "n_ctx", "sites", "sequences_requested", "rows_complete"):
            assert a.attrs[key] == b.attrs[key], key
        prov = json.loads(b.attrs["provenance"])
        assert prov["processes"] == 2
        assert [(s["file"], s["first_sequence"], s["sequences"]) for s in prov["shards"]] == \
            [("acts.rank0-of-2.h5", 0, 24), ("acts.rank1-of-2.h5", 24, 21)]   # whole batches of 8
    # The set of files moves together: the virtual file names its shards relatively.
    moved = tmp_path / "moved"
    shutil.move(two.parent, moved)
    with h5py.File(moved / "acts.h5", "r") as b, h5py.File(one, "r") as a:
        np.testing.assert_array_equal(b["sites"][SITES[2]][:], a["sites"][SITES[2]][:])


def assert_bridges_agree(a, b):
    assert a.keys() == b.keys() == set(SITES)
    for site in a:
        for m in ("encoder", "decoder"):
            (wa, ba, xa), (wb, bb, xb) = a[site][m], b[site][m]
            # The same held-out split, the same λ; the solve agrees to summation order.
            for key in ("train_tokens", "heldout_tokens", "lambda_relative"):
                assert xa[key] == xb[key], (site, m, key)
            assert abs(xa["nmse"] - xb["nmse"]) <= NMSE_ATOL, (site, m)
            assert np.abs(wa - wb).max() <= WEIGHT_RTOL * np.abs(wa).max(), (site, m)
            assert np.abs(ba - bb).max() <= WEIGHT_RTOL * max(np.abs(ba).max(), np.abs(wa).max()), (site, m)


def test_two_rank_fit_equals_one_process_fit(tmp_path, cli, mpi, models):
    dense, sparse = models
    fit = ["--dense", dense, "--sparse", sparse, "--tokens", 32 * 45, "--seq-len", 32, "--seed", 7, "--batch", 8,
           "--threads", 1]
    cli("fit", *fit, "--out", tmp_path / "one.h5")
    r = mpi("fit", *fit, "--out", tmp_path / "two.h5")
    assert r.stdout.count("wrote") == 1   # rank 0 alone solves and writes
    one, two = read_bridge(tmp_path / "one.h5"), read_bridge(tmp_path / "two.h5")
    assert_bridges_agree(one, two)
    with h5py.File(tmp_path / "two.h5", "r") as f:
        assert json.loads(f.attrs["provenance"])["processes"] == 2
    # From the two-rank captures (virtual files over shards), fitted by two ranks again.
    for model, name in ((dense, "d"), (sparse, "s")):
        mpi("capture", "--model", model, *CAPTURE, "--out", tmp_path / f"{name}.h5")
    mpi("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
        "--out", tmp_path / "files.h5")
    assert_bridges_agree(one, read_bridge(tmp_path / "files.h5"))


def test_a_failing_rank_fails_the_job_and_writes_no_bridge(tmp_path, cli, mpi, models):
    dense, sparse = models
    args = ["--corpus", "synthetic", "--seed", 7, "--tokens", 32 * 8, "--seq-len", 32, "--sites", "resid"]
    cli("capture", "--model", dense, *args, "--out", tmp_path / "d.h5")
    cli("capture", "--model", sparse, *args, "--out", tmp_path / "s.h5")
    # A NaN in sequence 6: rank 1's share (batches of 2: sequences 4–7) fails, rank 0's succeeds.
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        f["sites/blocks.1.hook_resid_pre"][6 * 32 + 5, 3] = np.nan
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "b.h5"
    r = mpi("fit", "--dense", dense, "--sparse", sparse, "--dense-acts", tmp_path / "d.h5", "--sparse-acts", tmp_path / "s.h5",
            "--batch", 2, "--out", out, check=False)
    assert r.returncode != 0
    assert "sparsebridge: error: rank 1 of 2: " in r.stderr and "non-finite" in r.stderr and "row 197" in r.stderr
    # No bridge, no partial file. MPI_Abort ends rank 0 as a kill would (no exit handlers), so
    # the empty, unlocked lock file it held may stay (docs/reliability.md, "Output lock").
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".b.h5.lock") == before


def test_a_rank_whose_share_fails_leaves_no_virtual_file(tmp_path, mpi, models):
    dense, _ = models
    corpus = tmp_path / "short.txt"
    corpus.write_text("x = 1\n" * 30)   # 180 tokens: rank 0's 3 sequences of 32, not rank 1's
    out = tmp_path / "acts.h5"
    r = mpi("capture", "--model", dense, "--corpus", corpus, "--tokens", 32 * 6, "--seq-len", 32, "--sites", "resid",
            "--batch", 1, "--out", out, check=False)
    assert r.returncode != 0 and "rank 1 of 2: " in r.stderr and "short.txt" in r.stderr
    assert not out.exists()


def test_a_build_without_mpi_refuses_mpirun(tmp_path, cli, mpi, models):
    dense, _ = models
    r = mpi("capture", "--model", dense, *CAPTURE, "--out", tmp_path / "acts.h5", binary=BIN, check=False)
    assert r.returncode != 0 and "built without MPI" in r.stderr
    assert not any(tmp_path.glob("acts*"))


def test_commands_other_than_capture_and_fit_refuse_mpirun(tmp_path, mpi, models):
    dense, _ = models
    r = mpi("run", "--model", dense, "--text", "x = 1", check=False)
    assert r.returncode != 0 and "only capture and fit run as one job of several processes" in r.stderr
