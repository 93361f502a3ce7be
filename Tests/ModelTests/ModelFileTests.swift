// Model files (HDF5): round trips and refusals.

import Foundation
import Testing
import HDF5
import Model
import Support
import Tensors
import Text

/// Every parameter equal, bit for bit, under the same names in the same order.
func expectSameWeights(_ a: TransformerWeights, _ b: TransformerWeights, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.config == b.config, sourceLocation: sourceLocation)
    #expect(a.parameters.map(\.name) == b.parameters.map(\.name), sourceLocation: sourceLocation)
    for (p, q) in zip(a.parameters, b.parameters) {
        #expect(p.tensor.shape == q.tensor.shape, "\(p.name)", sourceLocation: sourceLocation)
        #expect(p.tensor.toArray().map(\.bitPattern) == q.tensor.toArray().map(\.bitPattern), "\(p.name)", sourceLocation: sourceLocation)
    }
}

@Suite("ModelFile")
struct ModelFileTests {
    @Test("save then load gives the same config, parameters, tokenizer and provenance", arguments: namedConfigs)
    func roundTrip(_ named: NamedConfig) throws {
        let dir = TemporaryDirectory("model")
        let provenance = JSONValue.object(["recipe": .string("unit test ü"), "tokens_seen": .number(1234),
                                           "final_loss": .number(2.5), "tags": .array([.string("a"), .bool(true), .null])])
        let (path, loaded, original) = try savedModel(named.config, seed: 5, in: dir, provenance: provenance)
        expectSameWeights(original.weights, loaded.model.weights)
        #expect(loaded.model.config == named.config)
        if named.config.vocab >= 128 {
            #expect(loaded.tokenizer is CharTokenizer)
        } else {
            #expect(loaded.tokenizer is IDsOnlyTokenizer && loaded.tokenizer.vocabSize == named.config.vocab)
        }
        #expect(loaded.provenance == provenance)
        #expect(loaded.path == path)
        // The file is self-describing for h5py users.
        let file = try H5File(open: path)
        #expect(try file.stringAttribute("format") == "sparsebridge.model")
        #expect(try file.intAttribute("format_version") == ModelFile.formatVersion)
        #expect(try ModelConfig.decode(json: file.stringAttribute("config"), source: path) == named.config)
        #expect(try file.openDataset("blocks/0/attn/W_Q").shape == [named.config.dModel, named.config.attentionWidth])
        // And the loaded model computes the same logits.
        let tokens = randomTokens(6, vocab: named.config.vocab, seed: 9)
        #expect(try loaded.model.logits(tokens: tokens).maxAbsDifference(original.logits(tokens: tokens)) == 0)
        // No temporary is left beside the result.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.h5"])
    }

    @Test("a newer format_version is refused with a message saying so")
    func newerVersion() throws {
        let dir = TemporaryDirectory("model")
        let (path, _, _) = try savedModel(TestConfigs.gpt2, seed: 1, in: dir)
        do {
            let file = try H5File(open: path, mode: .readWrite)
            try file.setAttribute("format_version", 99)
            file.closeFile()
        }
        let error = #expect(throws: ModelError.self) { _ = try ModelFile.load(path) }
        guard case .badFile(let where_,
                            let message)? = error else { Issue.record("expected badFile, got \(String(describing: error))"); return }
        #expect(where_ == path)
        #expect(message.contains("newer"))
        #expect(message.contains("99"))
    }

    @Test("files of another kind are refused")
    func wrongKind() throws {
        let dir = TemporaryDirectory("model")
        let activations = dir.file("acts.h5")
        do {
            let file = try H5File(create: activations)
            try file.setAttribute("format", "sparsebridge.activations")
            try file.setAttribute("format_version", 1)
            file.closeFile()
        }
        let error = #expect(throws: ModelError.self) { _ = try ModelFile.load(activations) }
        #expect(error == .badFile(path: activations, "is a sparsebridge.activations file, expected sparsebridge.model"))

        let bare = dir.file("bare.h5")
        try H5File(create: bare).writeDataset("x", shape: [1], values: [Float](arrayLiteral: 1))
        let noFormat = #expect(throws: ModelError.self) { _ = try ModelFile.load(bare) }
        #expect(noFormat?.description.contains("no format attribute") == true)

        let text = dir.file("notes.h5")
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        let notHDF5 = #expect(throws: HDF5Error.self) { _ = try ModelFile.load(text) }
        #expect(notHDF5 == HDF5Error(path: text, message: "not an HDF5 file"))
    }

    @Test("a missing dataset is an error naming it")
    func missingDataset() throws {
        let dir = TemporaryDirectory("model")
        let (path, _, _) = try savedModel(TestConfigs.gpt2, seed: 2, in: dir)
        do {
            let file = try H5File(open: path, mode: .readWrite)
            try file.delete("blocks/1/mlp/W_out")
            file.closeFile()
        }
        let error = #expect(throws: HDF5Error.self) { _ = try ModelFile.load(path) }
        #expect(error?.path == path)
        #expect(error?.message.contains("blocks/1/mlp/W_out") == true)
    }

    @Test("a wrong shape or a non-finite weight is refused, naming the dataset")
    func corruptWeights() throws {
        let dir = TemporaryDirectory("model")
        let (path, _, _) = try savedModel(TestConfigs.gpt2, seed: 3, in: dir)
        do {
            let file = try H5File(open: path, mode: .readWrite)
            let ds = try file.openDataset("blocks/0/ln1/w")
            var values = try ds.read(as: Float.self)
            values[5] = .nan
            try ds.write(values)
            try file.delete("ln_final/b")
            try file.writeDataset("ln_final/b", shape: [15], values: [Float](repeating: 0, count: 15))
            file.closeFile()
        }
        let error = #expect(throws: ModelError.self) { _ = try ModelFile.load(path) }
        #expect(error?.description.contains("blocks/0/ln1/w") == true && error?.description.contains("non-finite") == true)

        do {
            let file = try H5File(open: path, mode: .readWrite)
            try file.openDataset("blocks/0/ln1/w").write([Float](repeating: 1, count: 16))
            file.closeFile()
        }
        let shape = #expect(throws: ModelError.self) { _ = try ModelFile.load(path) }
        #expect(shape?.description.contains("ln_final/b") == true && shape?.description.contains("[15]") == true)
    }

    @Test("a tokenizer larger than the model's vocabulary is refused")
    func tokenizerTooLarge() throws {
        let dir = TemporaryDirectory("model")
        let path = dir.file("small.h5")
        try ModelFile.save(try randomModel(TestConfigs.mixed, seed: 1), tokenizer: CharTokenizer(), provenance: .null, to: path)
        let error = #expect(throws: ModelError.self) { _ = try ModelFile.load(path) }
        #expect(error == .badFile(path: path, "tokenizer vocabulary 128 exceeds the model's vocab 50"))
    }

    @Test("a bad config attribute is reported against the file")
    func badConfig() throws {
        let dir = TemporaryDirectory("model")
        let (path, _, _) = try savedModel(TestConfigs.gpt2, seed: 4, in: dir)
        do {
            let file = try H5File(open: path, mode: .readWrite)
            try file.setAttribute("config", #"{"n_layer": 2, "d_model": 16, "n_head": 4, "d_mlp": 32, "n_ctx": 12, "dropout": 0.1}"#)
            file.closeFile()
        }
        let error = #expect(throws: ModelError.self) { _ = try ModelFile.load(path) }
        #expect(error == .badFile(path: path, "bad config: unknown config field \"dropout\""))
    }
}
