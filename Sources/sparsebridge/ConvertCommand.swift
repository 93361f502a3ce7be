import ArgumentParser
import Foundation
import Checkpoints
import Model
import Text

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Convert a checkpoint (safetensors, or a circuit_sparsity folder / .pt) into a "
                + "SparseBridge model file.")

    @Option(help: "Input: a .safetensors file, or a circuit_sparsity model folder (beeg_config.json + final_model.pt) or its .pt file.")
    var from: String
    @Option(help: "Key layout: sparsebridge, hf-gpt2 or circuit-sparsity (default: detected).")
    var layout: CheckpointLayout?
    @Option(name: .customLong("hf-config"), help: "Hugging Face config.json for hf-gpt2 files without our metadata (default: beside the file).")
    var hfConfig: String?
    @Option(help: "Folder with the BPE tokenizer files encoder.json + vocab.bpe for a circuit-sparsity model (default: the model's folder, when they are there).")
    var bpe: String?
    @Option(help: "Tokenizer to record: char (ASCII, needs vocab ≥ 128) or ids (default: from the file's metadata or the BPE files, else ids).")
    var tokenizer: String?
    @Option(help: "Output model file (.h5).")
    var out: String
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let loaded = try Checkpoint.load(from, layout: layout, hfConfigPath: hfConfig, bpeDirectory: bpe)
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
        if json { printJSON(.object(["out": .string(out), "from": .string(from),
                                     "parameters": .number(Double(loaded.model.weights.parameterCount))])); return }
        print("wrote \(out) from \(from): \(loaded.model.config.nLayer) layers, \(loaded.model.weights.parameterCount) parameters")
    }
}
