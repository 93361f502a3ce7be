import ArgumentParser
import Bridges
import Cluster
import Foundation
import HDF5
import Tasks
import Checkpoints
import Model
import Text

struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture", abstract: "Stream a corpus through a model and store hook activations in HDF5.")

    @Option(help: "Model file (.h5).")
    var model: String
    @Option(help: "Comma-separated hook names (TransformerLens or circuit_sparsity), 'resid' for the bridge sites, or 'all'.")
    var sites: String
    @Option(help: "A text file, a folder of text files, or 'synthetic' (the seeded Python-like generator).")
    var corpus: String
    @Option(help: "Seed of the synthetic corpus.")
    var seed: UInt64 = 1
    @Option(help: "Tokens to capture (rounded up to whole sequences).")
    var tokens: Int
    @Option(help: "Output activation file (.h5).")
    var out: String
    @Option(help: "Sequences per forward batch.")
    var batch: Int = 32
    @Option(name: .customLong("seq-len"), help: "Tokens per sequence (default: the model's n_ctx).")
    var seqLen: Int?
    @Flag(help: "Compress with shuffle + gzip (slower; off by default).")
    var gzip = false
    @Flag(help: "Continue an interrupted capture into the same output.")
    var resume = false
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        let group = try Cluster.join()
        try compute.apply()
        let loaded = try ModelLoader.load(model)
        let c = loaded.model.config
        let points = try HookPoint.parseList(sites, config: c)
        let request = CaptureRequest(sites: points, tokens: tokens, seqLen: seqLen ?? c.nCtx, batch: batch,
                                     gzip: gzip ? 4 : nil, resume: resume, outPath: out)
        let sha = try ModelLoader.sha256(model)
        let summary: CaptureSummary
        if corpus == "synthetic" {
            guard loaded.tokenizer is CharTokenizer else {
                throw CommandError("--corpus synthetic produces character tokens; \(model) uses another tokenizer")
            }
            var stream = SyntheticCorpus(seed: seed)
            summary = try ShardedCapture.run(loaded, modelSHA256: sha, corpus: &stream, request: request, group: group)
        } else {
            var stream = try TextCorpus(path: corpus, tokenizer: loaded.tokenizer)
            summary = try ShardedCapture.run(loaded, modelSHA256: sha, corpus: &stream, request: request, group: group)
        }
        guard group.rank == 0 else { return }
        if json {
            printJSON(.object(["out": .string(out), "processes": .number(Double(group.size)),
                               "sequences": .number(Double(summary.sequences)),
                               "tokens": .number(Double(summary.tokens)), "resumed_from_rows": .number(Double(summary.resumedFromRows)),
                               "seconds": .number(summary.seconds)]))
        } else {
            let rate = Double(summary.tokens - summary.resumedFromRows) / max(summary.seconds, 1e-9)
            print("wrote \(out): \(summary.tokens) tokens × \(points.count) sites"
                  + (group.size > 1 ? " from \(group.size) shards" : "") + " in \(fmt(summary.seconds, 1)) s (\(Int(rate)) tokens/s)"
                  + (summary.resumedFromRows > 0 ? ", resumed after \(summary.resumedFromRows) tokens" : ""))
        }
    }
}
