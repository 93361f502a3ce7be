import Foundation
import Testing
import Tensors
import Checkpoints
import Model
import Text

/// The committed fixtures (Tests/fixtures; each folder holds the script that made it).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").path
    static func path(_ relative: String) -> String { root + "/" + relative }
}

@Suite("PyTorch checkpoints")
struct TorchCheckpointTests {
    @Test("a torch.save state_dict reads bit for bit like its safetensors copy", arguments: ["tiny", "tied"])
    func matchesSafetensors(_ fixture: String) throws {
        let pt = try TorchCheckpoint(path: Fixtures.path("circuit_sparsity/\(fixture)/final_model.pt"))
        let st = try SafetensorsFile(path: Fixtures.path("circuit_sparsity/\(fixture)/final_model.safetensors"))
        #expect(Set(pt.tensorNames) == Set(st.tensorNames))
        #expect(pt.tensorNames.count > 10)
        for name in st.tensorNames {
            #expect(pt.shape(of: name) == st.shape(of: name), "\(name)")
            let a = try pt.tensor(name), b = try st.tensor(name)
            #expect(a.toArray().map(\.bitPattern) == b.toArray().map(\.bitPattern), "\(name)")
        }
    }

    @Test("bfloat16 storages convert exactly")
    func bfloat16() throws {
        let pt = try TorchCheckpoint(path: Fixtures.path("circuit_sparsity/tiny_bf16.pt"))
        let st = try SafetensorsFile(path: Fixtures.path("circuit_sparsity/tiny_bf16.safetensors"))
        for name in st.tensorNames {
            #expect(try pt.tensor(name).toArray() == st.tensor(name).toArray(), "\(name)")
        }
    }

    @Test("a pickle calling os.system is refused, naming the global")
    func malicious() throws {
        let path = Fixtures.path("circuit_sparsity/malicious.pt")
        let error = #expect(throws: CheckpointError.self) { _ = try TorchCheckpoint(path: path) }
        let message = error?.description ?? ""
        #expect(message.hasPrefix(path + ": pickle: refused global posix.system at byte"))
        #expect(!message.contains("\n"))
    }

    @Test("files that are not stored zip archives are refused in one line")
    func notZip() throws {
        let dir = TemporaryDirectory("torch")
        let text = dir.file("notes.pt")
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        let error = #expect(throws: CheckpointError.self) { _ = try TorchCheckpoint(path: text) }
        #expect(error?.description.contains("not a zip archive") == true)
        let legacy = dir.file("legacy.pt")
        try Data([0x80, 0x02, 0x8a, 0x0a]).write(to: URL(fileURLWithPath: legacy))
        let old = #expect(throws: CheckpointError.self) { _ = try TorchCheckpoint(path: legacy) }
        #expect(old?.description.contains("legacy") == true)
    }

    @Test("the circuit-sparsity layout maps the fixture onto our weights, transposing nn.Linear")
    func layout() throws {
        let loaded = try Checkpoint.load(Fixtures.path("circuit_sparsity/tiny"))
        let c = loaded.model.config
        #expect(c.norm == .rms && c.attentionSink && c.bigramTable && !c.tiedUnembed)
        #expect(c.dHead == 3 && c.nHead == 2 && c.dModel == 8 && c.nCtx == 8 && c.vocab == 24)
        #expect(c.afrac == 0.5 && c.afracLocations == AbsTopKLocation.nodeLocations)
        #expect(c.normEps == Double(Float.ulpOfOne))
        let st = try SafetensorsFile(path: Fixtures.path("circuit_sparsity/tiny/final_model.safetensors"))
        let cAttn = try st.tensor("transformer.h.1.attn.c_attn.weight")   // [3·6, 8], rows Q | K | V
        let W_K = loaded.model.weights.blocks[1].W_K                        // [8, 6]
        for i in 0..<8 { for j in 0..<6 { #expect(W_K[i * 6 + j] == cAttn[(6 + j) * 8 + i]) } }
        let fc = try st.tensor("transformer.h.0.mlp.c_fc.weight")          // [16, 8]
        #expect(loaded.model.weights.blocks[0].W_in[3 * 16 + 5] == fc[5 * 8 + 3])
        // The same model straight from the .pt: identical logits.
        let fromPT = try Checkpoint.load(Fixtures.path("circuit_sparsity/tiny/final_model.pt"))
        let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        #expect(try fromPT.model.logits(tokens: tokens).toArray() == loaded.model.logits(tokens: tokens).toArray())
    }
}
