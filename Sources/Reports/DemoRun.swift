// The main job: the whole study on the shipped models, written to a run folder as
// results.json (summary and tables) and data.h5 (the arrays behind every figure), which
// `export notebook` turns into a runnable Jupyter notebook.

import Bridges
import Circuits
import DePass
import Foundation
import HDF5
import Steering
import Tasks
import Tensors
import Checkpoints
import Model
import Support
import Text

public struct DemoOptions: Sendable {
    public var dense = "models/dense.h5"
    public var sparse = "models/sparse.h5"
    public var bridge = "bridges/default.h5"
    public var settings = "models/demo.json"
    public var circuits = "circuits"
    public var out = "runs/demo"
    public var quick = false
    public init() {}
}

/// Which site and channel the demo steers through, and the dilution sweep (models/demo.json).
public struct DemoSettings: Codable, Sendable {
    public var steeringSite: String
    public var steeringChannel: Int?          // nil: the first channel by steeringRank
    public var steeringRank: ChannelRanking = .separation
    public var steeringSource: SteeringSource = .sparse
    public var steeringRescale: SteeringRescale = .none
    public var dilutionLengths: [Int] = Array(stride(from: 4, through: 160, by: 12))

    enum CodingKeys: String, CodingKey {
        case steeringSite = "steering_site", steeringChannel = "steering_channel", steeringSource = "steering_source"
        case steeringRescale = "steering_rescale", steeringRank = "steering_rank", dilutionLengths = "dilution_lengths"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steeringSite = try c.decode(String.self, forKey: .steeringSite)
        steeringChannel = try c.decodeIfPresent(Int.self, forKey: .steeringChannel)
        steeringRank = try c.decodeIfPresent(ChannelRanking.self, forKey: .steeringRank) ?? .separation
        steeringSource = try c.decodeIfPresent(SteeringSource.self, forKey: .steeringSource) ?? .sparse
        steeringRescale = try c.decodeIfPresent(SteeringRescale.self, forKey: .steeringRescale) ?? .none
        dilutionLengths = try c.decodeIfPresent([Int].self, forKey: .dilutionLengths) ?? Array(stride(from: 4, through: 160, by: 12))
    }
}

public enum DemoError: UserFacingError {
    case missing(String, how: String)
    case badRun(String)
    public var description: String {
        switch self {
        case .missing(let m, let how): return "\(m); create it with: \(how)"
        case .badRun(let m): return m
        }
    }
}

public enum Demo {
    public static let format = "sparsebridge.demo"
    public static let version = 1

    /// Runs the study; `log` receives progress lines (for stderr).
    @discardableResult
    public static func run(_ o: DemoOptions, log: (String) -> Void) throws -> JSONValue {
        // Every shipped file must be there and sound before any work starts.
        let recipeHint = "make models (see models/recipes/README.md)"
        for (path, how) in [(o.dense, recipeHint), (o.sparse, recipeHint), (o.bridge, "make bridges"), (o.settings, "git checkout models/demo.json")]
            where !FileManager.default.fileExists(atPath: path) {
            throw DemoError.missing("\(path) is missing", how: how)
        }
        let dense: LoadedModel, sparse: LoadedModel, bridge: Bridge
        do {
            dense = try ModelLoader.load(o.dense); sparse = try ModelLoader.load(o.sparse); bridge = try Bridge.load(o.bridge)
        } catch {
            throw DemoError.missing("a shipped file is unreadable (\(error))", how: "\(recipeHint), then make bridges")
        }
        guard let settingsData = FileManager.default.contents(atPath: o.settings),
              let settings = try? JSONDecoder().decode(DemoSettings.self, from: settingsData) else {
            throw DemoError.missing("\(o.settings) is not valid demo settings", how: "git checkout models/demo.json")
        }
        if let bad = settings.dilutionLengths.first(where: { $0 < 1 }) {
            throw DemoError.missing("\(o.settings): dilution length \(bad) is not positive", how: "git checkout models/demo.json")
        }
        if settings.steeringChannel.map({ $0 < 0 || $0 >= sparse.model.config.dModel }) == true {
            throw DemoError.missing("\(o.settings): steering_channel \(settings.steeringChannel!) is outside the sparse model's d_model \(sparse.model.config.dModel)", how: "git checkout models/demo.json")
        }
        guard bridge.sites.contains(where: { $0.hook == settings.steeringSite }) else {
            throw DemoError.missing("\(o.settings): steering_site \(settings.steeringSite) is not a site of \(o.bridge)", how: "git checkout models/demo.json")
        }
        // The circuit files are optional, but one that is there must be sound: found now, not
        // after the study has run.
        var circuitSummaries: [String: JSONValue] = [:]
        for (model, task) in [("sparse", "single_double_quote"), ("dense", "single_double_quote"), ("sparse", "bracket_counting"), ("dense", "bracket_counting")] {
            let path = "\(o.circuits)/\(model)_\(task).json"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let d = FileManager.default.contents(atPath: path), let doc = try? JSONValue.parse(String(decoding: d, as: UTF8.self)),
                  case .array? = doc["nodes"], doc["task"]?.stringValue == task else {
                throw DemoError.missing("\(path) is not a \(task) circuit file", how: "make circuits")
            }
            circuitSummaries["\(model)_\(task)"] = .object(["file": .string(path), "nodes": doc["node_count"] ?? .null,
                                                             "edges": doc["edge_count"] ?? .null, "loss": doc["loss"] ?? .null,
                                                             "checks": doc["checks"] ?? .null])
        }
        let circuitPath = "\(o.circuits)/sparse_bracket_counting.json"
        let depthCandidates = try DilutionStudy.candidates(
            circuit: FileManager.default.fileExists(atPath: circuitPath) ? circuitPath : nil, sparse: sparse.model.config, bridge: bridge)

        // The run folder is built under a temporary name and swapped in whole when complete, so
        // results.json and data.h5 under the final name always come from one finished run (a
        // failure removes the temporary folder, when `folder` goes).
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: o.out).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        let folder = try AtomicOutput(o.out, folder: true)
        let dir = folder.temporaryPath
        let started = Date()
        let pairs = o.quick ? 30 : 100
        var results: [String: JSONValue] = ["format": .string(format), "format_version": .number(Double(version)),
                                            "quick": .bool(o.quick), "dense": .string(o.dense), "sparse": .string(o.sparse),
                                            "bridge": .string(o.bridge)]
        let data = try H5File(create: dir + "/data.h5")
        try data.setAttribute("format", format)
        try data.setAttribute("format_version", version)

        // 1. Task accuracies.
        log("tasks: both models on every task")
        var taskRows: [JSONValue] = []
        for t in TaskSuite.all {
            let ps = t.pairs(count: pairs, seed: 1)
            let dr = try TaskEvaluation.evaluate(model: dense.model, task: t, pairs: ps)
            let sr = try TaskEvaluation.evaluate(model: sparse.model, task: t, pairs: ps)
            taskRows.append(.object(["task": .string(t.name), "dense_accuracy": .number(dr.accuracy), "sparse_accuracy": .number(sr.accuracy),
                                     "dense_contrast_loss": .number(dr.contrastLoss), "sparse_contrast_loss": .number(sr.contrastLoss)]))
        }
        results["tasks"] = .array(taskRows)
        results["models"] = .object([
            "dense": .object(["parameters": .number(Double(dense.model.weights.parameterCount)),
                              "nonzero": .number(Double(dense.model.weights.nonzeroCount)),
                              "heldout_bits_per_char": dense.provenance["final_heldout_bits_per_char"] ?? .null]),
            "sparse": .object(["parameters": .number(Double(sparse.model.weights.parameterCount)),
                               "nonzero": .number(Double(sparse.model.weights.nonzeroCount)),
                               "heldout_bits_per_char": sparse.provenance["final_heldout_bits_per_char"] ?? .null])])

        // 2. Bridge NMSE (from the file) and splicing at every site.
        log("bridges: NMSE and splicing at \(bridge.sites.count) sites")
        results["bridge_nmse"] = .array(bridge.sites.map { s in
            .object(["site": .string(s.hook), "d2s_nmse": .number(s.encoder.nmse), "s2d_nmse": .number(s.decoder.nmse),
                     "d2s_lambda": .number(s.encoder.lambdaRelative), "s2d_lambda": .number(s.decoder.lambdaRelative)])
        })
        let splicer = try Splicer(bridge: bridge, dense: dense.model, sparse: sparse.model, bridgePath: o.bridge)
        var spliceRows: [JSONValue] = []
        var recovered: [String: [Double]] = ["d2s": [], "s2d": []], kl: [String: [Double]] = ["d2s": [], "s2d": []]
        for s in bridge.sites {
            for dir in BridgeDirection.allCases {
                var corpus = SyntheticCorpus(seed: 99)
                let r = try splicer.measure(site: s.hook, direction: dir, corpus: &corpus, sequences: o.quick ? 4 : 16, seqLen: 256)
                recovered[dir.rawValue]!.append(r.recoveredZero)
                kl[dir.rawValue]!.append(r.klClean)
                spliceRows.append(.object(["site": .string(s.hook), "direction": .string(dir.rawValue), "ce_clean": .number(r.ceClean),
                                           "ce_spliced": .number(r.ceSpliced), "ce_zero_ablated": .number(r.ceZeroAblated),
                                           "ce_mean_ablated": .number(r.ceMeanAblated), "ce_recovered": .number(r.recoveredZero),
                                           "kl": .number(r.klClean)]))
            }
        }
        results["splice"] = .array(spliceRows)
        let g = try data.createGroup("splice")
        try g.setAttribute("sites", JSONValue.array(bridge.sites.map { .string($0.hook) }).jsonString)
        for dir in ["d2s", "s2d"] {
            try g.writeDataset("ce_recovered_" + dir, shape: [recovered[dir]!.count], values: recovered[dir]!)
            try g.writeDataset("kl_" + dir, shape: [kl[dir]!.count], values: kl[dir]!)
        }

        // 3. Steering quote type through one sparse channel, and its DePass attribution.
        log("steering: quote type through \(settings.steeringSite)")
        let steerer = try Steerer(bridge: bridge, dense: dense.model, sparse: sparse.model, site: settings.steeringSite,
                                  source: settings.steeringSource, rescale: settings.steeringRescale, bridgePath: o.bridge)
        let quote = TaskSuite.singleDoubleQuote
        let channel = try settings.steeringChannel ?? steerer.rankChannels(pairs: quote.pairs(count: 100, seed: 1), by: settings.steeringRank)[0].channel
        let alphas = stride(from: 0.0, through: 1.0001, by: o.quick ? 0.25 : 0.1).map { min($0, 1) }
        let curve = try steerer.curve(pairs: quote.pairs(count: pairs, seed: 2), channel: channel, alphas: alphas)
        let sg = try data.createGroup("steering")
        try sg.setAttribute("site", settings.steeringSite)
        try sg.setAttribute("channel", channel)
        try sg.setAttribute("source", settings.steeringSource.rawValue)
        try sg.setAttribute("rescale", settings.steeringRescale.rawValue)
        for (name, values) in [("alpha", curve.map(\.alpha)), ("mean_p_target", curve.map(\.meanProbability)),
                               ("logit_diff", curve.map(\.meanLogitDiff)), ("flip_rate", curve.map(\.flipRate)),
                               ("control_logit_diff", curve.map(\.controlMeanLogitDiff)), ("control_flip_rate", curve.map(\.controlFlipRate))] {
            try sg.writeDataset(name, shape: [values.count], values: values)
        }
        results["steering"] = .object(["site": .string(settings.steeringSite), "channel": .number(Double(channel)),
                                       "source": .string(settings.steeringSource.rawValue), "rescale": .string(settings.steeringRescale.rawValue),
                                       "rank": .string(settings.steeringChannel == nil ? settings.steeringRank.rawValue : "named"),
                                       "curve": .array(curve.map { .object(["alpha": .number($0.alpha), "flip_rate": .number($0.flipRate),
                                                                            "logit_diff": .number($0.meanLogitDiff),
                                                                            "control_flip_rate": .number($0.controlFlipRate)]) }),
                                       "flip_rate_at_1": .number(curve.last!.flipRate),
                                       "control_flip_rate_at_1": .number(curve.last!.controlFlipRate)])
        log("DePass of the steered effect")
        let attribution = try steerer.attribute(pairs: quote.pairs(count: o.quick ? 5 : 20, seed: 2), channel: channel, alpha: 1)
        let dg = try data.createGroup("depass")
        try dg.setAttribute("routes", JSONValue.array(attribution.meanRoutes.map { .string($0.name) }).jsonString)
        try dg.writeDataset("route_scores", shape: [attribution.meanRoutes.count], values: attribution.meanRoutes.map(\.score))
        results["depass"] = .object(["pairs": .number(Double(attribution.pairs)), "logit_diff": .number(attribution.meanLogitDiff),
                                     "steering_component": .number(attribution.meanSteeringScore),
                                     "max_relative_error": .number(Double(attribution.worstRelativeError))])

        // 4. The quote circuit (committed by `sparsebridge circuit`).
        results["circuits"] = .object(circuitSummaries)

        // 5. Context dilution.
        log("context dilution: bracket counting against list length")
        let study = try DilutionStudy(dense: dense.model, sparse: sparse.model, bridge: bridge, bridgePath: o.bridge,
                                      pairsPerLength: o.quick ? 8 : 20)
        try study.chooseSignal(candidates: depthCandidates)
        let lengths = o.quick ? Array(settings.dilutionLengths.prefix(4)) : settings.dilutionLengths
        let dilution = try study.run(lengths: lengths, distractors: true)
        var dil: [String: JSONValue] = ["site": .string(study.signal.site.name),
                                        "channels": .array(study.signal.channels.map { .number(Double($0)) })]
        let dgroup = try data.createGroup("dilution")
        for r in dilution {
            let mg = try dgroup.createGroup(r.name)
            for (name, values) in [("length", r.points.map { Double($0.length) }), ("accuracy_depth2", r.points.map(\.accuracyDepth2)),
                                   ("accuracy_depth1", r.points.map(\.accuracyDepth1)), ("signal_depth2", r.points.map(\.signalDepth2)),
                                   ("signal_depth1", r.points.map(\.signalDepth1))] {
                try mg.writeDataset(name, shape: [values.count], values: values)
            }
            try mg.setAttribute("fit", [r.fit.a, r.fit.b])
            try mg.setAttribute("threshold", r.threshold)
            try mg.setAttribute("own_threshold", r.ownThreshold)
            dil[r.name] = .object(["predicted_flip_length": r.predictedFlip.map { .number($0) } ?? .null,
                                   "predicted_from": .string(r.predictedFrom),
                                   "threshold": r.threshold.isNaN ? .null : .number(r.threshold),
                                   "own_threshold": r.ownThreshold.isNaN ? .null : .number(r.ownThreshold),
                                   "measured_flip_length": r.measuredFlip.map { .number(Double($0)) } ?? .null,
                                   "distractor_accuracy": r.distractorAccuracy.map { .number($0) } ?? .null])
        }
        results["dilution"] = .object(dil)
        results["seconds"] = .number(Date().timeIntervalSince(started))
        data.closeFile()
        try Data((JSONValue.object(results).jsonString + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/results.json"))
        try folder.commit()
        return .object(results)
    }

    /// Reads a run folder's results, refusing missing folders and other format versions.
    public static func loadRun(_ dir: String) throws -> JSONValue {
        let path = dir + "/results.json"
        guard let d = FileManager.default.contents(atPath: path) else {
            throw DemoError.badRun("\(dir): no results.json here (run `sparsebridge demo --out \(dir)` first)")
        }
        guard let r = try? JSONValue.parse(String(decoding: d, as: UTF8.self)), r["format"]?.stringValue == format else {
            throw DemoError.badRun("\(path): not a SparseBridge demo result")
        }
        let v = Int(r["format_version"]?.numberValue ?? -1)
        guard v == version else {
            throw DemoError.badRun("\(path): format_version \(v), this program reads \(version); rerun `sparsebridge demo --out \(dir)`")
        }
        guard FileManager.default.fileExists(atPath: dir + "/data.h5") else { throw DemoError.badRun("\(dir): data.h5 is missing") }
        return r
    }
}
