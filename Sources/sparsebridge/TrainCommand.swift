import ArgumentParser
import Foundation
import HDF5
import Tasks
import Tensors
import Training
import Model
import Support
import Text

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a model from a recipe (dense, or weight-sparse with annealing).")

    @Option(help: "Recipe file (JSON; see docs/training.md).")
    var recipe: String
    @Option(help: "Output model file (.h5). A checkpoint is kept at .NAME.checkpoint.h5 beside it until the end.")
    var out: String
    @Flag(help: "Continue from the checkpoint beside --out.")
    var resume = false
    @Flag(help: "Print a JSON line per evaluation instead of text.")
    var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let r = try Recipe.load(recipe)
        for t in r.evalTasks { _ = try TaskSuite.named(t) }
        let url = URL(fileURLWithPath: out)
        let checkpoint = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".checkpoint.h5").path
        // Fails early if the output folder is missing, and holds the output's lock for the whole
        // run: the checkpoint beside it is this run's alone.
        let reservation = try AtomicOutput(out)
        let corpus = SyntheticCorpus(seed: r.corpusSeed), heldout = SyntheticCorpus(seed: r.corpusSeed &+ 1_000_000)
        let trainer: Trainer
        if resume && FileManager.default.fileExists(atPath: checkpoint) {
            trainer = try TrainingCheckpoint.resume(checkpoint, recipe: r, corpus: corpus, heldout: heldout)
        } else {
            // As capture does: a run killed before its first checkpoint is simply run again.
            if resume { FileHandle.standardError.write(Data("note: no checkpoint to resume at \(checkpoint); starting afresh\n".utf8)) }
            trainer = try Trainer(recipe: r, corpus: corpus, heldout: heldout)
        }
        let evalPairs = r.evalTasks.map { name in (name, try! TaskSuite.named(name).pairs(count: r.evalPairs, seed: 12_345)) }
        func evaluate() throws -> [String: TaskResult] {
            var out: [String: TaskResult] = [:]
            for (name, pairs) in evalPairs {
                out[name] = try TaskEvaluation.evaluate(model: trainer.model, task: try TaskSuite.named(name), pairs: pairs)
            }
            return out
        }
        let progress = ProgressLine("train", total: r.steps, unit: "steps")
        let started = Date()
        let startStep = trainer.step
        var recent: [Double] = []
        while trainer.step < r.steps {
            let report = try trainer.trainStep()
            recent.append(report.loss)
            if recent.count > 50 { recent.removeFirst() }
            let elapsed = Date().timeIntervalSince(started)
            let tokensPerSecond = Double((trainer.step - startStep) * r.batch * r.seqLen) / max(elapsed, 1e-9)
            progress.update(trainer.step, extra: String(format: "loss %.3f  %.0f tokens/s  kept %.4f", report.loss,
                                                        tokensPerSecond, report.keptFraction))
            let s = trainer.step
            if s % r.evalEvery == 0 || s == r.steps {
                let held = try trainer.heldoutLoss()
                let tasks = try evaluate()
                let mean = recent.reduce(0, +) / Double(recent.count)
                if json {
                    var fields: [String: JSONValue] = ["step": .number(Double(s)), "train_loss": .number(mean),
                                                       "heldout_loss": .number(held), "bits_per_char": .number(held / log(2)),
                                                       "kept_fraction": .number(report.keptFraction),
                                                       "lr": .number(report.learningRate), "seconds": .number(elapsed),
                                                       "tokens_per_s": .number(tokensPerSecond)]
                    for (k, v) in tasks { fields[k] = .number(v.accuracy) }
                    printJSON(.object(fields))
                } else {
                    let taskText = tasks.keys.sorted().map { "\($0) \(fmt(tasks[$0]!.accuracy, 3))" }.joined(separator: "  ")
                    print(String(format: "step %d/%d  loss %.4f  held-out %.4f (%.3f bits/char)  kept %.4f  lr %.2e  %.0f tok/s  %@",
                                 s, r.steps, mean, held, held / log(2), report.keptFraction, report.learningRate,
                                 tokensPerSecond, taskText))
                }
                fflush(stdout)
            }
            if s % r.checkpointEvery == 0 && s < r.steps {
                try TrainingCheckpoint.save(trainer, to: checkpoint)
            }
        }
        progress.finish()
        let held = try trainer.heldoutLoss()
        let tasks = try evaluate()
        var provenance: [String: JSONValue] = [
            "made_by": .string("sparsebridge train"), "recipe_file": .string(recipe),
            "recipe": try JSONValue.parse(r.jsonString), "seed": .number(Double(r.seed)),
            "steps": .number(Double(r.steps)), "tokens_seen": .number(Double(trainer.tokensSeen)),
            "final_heldout_loss_nats": .number(held), "final_heldout_bits_per_char": .number(held / log(2)),
            "threads": .number(Double(Parallel.threads)),
            "final_kept_fraction": .number(trainer.keptFraction),
        ]
        provenance["task_accuracy"] = .object(tasks.mapValues { .number($0.accuracy) })
        try ModelFile.save(trainer.model, tokenizer: CharTokenizer(), provenance: .object(provenance), to: out)
        try? AtomicOutput.remove(checkpoint)
        reservation.discard()
        let params = trainer.model.weights.parameterCount, nonzero = trainer.model.weights.nonzeroCount
        print("wrote \(out): held-out \(fmt(held)) nats = \(fmt(held / log(2))) bits/char, \(nonzero)/\(params) nonzero, "
              + "\(fmt(Date().timeIntervalSince(started), 0)) s")
    }
}
