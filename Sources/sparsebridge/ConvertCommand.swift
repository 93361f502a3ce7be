import ArgumentParser
import Foundation
import Transformers

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Convert a safetensors checkpoint into a SparseBridge model file.")

    @Option(help: "Input .safetensors file.")
    var from: String
    @Option(help: "Key layout: sparsebridge or hf-gpt2 (default: detected from the tensor names).")
    var layout: String?
    @Option(name: .customLong("hf-config"), help: "Hugging Face config.json for hf-gpt2 files without our metadata (default: beside the file).")
    var hfConfig: String?
    @Option(help: "Tokenizer to record: char (ASCII, needs vocab ≥ 128) or ids (default: from the file's metadata, else ids).")
    var tokenizer: String?
    @Option(help: "Output model file (.h5).")
    var out: String
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        var chosen: CheckpointLayout?
        if let layout {
            guard let l = CheckpointLayout(rawValue: layout) else {
                throw ValidationError("--layout must be one of \(CheckpointLayout.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            chosen = l
        }
        let loaded = try SafetensorsCheckpoint.load(from, layout: chosen, hfConfigPath: hfConfig)
        var tok = loaded.tokenizer
        switch tokenizer {
        case nil: break
        case "char":
            guard loaded.model.config.vocab >= 128 else {
                throw ValidationError("--tokenizer char needs a vocabulary of at least 128; this model has \(loaded.model.config.vocab)")
            }
            tok = CharTokenizer()
        case "ids": tok = IDsOnlyTokenizer(vocabSize: loaded.model.config.vocab)
        case let other?: throw ValidationError("--tokenizer must be char or ids, not \(other)")
        }
        try ModelFile.save(loaded.model, tokenizer: tok, provenance: loaded.provenance, to: out)
        if json { printJSON(.object(["out": .string(out), "from": .string(from), "parameters": .number(Double(loaded.model.weights.parameterCount))])); return }
        print("wrote \(out) from \(from): \(loaded.model.config.nLayer) layers, \(loaded.model.weights.parameterCount) parameters")
    }
}
