// Safetensors checkpoints: round trips and refusals.

import Foundation
import Testing
import HDF5
import Tensors
import Checkpoints
import Model
import Support
import Text

@Suite("Safetensors")
struct SafetensorsTests {
    @Test("sparsebridge layout: export then load gives identical tensors", arguments: namedConfigs)
    func sparsebridgeLayout(_ named: NamedConfig) throws {
        let dir = TemporaryDirectory("st")
        let (_, loaded, original) = try savedModel(named.config, seed: 6, in: dir)
        let path = dir.file("model.safetensors")
        try Checkpoint.export(loaded, layout: .sparsebridge, to: path)
        let back = try Checkpoint.load(path)
        expectSameWeights(original.weights, back.model.weights)
        #expect(back.tokenizer.json == loaded.tokenizer.json)
        #expect(back.provenance == loaded.provenance)
        // The raw file names tensors with dots and holds F32.
        let raw = try SafetensorsFile(path: path)
        #expect(raw.entry("blocks.0.attn.W_Q")?.dtype == "F32")
        #expect(raw.entry("blocks.0.attn.W_Q")?.shape == [named.config.dModel, named.config.attentionWidth])
        #expect(raw.metadata["format"] == "sparsebridge.model")
        #expect(raw.entries.count == original.weights.parameters.count)
    }

    static let gpt2Compatible = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 32, nCtx: 12, vocab: 128,
                                            norm: .layer, activation: .geluTanh, positional: .learned)

    @Test("hf-gpt2 layout: export then load gives identical tensors", arguments: [false, true])
    func gpt2Layout(tied: Bool) throws {
        var config = Self.gpt2Compatible
        config.tiedUnembed = tied
        let dir = TemporaryDirectory("st")
        let (_, loaded, original) = try savedModel(config, seed: 7, in: dir)
        let path = dir.file("gpt2.safetensors")
        try Checkpoint.export(loaded, layout: .hfGPT2, to: path)
        let raw = try SafetensorsFile(path: path)
        #expect(raw.entry("h.0.attn.c_attn.weight")?.shape == [16, 48])
        #expect(raw.entry("h.1.attn.c_attn.bias")?.shape == [48])
        #expect((raw.entry("lm_head.weight") != nil) == !tied)
        if !tied { #expect(raw.entry("lm_head.weight")?.shape == [128, 16]) }
        // c_attn holds Q, K, V side by side: check one row against the originals.
        let cAttn = try raw.tensor("h.0.attn.c_attn.weight")
        let b0 = original.weights.blocks[0]
        for j in 0..<16 {
            #expect(cAttn[3 * 48 + j] == b0.W_Q[3 * 16 + j])
            #expect(cAttn[3 * 48 + 16 + j] == b0.W_K[3 * 16 + j])
            #expect(cAttn[3 * 48 + 32 + j] == b0.W_V[3 * 16 + j])
        }
        let back = try Checkpoint.load(path)  // layout detected from the names
        expectSameWeights(original.weights, back.model.weights)
        #expect(back.tokenizer is CharTokenizer)
    }

    @Test("hf-gpt2 without our metadata loads with a Hugging Face config.json, with or without the transformer. prefix",
          arguments: ["", "transformer."])
    func gpt2WithoutMetadata(prefix: String) throws {
        let dir = TemporaryDirectory("st")
        let (_, loaded, original) = try savedModel(Self.gpt2Compatible, seed: 8, in: dir)
        let exported = dir.file("export.safetensors")
        try Checkpoint.export(loaded, layout: .hfGPT2, to: exported)
        let raw = try SafetensorsFile(path: exported)
        let bare = dir.file("model.safetensors")
        try SafetensorsFile.write(try raw.entries.map { e in
            (e.name.hasPrefix("lm_head.") ? e.name : prefix + e.name, try raw.tensor(e.name))
        }, metadata: [:], to: bare)
        // Without config.json the head count is unknown.
        let missing = #expect(throws: CheckpointError.self) { _ = try Checkpoint.load(bare) }
        #expect(missing?.description.contains("config.json") == true)
        try #"{"n_head": 4, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05}"#
            .write(toFile: dir.file("config.json"), atomically: true, encoding: .utf8)
        let back = try Checkpoint.load(bare)
        expectSameWeights(original.weights, back.model.weights)
        #expect(back.tokenizer.vocabSize == 128)
        #expect(throws: TextError.self) { _ = try back.tokenizer.encode("no text tokenizer") }
        #expect(back.provenance["layout"] == .string("hf-gpt2"))
    }

    @Test("hf-gpt2 export refuses models it cannot hold, listing why")
    func gpt2Incompatible() throws {
        let dir = TemporaryDirectory("st")
        let (_, loaded, _) = try savedModel(TestConfigs.sparse, seed: 9, in: dir)
        let error = #expect(throws: CheckpointError.self) {
            try Checkpoint.export(loaded, layout: .hfGPT2, to: dir.file("x.safetensors"))
        }
        let text = error?.description ?? ""
        for problem in ["norm must be layer", "biases are required", "positional must be learned",
                        "no attention sink", "no bigram table", "n_head·d_head must equal d_model"] {
            #expect(text.contains(problem), "\(problem)")
        }
        #expect(!fileExists(dir.file("x.safetensors")))
    }

    /// A safetensors file from a header string and data bytes; `declaredLength` overrides the header length.
    static func handmade(_ header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let length = declaredLength ?? UInt64(h.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + h + data
    }

    @Test("dtypes convert to Float32: F32, F64, F16 (with subnormals and infinities), BF16; integers refused")
    func dtypes() throws {
        let dir = TemporaryDirectory("st")
        let path = dir.file("dtypes.safetensors")
        var data: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        data += le(Float(1.5).bitPattern) + le(Float(-0.25).bitPattern)                          // F32 [2]  0..<8
        data += le(Double.pi.bitPattern)                                                          // F64 [1]  8..<16
        data += [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8001, 0x7C00, 0xFC00].flatMap { le(UInt16($0)) } // F16 [2,4] 16..<32
        data += [0x3F80, 0xC040].flatMap { le(UInt16($0)) }                                       // BF16 [2] 32..<36
        data += le(Int32(7))                                                                      // I32 [1]  36..<40
        let header = #"""
        {"f32": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "f64": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]},
         "f16": {"dtype": "F16", "shape": [2, 4], "data_offsets": [16, 32]},
         "bf16": {"dtype": "BF16", "shape": [2], "data_offsets": [32, 36]},
         "i32": {"dtype": "I32", "shape": [1], "data_offsets": [36, 40]},
         "__metadata__": {"note": "handmade"}}
        """#
        writeBytes(Self.handmade(header, data: data), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.entries.map(\.name) == ["f32", "f64", "f16", "bf16", "i32"])  // in offset order
        #expect(file.metadata == ["note": "handmade"])
        #expect(try file.tensor("f32").toArray() == [1.5, -0.25])
        #expect(try file.tensor("f64").toArray() == [Float(Double.pi)])
        let f16 = try file.tensor("f16")
        #expect(f16.shape == [2, 4])
        #expect(f16.toArray() == [1, -2, 0.5, 65504, 5.9604645e-8, -5.9604645e-8, .infinity, -.infinity])
        #expect(try file.tensor("bf16").toArray() == [1, -3])
        let integer = #expect(throws: CheckpointError.self) { _ = try file.tensor("i32") }
        #expect(integer?.description.contains("integer dtype I32") == true)
        #expect(throws: CheckpointError.self) { _ = try file.tensor("nope") }
    }

    struct BadFile: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let message: String
        var testDescription: String { name }
    }

    static let badFiles: [BadFile] = [
        BadFile(name: "header length larger than the file",
                bytes: handmade("{}", data: [], declaredLength: 1000), message: "header length 1000 exceeds the file size 10"),
        BadFile(name: "header length near 2^64",
                bytes: handmade("{}", data: [], declaredLength: UInt64.max - 3), message: "exceeds the file size"),
        BadFile(name: "header not JSON",
                bytes: handmade("hello world", data: []), message: "header is not a JSON object"),
        BadFile(name: "header a JSON array",
                bytes: handmade("[1, 2]", data: []), message: "header is not a JSON object"),
        BadFile(name: "data_offsets beyond the data",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: [0, 0, 0, 0]),
                message: "tensor a: data_offsets [0, 8] fall outside the 4 data bytes"),
        BadFile(name: "offsets that run backwards",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}"#, data: [0, 0, 0, 0]),
                message: "fall outside"),
        BadFile(name: "offsets size mismatch with shape",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 12)),
                message: "tensor a: data_offsets span 8 bytes but F32 [3] needs 12"),
        BadFile(name: "overlapping tensors",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                                data: [UInt8](repeating: 0, count: 12)),
                message: "tensors a and b overlap"),
        BadFile(name: "unsupported dtype",
                bytes: handmade(#"{"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                message: "tensor a: unsupported dtype C64"),
        BadFile(name: "entry without data_offsets",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [1]}}"#, data: [0, 0, 0, 0]),
                message: "entry needs dtype, shape and data_offsets"),
        BadFile(name: "negative dimension",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]),
                message: "bad shape"),
        BadFile(name: "shape that overflows",
                bytes: handmade(#"{"a": {"dtype": "F32", "shape": [1099511627775, 1099511627775], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]),
                message: "too large"),
        BadFile(name: "file shorter than 8 bytes", bytes: [1, 0, 0], message: "too short for a safetensors header (3 bytes)"),
        BadFile(name: "empty file", bytes: [], message: "too short"),
    ]

    @Test("handcrafted bad files are refused with a helpful message", arguments: badFiles)
    func badFile(_ bad: BadFile) throws {
        let dir = TemporaryDirectory("st")
        let path = dir.file("bad.safetensors")
        writeBytes(bad.bytes, to: path)
        for attempt in 0..<2 {
            let error = #expect(throws: CheckpointError.self) {
                if attempt == 0 { _ = try SafetensorsFile(path: path) } else { _ = try Checkpoint.load(path) }
            }
            guard case .badFile(let where_, let message)? = error else {
                Issue.record("expected badFile, got \(String(describing: error))")
                continue
            }
            #expect(where_ == path)
            #expect(message.description.contains(bad.message), "message was: \(message)")
        }
    }

    @Test("a missing file or a folder is refused")
    func notAFile() {
        let dir = TemporaryDirectory("st")
        #expect(throws: CheckpointError.badFile(path: dir.file("none.safetensors"), "no such file")) {
            _ = try SafetensorsFile(path: dir.file("none.safetensors"))
        }
        #expect(throws: CheckpointError.self) { _ = try SafetensorsFile(path: dir.path) }
    }
}
