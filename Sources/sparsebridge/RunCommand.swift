import ArgumentParser
import Foundation
import Tensors
import Checkpoints
import Model

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Predict the next token after a text.")

    @Option(help: "Model file (.h5).")
    var model: String
    @Option(help: "The prompt.")
    var text: String
    @Option(help: "How many predictions to list.")
    var top: Int = 5
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard top > 0 else { throw ValidationError("--top must be positive") }
        let loaded = try ModelLoader.load(model)
        let tokens = try loaded.tokenizer.encode(text)
        guard !tokens.isEmpty else { throw CommandError("--text is empty") }
        let n = loaded.model.config.nCtx
        let window = Array(tokens.suffix(n))  // the model sees at most n_ctx tokens
        let logits = try loaded.model.logits(tokens: window)
        let vocab = loaded.model.config.vocab
        let last = Tensor(shape: [vocab], values: Array(logits.buffer[(window.count - 1) * vocab ..< window.count * vocab]))
        Kernels.softmax(last.data, count: vocab)
        let ranked = (0..<vocab).sorted { last[$0] > last[$1] }.prefix(top)
        if json {
            printJSON(.object(["text": .string(text), "predictions": .array(ranked.map {
                .object(["token": .number(Double($0)), "text": .string(loaded.tokenizer.decode([Int32($0)])),
                         "probability": .number(Double(last[$0]))])
            })]))
        } else {
            var table = Table(headers: ["rank", "token", "text", "probability"])
            for (i, t) in ranked.enumerated() {
                table.rows.append(["\(i + 1)", "\(t)", String(reflecting: loaded.tokenizer.decode([Int32(t)])), fmt(Double(last[t]))])
            }
            print(table.render())
        }
    }
}
