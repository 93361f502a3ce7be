// Forward-pass throughput: plain forward, and capture of every residual site into an HDF5
// file, on a model file. Prints one JSON line per measurement for benchmarks/run.sh.
//
//   sparsebridge-bench-forward MODEL.h5 --batch 32 --seq 256 --threads N --iters K [--capture DIR]

import Bridges
import Foundation
import Tensors
import Checkpoints
import Model
import Text

BLASRuntime.ensureCoreType()
var args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
    return v
}
guard let modelPath = args.first else {
    FileHandle.standardError.write(Data(("usage: sparsebridge-bench-forward MODEL.h5 [--batch B] [--seq T] [--threads N] [--iters "
            + "K] [--capture DIR]\n").utf8))
    exit(2)
}
let batch = option("--batch", 32), seq = option("--seq", 256), iters = option("--iters", 5)
BLASRuntime.threads = option("--threads", Parallel.threads)
let captureDir = args.firstIndex(of: "--capture").map { args[$0 + 1] }

do {
    let loaded = try ModelLoader.load(modelPath)
    let model = loaded.model
    var rng = SeededRandom(seed: 1)
    let tokens = (0..<(batch * seq)).map { _ in Int32(32 + rng.nextInt(95)) }
    try model.forward(tokens: tokens, batch: batch, seqLen: seq)  // warm-up: buffers, BLAS threads
    var times: [Double] = []
    for _ in 0..<iters {
        let t0 = Date()
        try model.forward(tokens: tokens, batch: batch, seqLen: seq)
        times.append(Date().timeIntervalSince(t0))
    }
    let best = times.min()!
    print(#"{"what": "forward", "engine": "sparsebridge", "threads": \#(BLASRuntime.threads), "tokens_per_s": \#(Double(batch * seq) / best), "kernel": "\#(BLASRuntime.coreName)"}"#)

    if let dir = captureDir {
        // Capture of every residual site, streamed to HDF5, over `iters` batches of random text.
        let corpusPath = dir + "/bench-corpus.txt"
        var text = ""
        for _ in 0..<(batch * seq * (iters + 1)) { text.append(Character(UnicodeScalar(UInt8(32 + rng.nextInt(95))))) }
        try text.write(toFile: corpusPath, atomically: true, encoding: .ascii)
        var corpus = try TextCorpus(path: corpusPath, tokenizer: loaded.tokenizer)
        let request = CaptureRequest(sites: HookPoint.bridgeSites(config: model.config), tokens: batch * seq * iters,
                                     seqLen: seq, batch: batch, outPath: dir + "/bench-acts.h5")
        let summary = try Capture.run(loaded, modelSHA256: "benchmark", corpus: &corpus, request: request)
        print(#"{"what": "capture_resid", "engine": "sparsebridge", "threads": \#(BLASRuntime.threads), "tokens_per_s": \#(Double(summary.tokens) / summary.seconds)}"#)
        try? FileManager.default.removeItem(atPath: dir + "/bench-acts.h5")
        try? FileManager.default.removeItem(atPath: corpusPath)
    }
} catch {
    FileHandle.standardError.write(Data("sparsebridge-bench-forward: \(error)\n".utf8))
    exit(1)
}
