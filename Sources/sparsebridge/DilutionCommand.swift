import ArgumentParser
import Bridges
import Circuits
import Foundation
import Checkpoints
import Model

struct DilutionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dilution",
        abstract: "Context dilution in bracket counting: does the sparse circuit's depth signal predict where each model fails?")

    @Option(help: "Dense model (.h5).") var dense: String
    @Option(help: "Sparse model (.h5).") var sparse: String
    @Option(help: "Bridge between them (.h5).") var bridge: String
    @Option(help: "The sparse model's bracket_counting circuit (JSON from `circuit`): its attention writes are the candidate depth channels (default: every channel).")
    var circuit: String?
    @Option(help: "List lengths as START:END:STEP.") var lengths = "4:200:4"
    @Option(help: "Prompt pairs per length.") var pairs = 30
    @Flag(help: "Also measure distractor prompts (a comment holding `[` before a flat list).") var distractors = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let parts = lengths.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 3, parts[0] >= 1, parts[2] >= 1, parts[1] >= parts[0] else {
            throw ValidationError("--lengths must be START:END:STEP with START ≥ 1")
        }
        let ls = Array(stride(from: parts[0], through: parts[1], by: parts[2]))
        let b = try Bridge.load(bridge)
        let d = try ModelLoader.load(dense), s = try ModelLoader.load(sparse)
        let study = try DilutionStudy(dense: d.model, sparse: s.model, bridge: b, bridgePath: bridge, pairsPerLength: pairs)
        try study.chooseSignal(candidates: DilutionStudy.candidates(circuit: circuit, sparse: s.model.config, bridge: b))
        let signal = study.signal
        let results = try study.run(lengths: ls, distractors: distractors)
        if json {
            printJSON(.object([
                "site": .string(signal.site.name), "channels": .array(signal.channels.map { .number(Double($0)) }),
                "separation": .number(signal.separation),
                "models": .array(results.map { r in .object([
                    "model": .string(r.name), "fit_a": .number(r.fit.a), "fit_b": .number(r.fit.b), "threshold": r.threshold.isNaN ? .null : .number(r.threshold),
                    "own_threshold": r.ownThreshold.isNaN ? .null : .number(r.ownThreshold), "predicted_from": .string(r.predictedFrom),
                    "predicted_flip_length": r.predictedFlip.map { .number($0) } ?? .null,
                    "measured_flip_length": r.measuredFlip.map { .number(Double($0)) } ?? .null,
                    "distractor_accuracy": r.distractorAccuracy.map { .number($0) } ?? .null,
                    "points": .array(r.points.map { .object(["length": .number(Double($0.length)),
                                                             "accuracy_depth2": .number($0.accuracyDepth2),
                                                             "accuracy_depth1": .number($0.accuracyDepth1),
                                                             "signal_depth2": .number($0.signalDepth2),
                                                             "signal_depth1": .number($0.signalDepth1)]) })]) })]))
            return
        }
        print("depth signal: sparse \(signal.site.name), \(signal.channels.count) channel(s) "
                + "\(signal.channels.prefix(8).map(String.init).joined(separator: ", "))"
              + "\(signal.channels.count > 8 ? ", …" : "") (separation \(fmt(signal.separation, 2)) on short lists; 0 = short depth-1 list, 1 = short depth-2 list)")
        for r in results {
            print("\n\(r.name): signal ≈ \(fmt(r.fit.a, 3))/L + \(fmt(r.fit.b, 3)); the sparse mechanism flips at \(fmt(r.threshold, 3)),"
                  + " patching this model flips it at \(r.ownThreshold.isNaN ? "no value down to −15" : fmt(r.ownThreshold, 3))")
            print("  predicted flip length: \(r.predictedFlip.map { fmt($0, 1) + " (from the \(r.predictedFrom))" } ?? "none"), measured: \(r.measuredFlip.map { "\($0)" } ?? "none within the lengths")"
                  + (r.distractorAccuracy.map { ", distractor accuracy \(fmt($0, 3))" } ?? ""))
            var t = Table(headers: ["length", "acc depth 2", "acc depth 1", "signal depth 2", "signal depth 1"])
            for p in r.points { t.rows.append(["\(p.length)", fmt(p.accuracyDepth2, 3), fmt(p.accuracyDepth1, 3), fmt(p.signalDepth2, 3), fmt(p.signalDepth1, 3)]) }
            print(t.render())
        }
    }
}
