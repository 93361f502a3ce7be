// Activation files (HDF5): attributes naming the model (path, SHA-256, config), the
// corpus, n_ctx and the sites; `tokens` [N, T] int32; `sites/<hook>` [N·T, width] float32,
// chunked by rows and extendable; `rows_complete` counts the token rows fully written
// (the resume point). Layout documented in docs/formats.md.

import Foundation
import HDF5
import Tensors
import Model
import Support

public enum ActivationFormat {
    public static let format = "sparsebridge.activations"
    public static let version = 1
}

/// An activation file opened for reading.
public final class ActivationFile {
    public let path: String
    public let file: H5File
    public let modelSHA256: String
    public let modelConfig: ModelConfig
    public let corpus: String
    public let seqLen: Int
    public let sites: [String]
    public let rowsComplete: Int

    public init(path: String) throws {
        self.path = path
        file = try H5File(open: path)
        try ModelFile.checkFormat(file, expected: ActivationFormat.format, version: ActivationFormat.version, what: "activation")
        modelSHA256 = try file.stringAttribute("model_sha256")
        modelConfig = try ModelConfig.decode(json: try file.stringAttribute("model_config"), source: path)
        corpus = try file.stringAttribute("corpus")
        seqLen = try file.intAttribute("n_ctx")
        rowsComplete = try file.intAttribute("rows_complete")
        guard let list = try? JSONValue.parse(try file.stringAttribute("sites")), case .array(let items) = list else {
            throw BridgeError.badFile(path: path, "attribute sites is not a JSON list")
        }
        sites = items.compactMap(\.stringValue)
        let tokens = try file.openDataset("tokens")
        let total = tokens.shape
        guard total.count == 2, total[1] == seqLen, rowsComplete <= total[0] * seqLen else {
            throw BridgeError.badFile(path: path,
                                      "tokens dataset has shape \(total), inconsistent with n_ctx \(seqLen) and rows_complete "
                                              + "\(rowsComplete)")
        }
        // Widths come from the recorded config: a site that disagrees is refused here, naming
        // this file, rather than later as a mismatch between two files.
        for name in sites where file.exists("sites/" + name) {
            let ds = try file.openDataset("sites/" + name)
            if let hook = try? HookPoint.parse(name, config: modelConfig) {
                let width = hook.rowWidth(config: modelConfig, seqLen: seqLen)
                guard ds.shape.count == 2, ds.shape[1] == width else {
                    throw BridgeError.badFile(path: path,
                                              "site \(name) has shape \(ds.shape), its model config needs rows of width \(width)")
                }
            }
        }
        // A sharded capture's file is virtual, and HDF5 reads a missing shard as zeros
        // without an error: refuse it instead.
        var missing = Set(try tokens.missingVirtualSources())
        for name in sites where file.exists("sites/" + name) { missing.formUnion(try file.openDataset("sites/" + name).missingVirtualSources()) }
        if !missing.isEmpty {
            throw BridgeError.badFile(path: path, "its shard(s) \(missing.sorted().joined(separator: ", ")) are missing from its folder")
        }
    }

    /// The dataset of one site, checked to hold `rows_complete` rows.
    public func site(_ name: String) throws -> H5Dataset {
        guard sites.contains(name) else {
            throw BridgeError.badFile(path: path, "holds no site \(name) (it has \(sites.joined(separator: ", ")))")
        }
        let ds = try file.openDataset("sites/" + name)
        guard ds.shape.count == 2, ds.shape[0] >= rowsComplete else {
            throw BridgeError.badFile(path: path, "site \(name) has shape \(ds.shape), expected \(rowsComplete) rows")
        }
        guard ds.elementType == .float32 else {
            throw BridgeError.badFile(path: path,
                                      "site \(name) holds \(ds.elementType?.rawValue ?? "an unsupported type"), expected float32")
        }
        return ds
    }

    /// Token ids of sequences `start ..< start + count`.
    public func tokens(sequences range: Range<Int>) throws -> [Int32] {
        var out = [Int32](repeating: 0, count: range.count * seqLen)
        try out.withUnsafeMutableBufferPointer {
            try file.openDataset("tokens").readRows(range.lowerBound, count: range.count, into: $0.baseAddress!)
        }
        return out
    }
}
