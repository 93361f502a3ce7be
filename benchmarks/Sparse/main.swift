// Weight-sparse inference: the same model on BLAS (dense path) and on the sparse kernel
// (sparse path). Prints one JSON line per measurement for benchmarks/run.sh.
//
//   sparsebridge-bench-sparse forward MODEL.h5 [--fraction F] [--save OUT.h5] [--threads N] [--iters K] [--path dense|sparse] [--no-products]
//       forward tokens/s (batch 32 × 256) on both paths, and the time of the model's matrix
//       products alone; --fraction first makes the model weight-sparse (the training
//       projection: top-|w| per tensor, ≥ 4 per neuron), --save writes that model (for the peer)
//   sparsebridge-bench-sparse depass MODEL.h5 [--components K] [--seq T] [--threads N] [--iters K]
//       DePass propagation of K components (position classes of one sequence) on both paths
//   sparsebridge-bench-sparse calibrate [--threads N]
//       BLAS against the sparse kernel per matrix shape of configs D and S at several kept
//       fractions: where the sparse kernel starts to pay (docs/sparse-kernels.md)

import DePass
import Foundation
import Tensors
import Training
import Checkpoints
import Model

BLASRuntime.ensureCoreType()
var args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func intOption(_ name: String, _ fallback: Int) -> Int { option(name).flatMap(Int.init) ?? fallback }
let mode = args.first ?? ""
BLASRuntime.threads = intOption("--threads", Parallel.threads)
let iters = intOption("--iters", 3)
let threads = BLASRuntime.threads

/// Best wall time of `iters` runs of `body` after one warm-up run.
func bestTime(_ iters: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var best = Double.infinity
    for _ in 0..<iters {
        let t0 = Date()
        try body()
        best = min(best, Date().timeIntervalSince(t0))
    }
    return best
}

/// Runs `body` once with every matrix on BLAS, once with the automatic choice; `--path dense`
/// or `--path sparse` runs just one (to profile it alone, e.g. under perf).
func onBothPaths<T>(_ weights: TransformerWeights, _ body: (String) throws -> T) rethrows -> [(String, T)] {
    var results: [(String, T)] = []
    if option("--path") != "sparse" {
        weights.dropSparseKernels()
        results.append(("dense", try body("dense")))
    }
    if option("--path") != "dense" {
        weights.prepareSparseKernels()
        results.append(("sparse", try body("sparse")))
    }
    return results
}

func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields.merging(["engine": "sparsebridge"]) { a, _ in a },
                                           options: [.sortedKeys])
    print(String(data: data, encoding: .utf8)!)
}

func forward(_ path: String) throws {
    let loaded = try ModelLoader.load(path)
    let model = loaded.model, w = model.weights
    var label = "model"
    if let f = option("--fraction").flatMap(Double.init) {
        SparseProjection.apply(w, fraction: f, minPerNeuron: 4)
        label = "1/\(Int((1 / f).rounded()))"
        if let out = option("--save") {
            try ModelFile.save(model, tokenizer: loaded.tokenizer, provenance: .null, to: out)
        }
    }
    let kept = Double(w.nonzeroCount) / Double(w.parameterCount)
    let batch = 32, seq = 256, n = batch * seq
    var rng = SeededRandom(seed: 1)
    let tokens = (0..<n).map { _ in Int32(32 + rng.nextInt(95)) }
    for (p, seconds) in try onBothPaths(w, { _ in try bestTime(iters) { try model.forward(tokens: tokens, batch: batch, seqLen: seq) } }) {
        emit(["what": "sparse_forward", "model": label, "path": p, "threads": threads, "kept_fraction": kept,
              "tokens_per_s": Double(n) / seconds, "kernel": BLASRuntime.coreName])
    }
    if args.contains("--no-products") { return }
    // The matrix products alone: each weight matrix times a random [N, in] input.
    let matrices = w.parameters.filter { TransformerWeights.isMatmulWeight($0.role) }.map(\.tensor)
    var x: [Int: Tensor] = [:], y: [Int: Tensor] = [:]
    for m in matrices {
        if x[m.shape[0]] == nil { x[m.shape[0]] = Tensor.randomNormal([n, m.shape[0]], std: 1, rng: &rng) }
        if y[m.shape[1]] == nil { y[m.shape[1]] = Tensor(zeros: [n, m.shape[1]]) }
    }
    for (p, seconds) in onBothPaths(w, { _ in
        matrices.reduce(0.0) { total, m in total + bestTime(iters) { matmul(x[m.shape[0]]!, m, into: y[m.shape[1]]!) } }
    }) {
        emit(["what": "sparse_matmul", "model": label, "path": p, "threads": threads, "kept_fraction": kept,
              "seconds": seconds, "tokens_per_s": Double(n) / seconds])
    }
}

func depass(_ path: String) throws {
    let model = try ModelLoader.load(path).model, c = model.config
    let k = intOption("--components", 16), t = intOption("--seq", 256)
    var rng = SeededRandom(seed: 2)
    let tokens = (0..<t).map { _ in Int32(32 + rng.nextInt(95)) }
    let run = try DecomposedForward(model: model, tokens: tokens)
    // K components before block 0: position p's embedding goes to component p mod K.
    let (perToken, start) = run.tokenComponents()
    let comps = Components(names: (0..<k).map { "positions ≡ \($0) mod \(k)" }, seqLen: t, width: c.dModel)
    for p in 0..<t {
        comps.component(p % k).rows(p..<(p + 1)).copy(from: perToken.component(p).rows(p..<(p + 1)))
    }
    comps.bigramOwner = { $0 % k }
    // propagate works on its own copy of the components (as the code before did by hand).
    for (p, (seconds, worst)) in try onBothPaths(model.weights, { _ in
        var worst: Float = 0
        let seconds = try bestTime(iters) { worst = try run.propagate(comps, from: start).worstRelativeError }
        return (seconds, worst)
    }) {
        emit(["what": "sparse_depass", "model": path, "path": p, "threads": threads, "components": k, "seq": t,
              "seconds": seconds, "max_relative_error": Double(worst)])
    }
}

func calibrate() {
    let fractions = [0.5, 0.375, 0.25, 0.1875, 0.125]
    let shapes = [(256, 256), (256, 1024), (1024, 256), (1024, 1024), (1024, 4096), (4096, 1024)]
    var rng = SeededRandom(seed: 3)
    for n in [8192, 17 * 256] {
        for (rows, cols) in shapes {
            let x = Tensor.randomNormal([n, rows], std: 1, rng: &rng), y = Tensor(zeros: [n, cols])
            let dense = Tensor.randomNormal([rows, cols], std: 1, rng: &rng)
            let blas = bestTime(3) { matmul(x, dense, into: y) }
            for f in fractions {
                let w = dense.copy()
                _ = SparseProjection.project(w, fraction: f, minPerNeuron: 4, axis: 1)
                w.prepareSparseForm(force: true)
                let sparse = bestTime(3) { matmul(x, w, into: y) }
                emit(["what": "sparse_calibrate", "threads": threads, "n": n, "in": rows, "out": cols,
                      "kept_fraction": f, "blas_s": blas, "sparse_s": sparse, "speedup": blas / sparse])
            }
        }
    }
}

do {
    switch mode {
    case "forward" where args.count > 1: try forward(args[1])
    case "depass" where args.count > 1: try depass(args[1])
    case "calibrate": calibrate()
    default:
        FileHandle.standardError.write(Data("usage: sparsebridge-bench-sparse forward|depass MODEL.h5 [options] | calibrate\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("sparsebridge-bench-sparse: \(error)\n".utf8))
    exit(1)
}
