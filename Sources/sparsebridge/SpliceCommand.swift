import ArgumentParser
import Bridges
import Foundation
import Tasks
import Checkpoints
import Model
import Support
import Text

struct SpliceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "splice", abstract: "Hybrid forward passes through a bridge: CE recovered, KL and task accuracy.")

    @Option(help: "Bridge file (.h5).") var bridge: String
    @Option(help: "Site (a hook name), or 'all'.") var site: String
    @Option(help: "d2s (dense → sparse through the encoder) or s2d (sparse → dense through the decoder), or 'both'.")
    var direction = "both"
    @Option(help: "Dense model (default: the path recorded in the bridge).") var dense: String?
    @Option(help: "Sparse model (default: the path recorded in the bridge).") var sparse: String?
    @Option(help: "Tokens to evaluate on (held-out synthetic text, seed 99).") var tokens = 16384
    @Option(name: .customLong("seq-len"), help: "Tokens per sequence.") var seqLen = 256
    @Option(help: "Also measure accuracy on this task.") var task: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let b = try Bridge.load(bridge)
        let d = try ModelLoader.load(dense ?? b.denseModel), s = try ModelLoader.load(sparse ?? b.sparseModel)
        let splicer = try Splicer(bridge: b, dense: d.model, sparse: s.model, bridgePath: bridge)
        let directions: [BridgeDirection]
        switch direction {
        case "both": directions = BridgeDirection.allCases
        case let x: guard let dir = BridgeDirection(rawValue: x) else { throw ValidationError("--direction must be d2s, s2d or both") }
            directions = [dir]
        }
        let names = site == "all" ? b.sites.map(\.hook) : [try b.site(site, path: bridge).hook]
        let t = min(seqLen, d.model.config.nCtx, s.model.config.nCtx)
        let taskValue = try task.map { try TaskSuite.named($0) }
        var results: [SpliceResult] = []
        for name in names {
            for dir in directions {
                var corpus = SyntheticCorpus(seed: 99)
                results.append(try splicer.measure(site: name, direction: dir, corpus: &corpus, sequences: max(1, tokens / t),
                                                   seqLen: t, task: taskValue))
            }
        }
        if json {
            printJSON(.array(results.map(spliceJSON)))
        } else {
            print(spliceTable(results))
        }
    }
}

func spliceJSON(_ r: SpliceResult) -> JSONValue {
    var o: [String: JSONValue] = [
        "site": .string(r.site), "direction": .string(r.direction.rawValue), "tokens": .number(Double(r.tokens)),
        "ce_clean": .number(r.ceClean), "ce_spliced": .number(r.ceSpliced), "ce_zero_ablated": .number(r.ceZeroAblated),
        "ce_mean_ablated": .number(r.ceMeanAblated), "ce_recovered": .number(r.recoveredZero),
        "ce_recovered_mean": .number(r.recoveredMean), "kl": .number(r.klClean)]
    if let a = r.taskAccuracyClean { o["task_accuracy_clean"] = .number(a) }
    if let a = r.taskAccuracySpliced { o["task_accuracy_spliced"] = .number(a) }
    return .object(o)
}

func spliceTable(_ results: [SpliceResult]) -> String {
    let withTask = results.contains { $0.taskAccuracySpliced != nil }
    var t = Table(headers: ["site", "dir", "CE clean", "CE spliced", "CE zero-abl", "CE mean-abl", "recovered", "recovered (mean)", "KL"]
                  + (withTask ? ["task clean", "task spliced"] : []))
    for r in results {
        t.rows.append([r.site, r.direction.rawValue, fmt(r.ceClean), fmt(r.ceSpliced), fmt(r.ceZeroAblated), fmt(r.ceMeanAblated),
                       fmt(r.recoveredZero, 3), fmt(r.recoveredMean, 3), fmt(r.klClean)]
                      + (withTask ? [fmt(r.taskAccuracyClean ?? .nan, 3), fmt(r.taskAccuracySpliced ?? .nan, 3)] : []))
    }
    return t.render()
}
