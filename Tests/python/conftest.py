import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SPARSEBRIDGE_BIN", str(ROOT / ".build" / "release" / "sparsebridge"))


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr


def run_cli(*args, check=True, timeout=300):
    proc = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"sparsebridge {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return Result(proc)


@pytest.fixture
def cli():
    if not os.path.exists(BIN):
        pytest.fail(f"{BIN} is missing: build with `swift build -c release` first")
    return run_cli


def ascii_corpus(path, n_chars, seed):
    """Printable ASCII text with newlines, deterministic per seed."""
    import numpy as np
    rng = np.random.default_rng(seed)
    codes = rng.integers(32, 127, size=n_chars)
    codes[rng.random(n_chars) < 0.05] = 10
    pathlib.Path(path).write_bytes(bytes(codes.astype("uint8")))
