// Training throughput: optimizer steps (forward, backward, RMS scaling, AdamW) on a
// config, and the cost of the weight-sparse projection as a share of a step. Prints JSON
// lines for benchmarks/run.sh.
//
//   sparsebridge-bench-train --d-model 256 --n-head 8 --d-mlp 1024 --layers 4 --batch 32 --seq 256 --threads N --steps K

import Foundation
import Tasks
import Tensors
import Training
import Model
import Text

BLASRuntime.ensureCoreType()
let args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
    return v
}
BLASRuntime.threads = option("--threads", Parallel.threads)
let d = option("--d-model", 256), heads = option("--n-head", 8), mlp = option("--d-mlp", 1024)
let layers = option("--layers", 4), batch = option("--batch", 32), seq = option("--seq", 256), steps = option("--steps", 6)

func recipe(sparse: Bool) throws -> Recipe {
    let json = """
    {"model": {"n_layer": \(layers), "d_model": \(d), "n_head": \(heads), "d_mlp": \(mlp), "n_ctx": \(seq)},
     "seed": 1, "steps": 1000, "batch": \(batch), "seq_len": \(seq), "lr": 0.001, "warmup_steps": 0,
     "heldout_sequences": 1\(sparse ? #", "sparsity": {"target_fraction": 0.0625, "anneal_start": 0, "anneal_end": 0}"# : "")}
    """
    return try JSONDecoder().decode(Recipe.self, from: Data(json.utf8))
}

do {
    let trainer = try Trainer(recipe: try recipe(sparse: false), corpus: SyntheticCorpus(seed: 1), heldout: SyntheticCorpus(seed: 2))
    try trainer.trainStep()  // warm-up: buffers
    var best = Double.infinity
    for _ in 0..<steps {
        let t0 = Date()
        try trainer.trainStep()
        best = min(best, Date().timeIntervalSince(t0))
    }
    print(#"{"what": "train_step", "engine": "sparsebridge", "threads": \#(BLASRuntime.threads), "tokens_per_s": \#(Double(batch * seq) / best)}"#)

    // The projection alone, on the same weights, at the target fraction.
    var projection = Double.infinity
    for _ in 0..<3 {
        let t0 = Date()
        SparseProjection.apply(trainer.model.weights, fraction: 0.0625, minPerNeuron: 4)
        projection = min(projection, Date().timeIntervalSince(t0))
    }
    print(#"{"what": "sparse_projection", "engine": "sparsebridge", "threads": \#(BLASRuntime.threads), "seconds": \#(projection), "share_of_step": \#(projection / (best + projection))}"#)
} catch {
    FileHandle.standardError.write(Data("sparsebridge-bench-train: \(error)\n".utf8))
    exit(1)
}
