#!/usr/bin/env python3
"""Kill-and-resume trials (issue 9, item 3).

For each of capture, fit, train and demo: two uninterrupted runs give the reference output
(they must agree byte for byte) and duration (the shorter); then each trial starts the same
command, sends it SIGKILL at a random moment between start and that duration, and checks that

  * every output under its final name is absent or byte-identical to the reference (never a
    half-written or mixed file; for demo every file of the run folder and the notebook),
  * no lock is left held (the `.NAME.lock` beside an output, if still there, can be taken),
  * the train checkpoint, if one is left, opens as an HDF5 checkpoint,
  * the rerun (with --resume where the command offers it) succeeds, and its outputs are
    byte-identical to the reference, with no temporary, checkpoint or lock file left behind.

Odd trials start with the reference outputs already in place (a rerun over old results), so a
kill must also leave the old outputs intact. Prints a table and "N kills, N survived"; exits 1
if any trial failed.

    scripts/kill_trials.py [--bin .build/release/sparsebridge] [--trials 20] [--seed 1] [--size full|small]
"""
import argparse
import fcntl
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Sizes giving runs of roughly 1–3 s on a 2-core machine ("small": well under a second, for the
# pytest); all with --threads 1, so that the reference is reproducible.
SIZES = {
    "full": dict(capture_tokens=393216, fit_tokens=131072, train_steps=240, checkpoint_every=10, demo_quick=False),
    "small": dict(capture_tokens=131072, fit_tokens=32768, train_steps=80, checkpoint_every=5, demo_quick=True),
}
DENSE = {"n_layer": 2, "d_model": 64, "n_head": 4, "d_mlp": 256, "n_ctx": 256, "vocab": 128, "norm": "layer", "activation": "gelu"}
SPARSE = dict(DENSE, d_model=96, d_mlp=384)


def run(bin_path, args, check=True):
    p = subprocess.run([bin_path, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"sparsebridge {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.strip()}")
    return p


class Command:
    """One command under test: its arguments, its outputs (final names) and how to compare them."""

    def __init__(self, name, args, outputs, resumable):
        self.name, self.args, self.outputs, self.resumable = name, args, outputs, resumable


def setup(bin_path, work, size):
    s = SIZES[size]
    inputs = work / "inputs"
    inputs.mkdir()
    (inputs / "dense.json").write_text(json.dumps(DENSE))
    (inputs / "sparse.json").write_text(json.dumps(SPARSE))
    dense, sparse, bridge = inputs / "dense.h5", inputs / "sparse.h5", inputs / "bridge.h5"
    run(bin_path, ["init", "--config", inputs / "dense.json", "--seed", 1, "--out", dense])
    run(bin_path, ["init", "--config", inputs / "sparse.json", "--seed", 2, "--out", sparse])
    run(bin_path, ["fit", "--dense", dense, "--sparse", sparse, "--tokens", 16384, "--threads", 1, "--out", bridge])
    settings = inputs / "demo.json"
    settings.write_text(json.dumps({"steering_site": "blocks.1.hook_resid_pre", "dilution_lengths": [4, 8, 16, 24]}))
    recipe = inputs / "recipe.json"
    recipe.write_text(json.dumps({
        "model": dict(DENSE, d_model=32, d_mlp=128, n_head=2, n_ctx=64), "seed": 3, "steps": s["train_steps"],
        "batch": 16, "seq_len": 64, "lr": 0.003, "warmup_steps": 5, "sparsity": {"target_fraction": 0.25},
        "eval_every": s["train_steps"] // 2, "eval_pairs": 20, "checkpoint_every": s["checkpoint_every"],
        "heldout_sequences": 8}))
    out = work / "out"
    return [
        Command("capture", ["capture", "--model", dense, "--sites", "resid", "--corpus", "synthetic", "--tokens",
                            s["capture_tokens"], "--batch", 8, "--threads", 1, "--out", out / "acts.h5"],
                ["acts.h5"], resumable=True),
        Command("fit", ["fit", "--dense", dense, "--sparse", sparse, "--tokens", s["fit_tokens"], "--threads", 1,
                        "--out", out / "bridge.h5"], ["bridge.h5"], resumable=False),
        Command("train", ["train", "--recipe", recipe, "--threads", 1, "--out", out / "model.h5"], ["model.h5"], resumable=True),
        Command("demo", ["demo", "--out", out / "run", "--notebook", out / "demo.ipynb", "--dense", dense, "--sparse", sparse,
                         "--bridge", bridge, "--settings", settings, "--circuits", inputs, "--threads", 1]
                + (["--quick"] if s["demo_quick"] else []), ["run", "demo.ipynb"], resumable=False),
    ]


def files_under(path):
    """Relative path -> bytes of every file at `path` (a file, or a folder's files)."""
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return {"": path.read_bytes()}


def comparable(name, data):
    # results.json records the run's wall time; every other byte is reproducible.
    if name.endswith("results.json"):
        doc = json.loads(data)
        doc.pop("seconds", None)
        return doc
    return data


def differences(out, ref, outputs):
    """Outputs under their final names that are present but not equal to the reference."""
    problems = []
    for name in outputs:
        path = out / name
        if not path.exists():
            continue
        got, want = files_under(path), files_under(ref / name)
        if got.keys() != want.keys():
            problems.append(f"{name}: files {sorted(got)} instead of {sorted(want)}")
            continue
        for k in want:
            if comparable(k, got[k]) != comparable(k, want[k]):
                problems.append(f"{name}/{k}: differs from the reference" if k else f"{name}: differs from the reference")
    return problems


def loadable(out, outputs):
    """Every present HDF5 output opens with h5py (a second opinion beside the byte comparison)."""
    import h5py
    problems = []
    for name in outputs:
        for p in ([out / name] if (out / name).is_file() else sorted((out / name).rglob("*.h5"))):
            if p.suffix == ".h5" and p.exists():
                try:
                    with h5py.File(p, "r") as f:
                        f.attrs["format"]
                except Exception as e:  # noqa: BLE001 - any failure to read is the finding
                    problems.append(f"{p.name}: unreadable ({e})")
    return problems


def stale_locks(out):
    problems = []
    for lock in out.glob(".*.lock"):
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                problems.append(f"{lock.name} is still locked after the kill")
    return problems


def checkpoint_sound(out):
    import h5py
    problems = []
    for ck in out.glob(".*.checkpoint.h5"):
        try:
            with h5py.File(ck, "r") as f:
                assert f.attrs["format"] == "sparsebridge.checkpoint"
        except Exception as e:  # noqa: BLE001
            problems.append(f"{ck.name}: unreadable checkpoint ({e})")
    return problems


def clear(folder):
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def place_reference(out, ref, outputs):
    for name in outputs:
        src = ref / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, out / name)


def trial_set(bin_path, cmd, work, trials, rng):
    out, ref = work / "out", work / f"ref-{cmd.name}"
    # Two uninterrupted runs: the shorter time bounds the kill moments (the machine may be busy
    # during one), and their outputs must agree before any kill is judged against them.
    durations = []
    for _ in range(2):
        clear(out)
        started = time.monotonic()
        run(bin_path, cmd.args)
        durations.append(time.monotonic() - started)
        if not ref.exists():
            ref.mkdir()
            for name in cmd.outputs:
                shutil.move(str(out / name), str(ref / name))
    unreproducible = differences(out, ref, cmd.outputs)
    if unreproducible:
        raise RuntimeError(f"{cmd.name}: two uninterrupted runs differ: {unreproducible}")
    duration = min(durations)
    row = dict(command=cmd.name, seconds=duration, kills=0, finished_first=0, old_kept=0, absent=0, survived=0,
               resumed=0, identical=0, failures=[])
    for k in range(trials):
        clear(out)
        over_old = k % 2 == 1
        if over_old:
            place_reference(out, ref, cmd.outputs)
        delay = rng.uniform(0, duration)
        proc = subprocess.Popen([bin_path, *map(str, cmd.args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        row["kills"] += 1
        if code != -signal.SIGKILL:
            row["finished_first"] += 1
        problems = differences(out, ref, cmd.outputs) + loadable(out, cmd.outputs) + stale_locks(out) + checkpoint_sound(out)
        if all((out / n).exists() for n in cmd.outputs) and over_old:
            row["old_kept"] += 1
        if not any((out / n).exists() for n in cmd.outputs):
            row["absent"] += 1
        resumed_here = cmd.resumable and any(p.name.endswith((".partial", ".checkpoint.h5")) for p in out.iterdir())
        r = run(bin_path, cmd.args + (["--resume"] if cmd.resumable else []), check=False)
        if r.returncode != 0:
            problems.append(f"rerun failed ({r.returncode}): {r.stderr.strip()}")
        else:
            missing = [n for n in cmd.outputs if not (out / n).exists()]
            after = differences(out, ref, cmd.outputs)
            leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
            problems += [f"{n} missing after the rerun" for n in missing] + after
            if leftovers:
                problems.append(f"left behind after the rerun: {leftovers}")
            if not missing and not after:
                row["identical"] += 1
                row["resumed"] += resumed_here
        if problems:
            row["failures"].append(f"trial {k} (killed at {delay:.2f} s{', over old outputs' if over_old else ''}): " + "; ".join(problems))
        else:
            row["survived"] += 1
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("SPARSEBRIDGE_BIN", str(ROOT / ".build/release/sparsebridge")))
    ap.add_argument("--trials", type=int, default=20, help="kills per command")
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill times")
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--commands", default="capture,fit,train,demo")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    wanted = a.commands.split(",")
    with tempfile.TemporaryDirectory(prefix="kill-trials-") as tmp:
        work = pathlib.Path(tmp)
        commands = [c for c in setup(a.bin, work, a.size) if c.name in wanted]
        rows = [trial_set(a.bin, c, work, a.trials, rng) for c in commands]
    headers = ["command", "ref s", "kills", "done first", "absent", "old kept", "resumed", "rerun identical", "survived"]
    table = [[r["command"], f"{r['seconds']:.2f}", r["kills"], r["finished_first"], r["absent"], r["old_kept"],
              r["resumed"], r["identical"], r["survived"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]
    for line in [headers, ["-" * w for w in widths], *table]:
        print("  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(line, widths))))
    for r in rows:
        for f in r["failures"]:
            print(f"FAIL {r['command']} {f}")
    kills, survived = sum(r["kills"] for r in rows), sum(r["survived"] for r in rows)
    print(f"{kills} kills, {survived} survived")
    return 0 if kills == survived else 1


if __name__ == "__main__":
    sys.exit(main())
