// The model file (HDF5): root attributes `format`, `format_version`, `config`,
// `tokenizer` and `provenance` (JSON strings), and one float32 dataset per weight tensor
// at its parameter name (`blocks/0/attn/W_Q` …). Layout documented in docs/formats.md.

import Foundation
import HDF5
import Tensors

public struct LoadedModel {
    public let model: Transformer
    public let tokenizer: Tokenizer
    public let provenance: JSONValue
    public let path: String
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
    static let tokenizerFolder = "tokenizer/"

    /// Reads and checks a model file: format, version, config, every tensor's shape, and
    /// finite values. A checkpoint that is not HDF5 (a circuit_sparsity folder or `.pt`, a
    /// safetensors file) is imported on the fly, as `convert` would.
    public static func load(_ path: String) throws -> LoadedModel {
        if isCheckpoint(path) { return try Checkpoint.load(path) }
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

    /// SHA-256 naming the model a path loads, for activation and bridge files: of the file
    /// itself, or for a circuit_sparsity folder, of its weights file.
    public static func sha256(_ path: String) throws -> String {
        var isDir: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
        return try SHA256.hexDigest(ofFile: isFolder ? try CircuitSparsityLayout.weightsFile(inFolder: path) : path)
    }

    /// A checkpoint to import rather than a model file: a folder, a `.pt` or `.safetensors`
    /// file, or a zip archive (PyTorch's format) under any name.
    public static func isCheckpoint(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return false }  // H5File reports it
        if isDir.boolValue || path.hasSuffix(".pt") || path.hasSuffix(".safetensors") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return handle.readData(ofLength: 4).elementsEqual([0x50, 0x4b, 0x03, 0x04])
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
            throw ModelError.badFile(path: file.filePath, "format_version \(v) is newer than this program reads (\(version)); upgrade sparsebridge")
        }
    }
}
