import ArgumentParser
import Circuits
import Foundation
import HDF5
import Tasks
import Tensors
import Checkpoints
import Model
import Support
import Text

struct CircuitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "circuit", abstract: "Prune a model to the smallest set of nodes that still does a task (node masks + bisection).")

    @Option(help: "Model file (.h5).") var model: String
    @Option(help: "Task name.") var task: String
    @Option(name: .customLong("target-loss"), help: "Contrast loss the circuit must reach.") var targetLoss = 0.15
    @Option(help: "mean (corpus means) or zero.") var ablation: AblationKind = .mean
    @Option(help: "Optimisation steps.") var steps = 300
    @Option(help: "Prompt pairs per optimisation step (fresh pairs every step).") var pairs = 32
    @Option(name: .customLong("eval-pairs"), help: "Prompt pairs that choose the size; as many again are held out for the checks.") var evalPairs = 512
    @Option(help: "Standard errors of margin: the circuit's loss on the sizing prompts plus this many standard errors must be within the target.") var confidence = 2.0
    @Option(help: "Fixed penalty per open node (default: adaptive, steering the masked loss to the target).") var penalty: Double?
    @Option(help: "Learning rate for the masks.") var lr: Float = 0.02
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Flag(inversion: .prefixedNo, help: "After the search, close every node the circuit can do without (backward elimination on the sizing prompts).")
    var refine = true
    @Option(help: "Output JSON.") var out: String
    @Option(help: "Also write Graphviz DOT here.") var dot: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let kind = ablation
        let outFile = try AtomicOutput(out)
        let dotFile = try dot.map { try AtomicOutput($0) }
        let loaded = try ModelLoader.load(model)
        let m = loaded.model, t = try TaskSuite.named(task)
        var corpus = SyntheticCorpus(seed: 5)
        let values = kind == .mean ? try AblationValues.means(model: m, corpus: &corpus, sequences: 16, seqLen: min(256, m.config.nCtx))
                                   : AblationValues.zeros(m.config)
        var options = PruneOptions()
        options.steps = steps; options.targetLoss = targetLoss; options.penalty = penalty; options.learningRate = lr; options.seed = seed; options.confidence = confidence
        let pruner = Pruner(model: m, ablation: values, options: options)
        guard pairs > 0, evalPairs > 0 else { throw ValidationError("--pairs and --eval-pairs must be positive") }
        guard confidence >= 0 else { throw ValidationError("--confidence must not be negative") }
        // Three disjoint streams of generated prompts: optimisation, sizing, checks.
        let validation = t.pairs(count: evalPairs, seed: seed &+ 500).flatMap(\.prompts)
        let heldout = t.pairs(count: evalPairs, seed: seed &+ 1000).flatMap(\.prompts)
        let batch = { (step: Int) in t.pairs(count: pairs,
                                             seed: seed &* 1_000_003 &+ UInt64(step) &* 7919 &+ 2_000_000).flatMap(\.prompts) }
        let fullSizing = try pruner.evaluate(NodeMask.all(m.config, open: true), prompts: validation)
        guard pruner.meetsTarget(fullSizing) else {
            throw CommandError("the full model's contrast loss on \(task) is \(fmt(fullSizing.loss)) ± \(fmt(fullSizing.standardError)) (standard error), not within --target-loss \(targetLoss) by --confidence \(confidence) standard errors: no circuit can reach it")
        }
        let progress = ProgressLine("circuit", total: steps, unit: "steps")
        try pruner.optimize(batches: batch) { step, loss, open in progress.update(step, extra: "loss \(fmt(loss)) open \(open)") }
        progress.finish()
        guard let (searched, searchedLoss) = try pruner.circuit(validation: validation) else {
            throw CommandError("no mask reached --target-loss \(targetLoss) on \(task)")
        }
        var (mask, loss) = (searched, searchedLoss)
        if refine {
            let refining = ProgressLine("refine", total: searched.openCount, unit: "nodes")
            (mask, loss) = try pruner.refine(searched, prompts: validation) { done, _, open in refining.update(done, extra: "open \(open)") }
            refining.finish()
        }
        let alone = try pruner.evaluate(mask, prompts: heldout)
        let without = try pruner.evaluate(mask.inverted(), prompts: heldout)
        let full = try pruner.evaluate(NodeMask.all(m.config, open: true), prompts: heldout)
        let graph = CircuitGraph(model: m, mask: mask)
        func score(_ s: (loss: Double, accuracy: Double, standardError: Double)) -> CircuitFile.Score {
            CircuitFile.Score(loss: s.loss, accuracy: s.accuracy, standardError: s.standardError)
        }
        var file = graph.file()
        file.model = model; file.task = task; file.ablation = ablation.rawValue; file.targetLoss = targetLoss
        file.confidence = confidence; file.loss = loss; file.totalNodes = pruner.nodeCount
        file.refined = refine; file.searchedNodes = searched.openCount; file.searchedLoss = searchedLoss
        // A model made by `plant` knows its circuit: say how much of it was found.
        if let known = loaded.provenance["planted_circuit"]?["nodes"]?.arrayValue?.compactMap(\.stringValue) {
            file.planted = CircuitFile.Planted(known: known, found: graph.nodes.map { CircuitGraph.id($0.location, $0.index) })
        }
        file.checks = CircuitFile.Checks(heldoutPrompts: heldout.count, fullModel: score(full), circuitAlone: score(alone),
                                         circuitAblated: score(without), circuitAloneWithinTarget: alone.loss <= targetLoss)
        try file.write(to: outFile)
        if let dotFile {
            try Data(graph.dot(title: "\(task): \(graph.nodes.count) nodes, \(graph.edges.count) edges").utf8)
                .write(to: URL(fileURLWithPath: dotFile.temporaryPath))
            try dotFile.commit()
        }
        if json { print(try JSONValue.string(file.summary)); return }
        let refined = refine ? "; the search kept \(searched.openCount), refining closed \(searched.openCount - graph.nodes.count)" : ""
        print("\(task): \(graph.nodes.count) of \(pruner.nodeCount) nodes, \(graph.edges.count) edges, contrast loss \(fmt(loss)) (target \(targetLoss))\(refined)")
        var table = Table(headers: ["held-out check", "contrast loss", "accuracy"])
        table.rows = [["full model", fmt(full.loss), fmt(full.accuracy, 3)], ["circuit alone", fmt(alone.loss), fmt(alone.accuracy, 3)],
                      ["circuit ablated", fmt(without.loss), fmt(without.accuracy, 3)]]
        print(table.render())
        print("circuit alone on held-out prompts: " + (alone.loss <= targetLoss ? "within" : "NOT within") + " the target loss")
        var byLocation: [String: Int] = [:]
        for n in graph.nodes { byLocation[n.location.name, default: 0] += 1 }
        print("nodes by location: " + byLocation.keys.sorted().map { "\($0) \(byLocation[$0]!)" }.joined(separator: ", "))
        if let p = file.planted {
            print("planted circuit: \(p.recovered) of \(p.nodes) nodes recovered, \(p.extra.count) extra"
                  + (p.missing.isEmpty ? "" : "; missing \(p.missing.joined(separator: ", "))"))
        }
        print("wrote \(out)" + (dot.map { " and \($0)" } ?? ""))
    }
}
