import ArgumentParser
import Foundation
import Model
import Support
import Text

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a randomly initialised model from a config file.")

    @Option(help: "Model config (JSON, snake_case fields as in docs/formats.md).")
    var config: String
    @Option(help: "Random seed.")
    var seed: UInt64
    @Option(help: "Output model file (.h5).")
    var out: String
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw CommandError(file: config, "cannot read config file")
        }
        let cfg = try ModelConfig.decode(json: String(decoding: data, as: UTF8.self), source: config)
        let model = try Transformer(config: cfg, seed: seed)
        let provenance = JSONValue.object(["made_by": .string("sparsebridge init"), "seed": .number(Double(seed)),
                                           "config_file": .string(config)])
        try ModelFile.save(model, tokenizer: CharTokenizer(), provenance: provenance, to: out)
        if json { printJSON(.object(["out": .string(out), "parameters": .number(Double(model.weights.parameterCount))])); return }
        print("wrote \(out): \(cfg.nLayer) layers, d_model \(cfg.dModel), \(model.weights.parameterCount) parameters")
    }
}
