import ArgumentParser
import Foundation
import Tasks
import Checkpoints
import Model
import Text

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks", abstract: "The binary next-token tasks and the synthetic corpus.",
        subcommands: [List.self, Sample.self, Eval.self, Corpus.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tasks.")
        @Flag(help: "Print JSON.") var json = false
        func run() {
            if json {
                printJSON(.array(TaskSuite.all.map { .object(["name": .string($0.name), "summary": .string($0.summary),
                                                              "length": .string($0.lengthMeaning)]) }))
                return
            }
            var table = Table(headers: ["task", "what the model must do", "--length means"])
            for t in TaskSuite.all { table.rows.append([t.name, t.summary, t.lengthMeaning]) }
            print(table.render())
        }
    }

    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print prompt pairs of a task.")
        @Argument(help: "Task name.") var task: String
        @Option(help: "Pairs to print.") var count = 3
        @Option(help: "Seed.") var seed: UInt64 = 0
        @Option(help: "Task length parameter (see `tasks list`).") var length: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let t = try TaskSuite.named(task)
            let pairs = t.pairs(count: count, seed: seed, length: length)
            let text = { (p: TaskPrompt) in String(decoding: p.tokens.map { UInt8($0) }, as: UTF8.self) }
            let char = { (c: Int32) in String(reflecting: String(UnicodeScalar(UInt8(c)))) }
            if json {
                printJSON(.array(pairs.map { pair in .array(pair.prompts.map {
                    .object(["prompt": .string(text($0)), "target": .string(String(UnicodeScalar(UInt8($0.target)))),
                             "alternative": .string(String(UnicodeScalar(UInt8($0.alternative))))])
                }) }))
                return
            }
            for (i, pair) in pairs.enumerated() {
                for (label, p) in [("presented", pair.presented), ("counterfactual", pair.counterfactual)] {
                    print("--- pair \(i) \(label): target \(char(p.target)), alternative \(char(p.alternative))")
                    print(text(p) + "⟨?⟩")
                }
            }
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Evaluate a model on a task.")
        @Option(help: "Model file (.h5).") var model: String
        @Option(help: "Task name, or 'all'.") var task: String
        @Option(help: "Task length parameter (default: drawn like the training text).") var length: Int?
        @Option(help: "Prompt pairs.") var count = 200
        @Option(help: "Seed for the prompts.") var seed: UInt64 = 1
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            try compute.apply()
            guard count > 0 else { throw ValidationError("--count must be positive") }
            let loaded = try ModelLoader.load(model)
            let tasks = task == "all" ? TaskSuite.all : [try TaskSuite.named(task)]
            let results = try tasks.map { t in
                try TaskEvaluation.evaluate(model: loaded.model, task: t, pairs: t.pairs(count: count, seed: seed, length: length))
            }
            if json {
                printJSON(.array(results.map { .object(["task": .string($0.task), "prompts": .number(Double($0.prompts)),
                                                        "accuracy": .number($0.accuracy),
                                                        "mean_p_target": .number($0.meanProbability),
                                                        "contrast_loss": .number($0.contrastLoss)]) }))
                return
            }
            var table = Table(headers: ["task", "prompts", "accuracy", "mean P(target)", "contrast loss"])
            for r in results {
                table.rows.append([r.task, "\(r.prompts)", fmt(r.accuracy), fmt(r.meanProbability), fmt(r.contrastLoss)])
            }
            print(table.render())
        }
    }

    struct Corpus: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the start of the synthetic corpus.")
        @Option(help: "Seed.") var seed: UInt64 = 0
        @Option(help: "Characters to print.") var chars = 2000
        func run() throws {
            var c = SyntheticCorpus(seed: seed)
            let tokens = try c.next(chars)!
            print(String(decoding: tokens.map { UInt8($0) }, as: UTF8.self))
        }
    }
}
