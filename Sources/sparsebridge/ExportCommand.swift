import ArgumentParser
import Foundation
import Transformers

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a SparseBridge model file as safetensors.")

    @Option(help: "Model file (.h5).")
    var model: String
    @Option(help: "Key layout: sparsebridge or hf-gpt2.")
    var layout: String = "sparsebridge"
    @Option(help: "Output .safetensors file.")
    var out: String

    func run() throws {
        guard let chosen = CheckpointLayout(rawValue: layout) else {
            throw ValidationError("--layout must be one of \(CheckpointLayout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let loaded = try ModelFile.load(model)
        try SafetensorsCheckpoint.export(loaded, layout: chosen, to: out)
        print("wrote \(out) (\(chosen.rawValue) layout)")
    }
}
