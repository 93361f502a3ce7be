import ArgumentParser
import Bridges
import Cluster
import Foundation
import HDF5
import Tasks
import Tensors
import Checkpoints
import Model
import Support
import Text

struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit linear dense→sparse and sparse→dense bridges under NMSE (closed-form ridge, one streaming pass).",
        discussion: "Under mpirun (a build with the MPI trait), each process accumulates its share of the sequences, MPI_Allreduce "
                + "sums the statistics, and rank 0 solves and writes OUT (docs/scaling.md).")

    @Option(help: "Dense model (.h5).") var dense: String
    @Option(help: "Sparse model (.h5).") var sparse: String
    @Option(name: .customLong("dense-acts"), help: "Fit from this dense activation file instead of capturing.") var denseActs: String?
    @Option(name: .customLong("sparse-acts"), help: "… with this sparse activation file (same tokens).") var sparseActs: String?
    @Option(help: "Tokens to capture on the fly from the synthetic corpus (rounded up to whole sequences).") var tokens: Int?
    @Option(help: "Sites: 'all' (every bridge site) or a comma-separated list.") var sites = "all"
    @Option(help: "Ridge λ relative to the mean eigenvalue of the input covariance, or 'auto' (held-out NMSE picks it).")
    var ridge = "auto"
    @Option(help: "Fraction of sequences held out for NMSE and λ selection.") var heldout = 0.1
    @Option(help: "Seed of the synthetic corpus.") var seed: UInt64 = 7
    @Option(name: .customLong("seq-len"), help: "Tokens per sequence (default: the smaller n_ctx).") var seqLen: Int?
    @Option(help: "Sequences per batch.") var batch = 16
    @Option(help: "Output bridge file (.h5).") var out: String
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        let group = try Cluster.join()
        try compute.apply()
        guard heldout >= 0, heldout < 1 else { throw ValidationError("--heldout must be in [0, 1)") }
        let ridgeChoice: RidgeChoice
        if ridge == "auto" { ridgeChoice = .auto } else {
            guard let v = Double(ridge), v >= 0, v.isFinite else { throw ValidationError("--ridge must be 'auto' or a number ≥ 0") }
            ridgeChoice = .fixed(v)
        }
        // The output folder must exist before any work; the writing rank holds the output's lock
        // from here on, so a second fit to the same file is refused now rather than at the end.
        let reservation = group.rank == 0 ? try AtomicOutput(out) : nil
        let d = try ModelLoader.load(dense), s = try ModelLoader.load(sparse)
        try BridgeFitter.checkPair(dense: d.model.config, sparse: s.model.config)
        let points = sites == "all" ? HookPoint.bridgeSites(config: d.model.config)
                                    : try HookPoint.parseList(sites, config: d.model.config)
        for p in points where p.rowWidth(config: d.model.config, seqLen: 1) != d.model.config.dModel {
            throw ValidationError("--sites: \(p.name) is not a residual-stream site")
        }
        let options = FitOptions(sites: points, heldoutFraction: heldout)
        let started = Date()
        let acc: BridgeAccumulator
        var source: [String: JSONValue] = [:]
        if let denseActs, let sparseActs {
            let a = try ActivationFile(path: denseActs), b = try ActivationFile(path: sparseActs)
            for (file, model) in [(a, dense), (b, sparse)] where file.modelSHA256 != (try ModelLoader.sha256(model)) {
                throw CommandError("\(file.path) was captured from another model than \(model) (SHA-256 differs)")
            }
            acc = try BridgeFitter.accumulate(denseActs: a, sparseActs: b, options: options, batch: batch, part: (group.rank, group.size))
            source = ["dense_acts": .string(denseActs), "sparse_acts": .string(sparseActs)]
        } else {
            guard denseActs == nil && sparseActs == nil else {
                throw ValidationError("--dense-acts and --sparse-acts go together")
            }
            guard let tokens, tokens > 0 else {
                throw ValidationError("give --tokens (to capture on the fly) or --dense-acts and --sparse-acts")
            }
            let t = seqLen ?? min(d.model.config.nCtx, s.model.config.nCtx)
            guard t >= 1, t <= min(d.model.config.nCtx,
                                   s.model.config.nCtx) else { throw ValidationError("--seq-len exceeds a model's n_ctx") }
            var corpus = SyntheticCorpus(seed: seed)
            let sequences = (tokens + t - 1) / t
            acc = try ShardedFit.accumulate(dense: d.model, sparse: s.model, corpus: &corpus, sequences: sequences, seqLen: t,
                                            batch: batch, options: options, group: group) { ProgressLine("fit", total: $0) }
            source = ["corpus": .string(corpus.description), "tokens": .number(Double(sequences * t)), "seq_len": .number(Double(t))]
        }
        // Every process's statistics to every process; rank 0 alone solves and writes.
        let summing = Date()
        try acc.sumAcross(group)
        let sumSeconds = Date().timeIntervalSince(summing)
        guard group.rank == 0 else { return }
        let solved = try acc.solve(ridge: ridgeChoice)
        var provenance = source
        provenance["processes"] = .number(Double(group.size))
        provenance["made_by"] = .string("sparsebridge fit")
        provenance["heldout_fraction"] = .number(heldout)
        provenance["ridge"] = .string(ridge)
        let bridge = Bridge(denseConfig: d.model.config, sparseConfig: s.model.config, denseModel: dense, sparseModel: sparse,
                            denseSHA256: try ModelLoader.sha256(dense), sparseSHA256: try ModelLoader.sha256(sparse),
                            provenance: .object(provenance), sites: solved)
        try bridge.save(to: out)
        reservation?.discard()
        if json {
            printJSON(.object(["out": .string(out), "seconds": .number(Date().timeIntervalSince(started)),
                               "processes": .number(Double(group.size)), "allreduce_seconds": .number(sumSeconds),
                               "statistics_bytes": .number(Double(8 * acc.statisticsCount)),
                               "sites": .array(solved.map(siteJSON))]))
        } else {
            print(nmseTable(solved))
            print("wrote \(out) in \(fmt(Date().timeIntervalSince(started), 1)) s")
        }
    }
}

func siteJSON(_ s: BridgeSite) -> JSONValue {
    func m(_ x: BridgeMap) -> JSONValue {
        .object(["nmse": .number(x.nmse), "nmse_uncentered": .number(x.nmseUncentered), "lambda": .number(x.lambda),
                 "lambda_relative": .number(x.lambdaRelative), "train_tokens": .number(Double(x.trainTokens)),
                 "heldout_tokens": .number(Double(x.heldoutTokens)), "rms_in": .number(x.rmsIn), "rms_out": .number(x.rmsOut)])
    }
    return .object(["site": .string(s.hook), "encoder": m(s.encoder), "decoder": m(s.decoder)])
}

func nmseTable(_ sites: [BridgeSite]) -> String {
    var t = Table(headers: ["site", "d→s NMSE", "uncentred", "λ rel", "s→d NMSE", "uncentred", "λ rel", "RMS dense", "RMS sparse"])
    for s in sites {
        t.rows.append([s.hook, fmt(s.encoder.nmse), fmt(s.encoder.nmseUncentered), String(format: "%.0e", s.encoder.lambdaRelative),
                       fmt(s.decoder.nmse), fmt(s.decoder.nmseUncentered), String(format: "%.0e", s.decoder.lambdaRelative),
                       fmt(s.encoder.rmsIn, 3), fmt(s.encoder.rmsOut, 3)])
    }
    return t.render()
}
