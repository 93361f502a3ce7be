// Training checkpoints (HDF5): attributes `format` = "sparsebridge.checkpoint",
// `format_version`, `recipe` (JSON), `step`, `sequences_consumed`, 
// `threads`; datasets `loss_log` [steps] (training loss per step), `model/<param>`, `adam_m/<param>`, `adam_v/<param>`.

import Foundation
import HDF5
import Tensors
import Model
import Support
import Text

public enum TrainingCheckpoint {
    public static let format = "sparsebridge.checkpoint"
    public static let version = 1

    public static func save(_ trainer: Trainer, to path: String) throws {
        let output = try AtomicOutput(path)
        let file = try H5File(create: output.temporaryPath)
        try file.setAttribute("format", format)
        try file.setAttribute("format_version", version)
        try file.setAttribute("recipe", trainer.recipe.jsonString)
        try file.setAttribute("step", trainer.step)
        try file.setAttribute("sequences_consumed", trainer.sequencesConsumed)
        try file.writeDataset("loss_log", shape: [trainer.lossLog.count], values: trainer.lossLog)
        try file.setAttribute("threads", Parallel.threads)
        for (group, weights) in [("model", trainer.model.weights), ("adam_m", trainer.optimizer.m), ("adam_v", trainer.optimizer.v)] {
            for p in weights.parameters {
                try file.writeDataset(group + "/" + p.name, shape: p.tensor.shape, values: UnsafePointer(p.tensor.data))
            }
        }
        file.closeFile()
        try output.commit()
    }

    /// A trainer continuing from a checkpoint; the recipe must be the one it was made with.
    public static func resume(_ path: String, recipe: Recipe, corpus: any TokenStream, heldout: any TokenStream) throws -> Trainer {
        let file = try H5File(open: path)
        try ModelFile.checkFormat(file, expected: format, version: version, what: "checkpoint")
        let stored = try file.stringAttribute("recipe")
        guard stored == recipe.jsonString else {
            throw TrainingError.badFile(path: path, "was made with a different recipe; cannot resume")
        }
        let threads = try file.intAttribute("threads")
        if threads != Parallel.threads {
            FileHandle.standardError.write(Data(("note: \(path) was written with \(threads) threads, resuming with "
                    + "\(Parallel.threads): the result will differ in the last bits from an uninterrupted run\n").utf8))
        }
        func load(_ group: String) throws -> TransformerWeights {
            try TransformerWeights(config: recipe.model) { name, shape, _ in
                let ds = try file.openDataset(group + "/" + name)
                guard ds.shape == shape else { throw TrainingError.badFile(path: path, "\(group)/\(name) has shape \(ds.shape)") }
                let t = Tensor(zeros: shape)
                if t.count > 0 { try ds.readRows(0, count: shape[0], into: t.data) }
                return t
            }
        }
        let model = Transformer(weights: try load("model"))
        let trainer = try Trainer(recipe: recipe, model: model, corpus: corpus, heldout: heldout)
        for (dst, src) in [(trainer.optimizer.m, try load("adam_m")), (trainer.optimizer.v, try load("adam_v"))] {
            for (a, b) in zip(dst.parameters, src.parameters) { a.tensor.copy(from: b.tensor) }
        }
        let log: [Double] = try file.openDataset("loss_log").read()
        try trainer.restore(step: try file.intAttribute("step"), sequencesConsumed: try file.intAttribute("sequences_consumed"),
                            lossLog: log)
        return trainer
    }
}
