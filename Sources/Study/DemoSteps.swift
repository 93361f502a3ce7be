// The steps of the study, in the order Demo.run takes them. Each reads the checked inputs,
// writes its arrays to data.h5 and its figures into the typed results.

import Bridges
import Checkpoints
import Circuits
import DePass
import Foundation
import HDF5
import Model
import Steering
import Support
import Tasks
import Text

/// The shipped files and settings, loaded and checked before any work starts.
struct DemoInputs {
    let options: DemoOptions
    let dense: LoadedModel
    let sparse: LoadedModel
    let bridge: Bridge
    let settings: DemoSettings
    /// Summaries of the committed circuit files that are there, by "model_task".
    let circuits: [String: CircuitSummary]
    /// Where the dilution study may look for the depth signal.
    let depthCandidates: [(Int, Int)]

    /// Prompt pairs per task and per steering curve.
    var pairs: Int { options.quick ? 30 : 100 }

    init(_ o: DemoOptions) throws {
        options = o
        let recipeHint = "make models (see models/recipes/README.md)"
        for (path, how) in [(o.dense, recipeHint), (o.sparse, recipeHint), (o.bridge, "make bridges"),
                            (o.settings, "git checkout models/demo.json")]
            where !FileManager.default.fileExists(atPath: path) {
            throw DemoError.missing("\(path) is missing", how: how)
        }
        do {
            dense = try ModelLoader.load(o.dense); sparse = try ModelLoader.load(o.sparse); bridge = try Bridge.load(o.bridge)
        } catch {
            throw DemoError.missing("a shipped file is unreadable (\(error))", how: "\(recipeHint), then make bridges")
        }
        guard let settingsData = FileManager.default.contents(atPath: o.settings),
              let settings = try? JSONDecoder().decode(DemoSettings.self, from: settingsData) else {
            throw DemoError.missing("\(o.settings) is not valid demo settings", how: "git checkout models/demo.json")
        }
        self.settings = settings
        if let bad = settings.dilutionLengths.first(where: { $0 < 1 }) {
            throw DemoError.missing("\(o.settings): dilution length \(bad) is not positive", how: "git checkout models/demo.json")
        }
        let dModel = sparse.model.config.dModel
        if settings.steeringChannel.map({ $0 < 0 || $0 >= dModel }) == true {
            throw DemoError.missing("\(o.settings): steering_channel \(settings.steeringChannel!) is outside the sparse model's "
                    + "d_model \(dModel)", how: "git checkout models/demo.json")
        }
        let steeringSite = settings.steeringSite
        guard bridge.sites.contains(where: { $0.hook == steeringSite }) else {
            throw DemoError.missing("\(o.settings): steering_site \(settings.steeringSite) is not a site of \(o.bridge)",
                                    how: "git checkout models/demo.json")
        }
        // The circuit files are optional, but one that is there must be sound: found now, not
        // after the study has run.
        var circuits: [String: CircuitSummary] = [:]
        for (model, task) in [("sparse", "single_double_quote"), ("dense", "single_double_quote"), ("sparse", "bracket_counting"),
                              ("dense", "bracket_counting")] {
            let path = "\(o.circuits)/\(model)_\(task).json"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let file = try? CircuitFile.read(path), file.task == task else {
                throw DemoError.missing("\(path) is not a \(task) circuit file", how: "make circuits")
            }
            circuits["\(model)_\(task)"] = CircuitSummary(file: path, nodes: file.nodeCount, edges: file.edgeCount, loss: file.loss,
                                                          checks: file.checks)
        }
        self.circuits = circuits
        let circuitPath = "\(o.circuits)/sparse_bracket_counting.json"
        depthCandidates = try DilutionStudy.candidates(
            circuit: FileManager.default.fileExists(atPath: circuitPath) ? circuitPath : nil, sparse: sparse.model.config, bridge: bridge)
    }
}

extension Demo {
    /// 1. Both models on every task, and the models' sizes.
    static func taskAccuracy(_ inputs: DemoInputs, into results: inout StudyResults) throws {
        let dense = inputs.dense, sparse = inputs.sparse
        for t in TaskSuite.all {
            let ps = t.pairs(count: inputs.pairs, seed: 1)
            let dr = try TaskEvaluation.evaluate(model: dense.model, task: t, pairs: ps)
            let sr = try TaskEvaluation.evaluate(model: sparse.model, task: t, pairs: ps)
            results.tasks.append(TaskAccuracy(task: t.name, denseAccuracy: dr.accuracy, sparseAccuracy: sr.accuracy,
                                              denseContrastLoss: dr.contrastLoss, sparseContrastLoss: sr.contrastLoss))
        }
        func summary(_ m: LoadedModel) -> ModelSummary {
            ModelSummary(parameters: m.model.weights.parameterCount, nonzero: m.model.weights.nonzeroCount,
                         heldoutBitsPerChar: m.provenance["final_heldout_bits_per_char"]?.numberValue)
        }
        results.models = ModelPair(dense: summary(dense), sparse: summary(sparse))
    }

    /// 2. Bridge NMSE (from the file) and splicing at every site.
    static func bridgeMetrics(_ inputs: DemoInputs, data: H5File, into results: inout StudyResults) throws {
        let bridge = inputs.bridge, o = inputs.options
        results.bridgeNMSE = bridge.sites.map { s in
            BridgeNMSE(site: s.hook, d2sNMSE: s.encoder.nmse, s2dNMSE: s.decoder.nmse, d2sLambda: s.encoder.lambdaRelative,
                       s2dLambda: s.decoder.lambdaRelative)
        }
        let splicer = try Splicer(bridge: bridge, dense: inputs.dense.model, sparse: inputs.sparse.model, bridgePath: o.bridge)
        var recovered: [String: [Double]] = ["d2s": [], "s2d": []], kl: [String: [Double]] = ["d2s": [], "s2d": []]
        for s in bridge.sites {
            for dir in BridgeDirection.allCases {
                var corpus = SyntheticCorpus(seed: 99)
                let r = try splicer.measure(site: s.hook, direction: dir, corpus: &corpus, sequences: o.quick ? 4 : 16, seqLen: 256)
                recovered[dir.rawValue]!.append(r.recoveredZero)
                kl[dir.rawValue]!.append(r.klClean)
                results.splice.append(SpliceRow(site: s.hook, direction: dir.rawValue, ceClean: r.ceClean, ceSpliced: r.ceSpliced,
                                                ceZeroAblated: r.ceZeroAblated, ceMeanAblated: r.ceMeanAblated,
                                                ceRecovered: r.recoveredZero, kl: r.klClean))
            }
        }
        let g = try data.createGroup("splice")
        try g.setAttribute("sites", JSONValue.array(bridge.sites.map { .string($0.hook) }).jsonString)
        for dir in ["d2s", "s2d"] {
            try g.writeDataset("ce_recovered_" + dir, shape: [recovered[dir]!.count], values: recovered[dir]!)
            try g.writeDataset("kl_" + dir, shape: [kl[dir]!.count], values: kl[dir]!)
        }
    }

    /// 3. Steering quote type through one sparse channel; returns the steerer and the channel.
    static func steering(_ inputs: DemoInputs, data: H5File, into results: inout StudyResults) throws -> (Steerer, Int) {
        let settings = inputs.settings, o = inputs.options
        let steerer = try Steerer(bridge: inputs.bridge, dense: inputs.dense.model, sparse: inputs.sparse.model,
                                  site: settings.steeringSite,
                                  source: settings.steeringSource, rescale: settings.steeringRescale, bridgePath: o.bridge)
        let quote = TaskSuite.singleDoubleQuote
        let channel = try settings.steeringChannel
            ?? steerer.rankChannels(pairs: SteeringPairs.ranking(quote), by: settings.steeringRank)[0].channel
        let alphas = stride(from: 0.0, through: 1.0001, by: o.quick ? 0.25 : 0.1).map { min($0, 1) }
        let curve = try steerer.curve(pairs: SteeringPairs.heldout(quote, count: inputs.pairs), channel: channel, alphas: alphas)
        let sg = try data.createGroup("steering")
        try sg.setAttribute("site", settings.steeringSite)
        try sg.setAttribute("channel", channel)
        try sg.setAttribute("source", settings.steeringSource.rawValue)
        try sg.setAttribute("rescale", settings.steeringRescale.rawValue)
        for (name, values) in [("alpha", curve.map(\.alpha)), ("mean_p_target", curve.map(\.meanProbability)),
                               ("logit_diff", curve.map(\.meanLogitDiff)), ("flip_rate", curve.map(\.flipRate)),
                               ("control_logit_diff", curve.map(\.controlMeanLogitDiff)), ("control_flip_rate",
                                                                                           curve.map(\.controlFlipRate))] {
            try sg.writeDataset(name, shape: [values.count], values: values)
        }
        results.steering = SteeringSummary(site: settings.steeringSite, channel: channel, source: settings.steeringSource.rawValue,
                                           rescale: settings.steeringRescale.rawValue,
                                           rank: settings.steeringChannel == nil ? settings.steeringRank.rawValue : "named",
                                           curve: curve, flipRateAt1: curve.last!.flipRate, controlFlipRateAt1: curve.last!.controlFlipRate)
        return (steerer, channel)
    }

    /// 3b. DePass of the steered run at α = 1.
    static func attribution(_ inputs: DemoInputs, steerer: Steerer, channel: Int, data: H5File, into results: inout StudyResults) throws {
        let pairs = SteeringPairs.heldout(TaskSuite.singleDoubleQuote, count: inputs.options.quick ? 5 : SteeringPairs.attributionCount)
        let attribution = try steerer.attribute(pairs: pairs, channel: channel, alpha: 1)
        let dg = try data.createGroup("depass")
        try dg.setAttribute("routes", JSONValue.array(attribution.meanRoutes.map { .string($0.name) }).jsonString)
        try dg.writeDataset("route_scores", shape: [attribution.meanRoutes.count], values: attribution.meanRoutes.map(\.score))
        results.depass = DePassSummary(pairs: attribution.pairs, logitDiff: attribution.meanLogitDiff,
                                       steeringComponent: attribution.meanSteeringScore,
                                       maxRelativeError: Double(attribution.worstRelativeError))
    }

    /// 5. Context dilution: the depth signal against list length, predicted and measured.
    static func dilution(_ inputs: DemoInputs, data: H5File, into results: inout StudyResults) throws {
        let o = inputs.options
        let study = try DilutionStudy(dense: inputs.dense.model, sparse: inputs.sparse.model, bridge: inputs.bridge, bridgePath: o.bridge,
                                      pairsPerLength: o.quick ? 8 : 20)
        try study.chooseSignal(candidates: inputs.depthCandidates)
        let lengths = o.quick ? Array(inputs.settings.dilutionLengths.prefix(4)) : inputs.settings.dilutionLengths
        let dilution = try study.run(lengths: lengths, distractors: true)
        results.dilution.site = study.signal.site.name
        results.dilution.channels = study.signal.channels
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
            let summary = DilutionModelSummary(predictedFlipLength: r.predictedFlip, predictedFrom: r.predictedFrom,
                                               threshold: r.threshold.isNaN ? nil : r.threshold,
                                               ownThreshold: r.ownThreshold.isNaN ? nil : r.ownThreshold,
                                               measuredFlipLength: r.measuredFlip, distractorAccuracy: r.distractorAccuracy)
            if r.name == "sparse" { results.dilution.sparse = summary } else { results.dilution.dense = summary }
        }
    }
}
