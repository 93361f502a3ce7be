import ArgumentParser
import DePass
import Foundation
import Steering
import Tasks
import Checkpoints
import Model
import Text

struct FaithfulnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faithfulness",
        abstract: "Remove the top-k heads, neurons or tokens ranked by DePass and by baselines; compare the accuracy drops.")

    @Option(help: "Model file (.h5).") var model: String
    @Option(help: "Task name.") var task: String
    @Option(help: "head | neuron | token") var unit: FaithfulnessUnit = .head
    @Option(help: "Comma-separated k values.") var ks = "1,2,4,8"
    @Option(help: "Prompt pairs (both prompts of each are scored).") var pairs = 25
    @Option(help: "MLP rule for DePass: ratio | softmax") var rule: MLPRule = .softmax
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let u = unit, r = rule
        let kList = ks.split(separator: ",").compactMap { Int($0) }
        guard !kList.isEmpty, kList.allSatisfy({ $0 >= 0 }) else { throw ValidationError("--ks must be a list of counts ≥ 0") }
        let loaded = try ModelLoader.load(model)
        let t = try TaskSuite.named(task)
        let f = Faithfulness(model: loaded.model, rule: r)
        var corpus = SyntheticCorpus(seed: 5)
        let means = try f.means(corpus: &corpus, sequences: 16, seqLen: min(256, loaded.model.config.nCtx))
        let pairList = t.pairs(count: pairs, seed: 3)
        let baseline = try TaskEvaluation.evaluate(model: loaded.model, task: t, pairs: pairList).accuracy
        let curves = try f.curves(u, pairs: pairList, ks: kList, means: means)
        if json {
            printJSON(.object(["task": .string(task), "unit": .string(unit.rawValue), "accuracy": .number(baseline),
                               "curves": .array(curves.map { .object(["method": .string($0.method),
                                                                      "k": .array($0.ks.map { .number(Double($0)) }),
                                                                      "accuracy": .array($0.accuracy.map { .number($0) })]) })]))
            return
        }
        print("\(task): accuracy \(fmt(baseline, 3)) on \(pairList.count * 2) prompts; accuracy after removing the top k "
                + "\(unit.rawValue)s:")
        var table = Table(headers: ["method"] + kList.map { "k=\($0)" })
        for c in curves { table.rows.append([c.method] + c.accuracy.map { fmt($0, 3) }) }
        print(table.render())
    }
}
