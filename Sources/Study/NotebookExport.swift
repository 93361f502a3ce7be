// A demo run as a Jupyter notebook (nbformat 4): markdown explaining each step, and code
// cells that load the run's results.json and data.h5 with h5py and draw every figure with
// matplotlib. The notebook reads the run folder by a path relative to itself, given here.

import Foundation
import HDF5
import Model
import Support

public enum NotebookExport {
    static func markdown(_ text: String) -> JSONValue {
        .object(["cell_type": .string("markdown"), "metadata": .object([:]), "source": lines(text)])
    }

    static func code(_ text: String) -> JSONValue {
        .object(["cell_type": .string("code"), "metadata": .object([:]), "execution_count": .null, "outputs": .array([]),
                 "source": lines(text)])
    }

    static func lines(_ text: String) -> JSONValue {
        let parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return .array(parts.enumerated().map { i, l in .string(i < parts.count - 1 ? l + "\n" : l) })
    }

    /// Writes the notebook for run folder `run` to `out`.
    public static func write(run: String, out: String) throws {
        _ = try Demo.loadRun(run)
        let outURL = URL(fileURLWithPath: out)
        let runPath = relativePath(from: outURL.deletingLastPathComponent().path, to: run)
        let cells: [JSONValue] = [
            markdown("""
            # SparseBridge demo

            A dense transformer and a weight-sparse one, trained on the same synthetic Python-like code, linked by
            linear bridges. This notebook was written by `sparsebridge export notebook` from the run in `\(runPath)`;
            every figure is drawn from that run's `results.json` and `data.h5`.
            """),
            code("""
            import json, os
            import h5py
            import numpy as np
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            RUN = os.path.join(os.path.dirname(os.path.abspath("__file__")), \(JSONValue.string(runPath).jsonString)) if not \
            os.path.isabs(\(JSONValue.string(runPath).jsonString)) else \(JSONValue.string(runPath).jsonString)
            if not os.path.exists(os.path.join(RUN, "results.json")):
                RUN = \(JSONValue.string(URL(fileURLWithPath: run).standardizedFileURL.path).jsonString)
            results = json.load(open(os.path.join(RUN, "results.json")))
            data = h5py.File(os.path.join(RUN, "data.h5"), "r")
            print("run took", round(results["seconds"], 1), "s", "(quick)" if results["quick"] else "")
            """),
            markdown("## 1. The two models on the tasks\nAccuracy: the target next token beats the alternative (docs/tasks.md)."),
            code("""
            rows = results["tasks"]
            print(f"{'task':22} {'dense':>7} {'sparse':>7}")
            for r in rows:
                print(f"{r['task']:22} {r['dense_accuracy']:7.3f} {r['sparse_accuracy']:7.3f}")
            for name, m in results["models"].items():
                print(name, m)
            """),
            markdown("## 2. Bridges\nHeld-out NMSE (fraction of variance unexplained) of each linear map, and the cross-entropy "
                    + "recovered when one model's residual stream is mapped into the other and the forward pass finishes there."),
            code("""
            sites = json.loads(data["splice"].attrs["sites"])
            x = np.arange(len(sites))
            fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
            nmse = results["bridge_nmse"]
            ax[0].bar(x - 0.2, [r["d2s_nmse"] for r in nmse], 0.4, label="dense→sparse")
            ax[0].bar(x + 0.2, [r["s2d_nmse"] for r in nmse], 0.4, label="sparse→dense")
            ax[0].set_title("bridge NMSE (held out)"); ax[0].legend()
            ax[1].plot(x, data["splice/ce_recovered_d2s"][:], "o-", label="d2s")
            ax[1].plot(x, data["splice/ce_recovered_s2d"][:], "o-", label="s2d")
            ax[1].set_title("CE recovered when spliced"); ax[1].legend()
            for a in ax:
                a.set_xticks(x); a.set_xticklabels([s.replace("blocks.", "").replace(".hook_", " ") for s in sites], rotation=60, \
            fontsize=7)
            fig.tight_layout()
            for r in results["splice"]:
                print(f"{r['site']:26} {r['direction']}  CE clean {r['ce_clean']:.3f} spliced {r['ce_spliced']:.3f} recovered \
            {r['ce_recovered']:.3f} KL {r['kl']:.4f}")
            """),
            markdown("## 3. Steering quote type through one sparse channel\nThe edit Δ of the chosen sparse channel between a "
                    + "prompt and its counterfactual (the other opening quote) is mapped into the dense model through the bridge "
                    + "decoder and added with strength α. The control adds an edit of the same norm in a random direction."),
            code("""
            s = data["steering"]
            fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
            ax[0].plot(s["alpha"][:], s["flip_rate"][:], "o-", label="channel edit")
            ax[0].plot(s["alpha"][:], s["control_flip_rate"][:], "o--", label="random control")
            ax[0].set_xlabel("α"); ax[0].set_ylabel("flip rate"); ax[0].legend()
            ax[1].plot(s["alpha"][:], s["logit_diff"][:], "o-", label="channel edit")
            ax[1].plot(s["alpha"][:], s["control_logit_diff"][:], "o--", label="random control")
            ax[1].set_xlabel("α"); ax[1].set_ylabel("logit(target) − logit(other quote)"); ax[1].legend()
            fig.suptitle(f"site {s.attrs['site']}, channel {s.attrs['channel']}")
            fig.tight_layout()
            """),
            markdown("## 4. DePass: where the steering effect goes\nThe steered dense forward pass is decomposed from the steering "
                    + "site into the unsteered stream, the steering edit and a bias component; the steering component's share of "
                    + "the logit difference splits over the routes it takes (direct, or through a later head or MLP). The "
                    + "decomposition is exact up to float rounding."),
            code("""
            names = json.loads(data["depass"].attrs["routes"])
            scores = data["depass/route_scores"][:]
            order = np.argsort(-np.abs(scores))[:12]
            fig, ax = plt.subplots(figsize=(8, 3.5))
            ax.barh([names[i] for i in order][::-1], scores[order][::-1])
            ax.set_xlabel("contribution to the logit difference")
            fig.tight_layout()
            print(results["depass"])
            """),
            markdown("## 5. Circuits\nThe smallest sets of nodes (residual reads, q/k/v channels, neurons, block writes) that "
                    + "still do each task, found by node-mask pruning."),
            code("""
            for name, c in results["circuits"].items():
                print(f"{name:34} nodes {c['nodes']}  edges {c['edges']}  loss {c['loss']}")
            if not results["circuits"]:
                print("no circuit files in this run's circuits folder")
            """),
            markdown("## 6. Context dilution\nAccuracy on depth-2 bracket prompts against list length, and the sparse circuit's "
                    + "depth signal (read in the dense model through the bridge encoder), with the predicted and measured flip lengths."),
            code("""
            fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
            for name in ("sparse", "dense"):
                g = data["dilution"][name]
                ax[0].plot(g["length"][:], g["accuracy_depth2"][:], "o-", label=f"{name}, depth 2")
                ax[0].plot(g["length"][:], g["accuracy_depth1"][:], "x--", label=f"{name}, depth 1")
                ax[1].plot(g["length"][:], g["signal_depth2"][:], "o-", label=f"{name}")
                a, b = g.attrs["fit"]
                L = np.linspace(g["length"][0], g["length"][-1], 100)
                ax[1].plot(L, a / L + b, ":", color="gray")
            ax[0].set_xlabel("list length"); ax[0].set_ylabel("accuracy"); ax[0].legend(fontsize=7)
            ax[1].set_xlabel("list length"); ax[1].set_ylabel("depth signal"); ax[1].legend(fontsize=7)
            fig.tight_layout()
            print(json.dumps(results["dilution"], indent=1))
            """),
        ]
        // nbformat 4.5 wants a stable id on every cell.
        let identified = cells.enumerated().map { i, cell -> JSONValue in
            guard case .object(var o) = cell else { return cell }
            o["id"] = .string("cell-\(i)")
            return .object(o)
        }
        let notebook = JSONValue.object([
            "nbformat": .number(4), "nbformat_minor": .number(5),
            "metadata": .object(["kernelspec": .object(["name": .string("python3"), "display_name": .string("Python 3"),
                                                       "language": .string("python")]),
                                 "language_info": .object(["name": .string("python")])]),
            "cells": .array(identified)])
        let output = try AtomicOutput(out)
        try Data((notebook.jsonString + "\n").utf8).write(to: URL(fileURLWithPath: output.temporaryPath))
        try output.commit()
    }

    static func relativePath(from base: String, to target: String) -> String {
        let b = URL(fileURLWithPath: base).standardizedFileURL.pathComponents
        let t = URL(fileURLWithPath: target).standardizedFileURL.pathComponents
        var i = 0
        while i < min(b.count, t.count) && b[i] == t[i] { i += 1 }
        return (Array(repeating: "..", count: b.count - i) + t[i...]).joined(separator: "/")
    }
}
