import ArgumentParser
import Foundation
import HDF5
import Tensors
import Training
import Checkpoints
import Model
import Support

struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Gradient of the next-token loss on a text, for every parameter and chosen hook sites.")

    @Option(help: "Model file (.h5).")
    var model: String
    @Option(help: "The text (at most n_ctx + 1 tokens); each token predicts the next.")
    var text: String
    @Option(help: "Hook sites whose gradients to store (comma-separated, 'resid', 'all').")
    var sites: String = ""
    @Option(help: "Output file (.h5): params/<name>, sites/<hook> (one sequence's hook shape), attribute loss.")
    var out: String
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let loaded = try ModelLoader.load(model)
        let c = loaded.model.config
        let tokens = try loaded.tokenizer.encode(text)
        guard tokens.count >= 2, tokens.count <= c.nCtx + 1 else {
            throw CommandError("--text must hold between 2 and n_ctx + 1 = \(c.nCtx + 1) tokens, not \(tokens.count)")
        }
        let points = sites.isEmpty ? [] : try HookPoint.parseList(sites, config: c)
        let result = try LossGradient.compute(model: loaded.model, tokens: tokens, batch: 1, seqLen: tokens.count - 1,
                                              sites: points)
        let output = try AtomicOutput(out)
        let file = try H5File(create: output.temporaryPath)
        try file.setAttribute("format", "sparsebridge.gradients")
        try file.setAttribute("format_version", 1)
        try file.setAttribute("model", model)
        try file.setAttribute("loss", result.loss)
        for p in result.parameters.parameters {
            try file.writeDataset("params/" + p.name, shape: p.tensor.shape, values: UnsafePointer(p.tensor.data))
        }
        for point in points {
            let g = result.sites[point]!
            try file.writeDataset("sites/" + point.name, shape: point.shape(config: c, seqLen: tokens.count - 1),
                                  values: UnsafePointer(g.data))
        }
        file.closeFile()
        try output.commit()
        print("wrote \(out): loss \(fmt(result.loss)) nats over \(tokens.count - 1) predictions")
    }
}
