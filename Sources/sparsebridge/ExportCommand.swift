import ArgumentParser
import Foundation
import Study
import Checkpoints
import Model

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a model as safetensors, or a demo run as a Jupyter notebook.",
        subcommands: [Safetensors.self, Notebook.self], defaultSubcommand: Safetensors.self)

    struct Safetensors: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export a SparseBridge model file as safetensors.")
        @Option(help: "Model file (.h5).") var model: String
        @Option(help: "Key layout: sparsebridge or hf-gpt2.") var layout: CheckpointLayout = .sparsebridge
        @Option(help: "Output .safetensors file.") var out: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let chosen = layout
            let loaded = try ModelLoader.load(model)
            try Checkpoint.export(loaded, layout: chosen, to: out)
            if json { printJSON(.object(["out": .string(out), "layout": .string(chosen.rawValue)])); return }
            print("wrote \(out) (\(chosen.rawValue) layout)")
        }
    }

    struct Notebook: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a demo run folder as a runnable Jupyter notebook.")
        @Option(name: .customLong("run"), help: "Run folder (from `sparsebridge demo`).") var runFolder: String
        @Option(help: "Output .ipynb file.") var out: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            try NotebookExport.write(run: runFolder, out: out)
            if json { printJSON(.object(["out": .string(out)])); return }
            print("wrote \(out)")
        }
    }
}
