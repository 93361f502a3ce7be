// The model file (HDF5): root attributes `format`, `format_version`, `config`,
// `tokenizer` and `provenance` (JSON strings), and one float32 dataset per weight tensor
// at its parameter name (`blocks/0/attn/W_Q` …). Layout documented in docs/formats.md.

import Foundation
import HDF5
import Support
import Tensors
import Text

public struct LoadedModel {
    public let model: Transformer
    public let tokenizer: Tokenizer
    public let provenance: JSONValue
    public let path: String

    /// For the readers of this module and Checkpoints; elsewhere a model comes from a loader.
    package init(model: Transformer, tokenizer: Tokenizer, provenance: JSONValue, path: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.provenance = provenance
        self.path = path
    }
}

public enum ModelFile {
    public static let format = "sparsebridge.model"
    public static let formatVersion = 1

    /// Writes the model under a temporary name and renames it into place when complete.
    public static func save(_ model: Transformer, tokenizer: Tokenizer, provenance: JSONValue, to path: String) throws {
        let output = try AtomicOutput(path)
        do {
            let file = try H5File(create: output.temporaryPath)
            try file.setAttribute("format", format)
            try file.setAttribute("format_version", formatVersion)
            try file.setAttribute("config", model.config.jsonString())
            try file.setAttribute("tokenizer", tokenizer.json.jsonString)
            try file.setAttribute("provenance", provenance.jsonString)
            for (name, bytes) in tokenizer.files {
                try file.writeDataset(tokenizerFolder + name, shape: [bytes.count], values: bytes)
            }
            for p in model.weights.parameters {
                // Mostly-zero tensors (weight-sparse models) are stored compressed: a 1/16-dense
                // matrix shrinks about tenfold, and zlib's output is the same on every run.
                let zeros = (0..<p.tensor.count).reduce(0) { $0 + (p.tensor.data[$1] == 0 ? 1 : 0) }
                let sparse = p.tensor.count >= 4096 && zeros * 2 > p.tensor.count
                let ds = try file.createDataset(p.name, type: .float32, shape: p.tensor.shape, gzip: sparse ? 6 : nil)
                try ds.write(UnsafePointer(p.tensor.data), count: p.tensor.count)
            }
            file.closeFile()
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    /// Tokenizer files (BPE `encoder.json`, `vocab.bpe`) are uint8 datasets holding their exact bytes.
    package static let tokenizerFolder = "tokenizer/"

    /// Reads and checks a model file: format, version, config, every tensor's shape, and
    /// finite values. (Checkpoints of other kinds are read by `ModelLoader` in Checkpoints.)
    public static func load(_ path: String) throws -> LoadedModel {
        let file = try H5File(open: path)
        try checkFormat(file, expected: format, version: formatVersion, what: "model")
        let config = try ModelConfig.decode(json: try file.stringAttribute("config"), source: path)
        let tokenizerJSON: JSONValue
        do { tokenizerJSON = try JSONValue.parse(try file.stringAttribute("tokenizer")) } catch let e as HDF5Error {
            throw e
        } catch { throw ModelError.badFile(path: path, "tokenizer attribute is not valid JSON") }
        let tokenizer = try Tokenizers.from(json: tokenizerJSON, source: path) { name in
            try file.openDataset(tokenizerFolder + name).read(as: UInt8.self)
        }
        let provenance = (try? JSONValue.parse(try file.stringAttribute("provenance"))) ?? .null
        let weights = try TransformerWeights(config: config) { name, shape, _ in
            let ds = try file.openDataset(name)
            guard ds.shape == shape else {
                throw ModelError.badFile(path: path, "dataset \(name) has shape \(ds.shape), the config needs \(shape)")
            }
            let t = Tensor(zeros: shape)
            if t.count > 0 { try ds.readRows(0, count: shape[0], into: t.data) }
            if let bad = (0..<t.count).first(where: { !t.data[$0].isFinite }) {
                throw ModelError.badFile(path: path, "dataset \(name) holds a non-finite value at element \(bad)")
            }
            return t
        }
        if tokenizer.vocabSize > config.vocab {
            throw ModelError.badFile(path: path, "tokenizer vocabulary \(tokenizer.vocabSize) exceeds the model's vocab \(config.vocab)")
        }
        // A weight-sparse model's matrices get their compressed form now, once.
        weights.prepareSparseKernels()
        return LoadedModel(model: Transformer(weights: weights), tokenizer: tokenizer, provenance: provenance, path: path)
    }

    /// Refuses files of another kind or of a newer format version than this program reads.
    public static func checkFormat(_ file: H5File, expected: String, version: Int, what: String) throws {
        guard file.hasAttribute("format") else {
            throw ModelError.badFile(path: file.filePath, "not a SparseBridge \(what) file (no format attribute)")
        }
        let found = try file.stringAttribute("format")
        guard found == expected else {
            throw ModelError.badFile(path: file.filePath, "is a \(found) file, expected \(expected)")
        }
        let v = try file.intAttribute("format_version")
        guard v <= version else {
            throw ModelError.badFile(path: file.filePath,
                                     "format_version \(v) is newer than this program reads (\(version)); upgrade sparsebridge")
        }
    }
}
