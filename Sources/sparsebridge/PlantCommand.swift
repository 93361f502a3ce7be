import ArgumentParser
import Circuits
import Foundation
import Checkpoints
import Model
import Support
import Text

struct PlantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plant",
        abstract: "Make a model with a known bracket-counting circuit planted in random weights, to check the pruner (docs/analysis.md).")

    @Option(help: "Reference model: the planted model has its shapes, and each tensor holds the reference's entries shuffled.")
    var like: String
    @Option(name: .customLong("flip-length"), help: "Prompt length in tokens at which the planted mechanism stops telling depth 2 from depth 1.")
    var flipLength = 400.0
    @Option(help: "Seed (shuffling and the choice of channels, head and neurons).") var seed: UInt64 = 1
    @Option(help: "Output model file (.h5).") var out: String
    @Flag(help: "Replace --out if it exists.") var force = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard flipLength > 0 else { throw ValidationError("--flip-length must be positive") }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw CommandError(file: out, "exists; pass --force to replace it")
        }
        let reference = try ModelLoader.load(like)
        let tokens = try ["[", "]", "\n"].map { text -> Int32 in
            let ids = try reference.tokenizer.encode(text)
            guard ids.count == 1 else { throw CommandError("--like: the tokenizer of \(like) does not give \(text.debugDescription) one token") }
            return ids[0]
        }
        let model = try PlantedCircuit.shuffled(reference.model.weights, seed: seed)
        var corpus = SyntheticCorpus(seed: seed &+ 1)
        let planted = try PlantedCircuit.plantBrackets(in: model, open: tokens[0], close: tokens[1], newline: tokens[2],
                                                       corpus: &corpus, flipLength: flipLength, seed: seed)
        let provenance = JSONValue.object(["made_by": .string("sparsebridge plant"), "like": .string(like),
                                           "like_sha256": .string(try ModelLoader.sha256(like)), "planted_circuit": planted.description])
        try ModelFile.save(model, tokenizer: reference.tokenizer, provenance: provenance, to: out)
        if json { printJSON(.object(["out": .string(out), "planted_circuit": planted.description])); return }
        print("wrote \(out): \(planted.nodes.count) planted nodes (\(planted.nodes.joined(separator: ", "))) in \(model.weights.nonzeroCount) nonzero weights")
    }
}
