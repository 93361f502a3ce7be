// A bridge: per site, an encoder (dense → sparse) and a decoder (sparse → dense) linear
// map with their fit statistics, plus each side's mean activation (for mean ablation).
// File layout (HDF5, docs/formats.md): attributes naming both models and how the fit was
// made; `sites/<hook>/encoder/{W,b}`, `sites/<hook>/decoder/{W,b}` with NMSE, λ, token
// counts and RMS as attributes of the map's group; `sites/<hook>/mean_dense`,
// `sites/<hook>/mean_sparse`.

import Foundation
import HDF5
import Tensors
import Model
import Support

public struct BridgeMap {
    public let weight: Tensor        // [d_in, d_out]
    public let bias: Tensor          // [d_out]
    public let nmse: Double
    public let nmseUncentered: Double
    public let lambda: Double
    public let lambdaRelative: Double
    public let trainTokens: Int
    public let heldoutTokens: Int
    public let rmsIn: Double
    public let rmsOut: Double

    public var inputWidth: Int { weight.shape[0] }
    public var outputWidth: Int { weight.shape[1] }

    public init(_ f: FittedMap, dIn: Int, dOut: Int) {
        weight = Tensor(shape: [dIn, dOut], values: f.weight.map { Float($0) })
        bias = Tensor(shape: [dOut], values: f.bias.map { Float($0) })
        nmse = f.nmse; nmseUncentered = f.nmseUncentered; lambda = f.lambda; lambdaRelative = f.lambdaRelative
        trainTokens = f.trainTokens; heldoutTokens = f.heldoutTokens; rmsIn = f.rmsIn; rmsOut = f.rmsOut
    }

    /// A map with given weights (fit statistics unknown: zero).
    public init(weight: Tensor, bias: Tensor) {
        self.weight = weight; self.bias = bias
        nmse = 0; nmseUncentered = 0; lambda = 0; lambdaRelative = 0; trainTokens = 0; heldoutTokens = 0; rmsIn = 1; rmsOut = 1
    }

    init(weight: Tensor, bias: Tensor, attributes g: H5Group) throws {
        self.weight = weight
        self.bias = bias
        nmse = try g.doubleAttribute("nmse")
        nmseUncentered = try g.doubleAttribute("nmse_uncentered")
        lambda = try g.doubleAttribute("lambda")
        lambdaRelative = try g.doubleAttribute("lambda_relative")
        trainTokens = try g.intAttribute("train_tokens")
        heldoutTokens = try g.intAttribute("heldout_tokens")
        rmsIn = try g.doubleAttribute("rms_in")
        rmsOut = try g.doubleAttribute("rms_out")
    }

    /// out = x · W + b for x [rows, d_in].
    public func apply(_ x: Tensor, into out: Tensor) {
        matmul(x, weight, into: out)
        Kernels.addBias(bias.data, to: out.data, rows: out.matrixShape.rows, width: outputWidth)
    }
}

public struct BridgeSite {
    public init(hook: String, encoder: BridgeMap, decoder: BridgeMap, meanDense: Tensor, meanSparse: Tensor) {
        self.hook = hook; self.encoder = encoder; self.decoder = decoder; self.meanDense = meanDense; self.meanSparse = meanSparse
    }
    public let hook: String
    public let encoder: BridgeMap
    public let decoder: BridgeMap
    public let meanDense: Tensor     // [d_dense]
    public let meanSparse: Tensor    // [d_sparse]

    public func map(_ direction: BridgeDirection) -> BridgeMap { direction == .denseToSparse ? encoder : decoder }
}

public struct Bridge {
    public static let format = "sparsebridge.bridge"
    public static let version = 1

    public let denseConfig: ModelConfig
    public let sparseConfig: ModelConfig
    public let denseModel: String
    public let sparseModel: String
    public let denseSHA256: String
    public let sparseSHA256: String
    public let provenance: JSONValue
    public let sites: [BridgeSite]   // in execution order

    public init(denseConfig: ModelConfig, sparseConfig: ModelConfig, denseModel: String, sparseModel: String,
                denseSHA256: String, sparseSHA256: String, provenance: JSONValue, sites: [BridgeSite]) {
        self.denseConfig = denseConfig; self.sparseConfig = sparseConfig
        self.denseModel = denseModel; self.sparseModel = sparseModel
        self.denseSHA256 = denseSHA256; self.sparseSHA256 = sparseSHA256
        self.provenance = provenance; self.sites = sites
    }

    public func site(_ name: String, path: String = "bridge") throws -> BridgeSite {
        guard let s = sites.first(where: { $0.hook == name }) else {
            throw BridgeError.badFile(path: path, "holds no site \(name) (it has \(sites.map(\.hook).joined(separator: ", ")))")
        }
        return s
    }

    /// Refuses models whose widths or layer counts do not match the bridge.
    public func check(dense: ModelConfig, sparse: ModelConfig, path: String) throws {
        if dense.dModel != denseConfig.dModel || sparse.dModel != sparseConfig.dModel
            || dense.nLayer != denseConfig.nLayer || sparse.nLayer != sparseConfig.nLayer {
            throw BridgeError.mismatch("\(path): the bridge maps d_model \(denseConfig.dModel) ↔ \(sparseConfig.dModel) over "
                    + "\(denseConfig.nLayer) layers, but the models have d_model \(dense.dModel) ↔ \(sparse.dModel) over "
                    + "\(dense.nLayer) and \(sparse.nLayer) layers")
        }
    }

    public func save(to path: String) throws {
        let output = try AtomicOutput(path)
        let file = try H5File(create: output.temporaryPath)
        try file.setAttribute("format", Bridge.format)
        try file.setAttribute("format_version", Bridge.version)
        try file.setAttribute("dense_model", denseModel)
        try file.setAttribute("sparse_model", sparseModel)
        try file.setAttribute("dense_sha256", denseSHA256)
        try file.setAttribute("sparse_sha256", sparseSHA256)
        try file.setAttribute("dense_config", denseConfig.jsonString())
        try file.setAttribute("sparse_config", sparseConfig.jsonString())
        try file.setAttribute("provenance", provenance.jsonString)
        try file.setAttribute("sites", JSONValue.array(sites.map { .string($0.hook) }).jsonString)
        for s in sites {
            let g = try file.createGroup("sites/" + s.hook)
            for (name, m) in [("encoder", s.encoder), ("decoder", s.decoder)] {
                let mg = try g.createGroup(name)
                try mg.writeDataset("W", shape: m.weight.shape, values: UnsafePointer(m.weight.data))
                try mg.writeDataset("b", shape: m.bias.shape, values: UnsafePointer(m.bias.data))
                try mg.setAttribute("nmse", m.nmse)
                try mg.setAttribute("nmse_uncentered", m.nmseUncentered)
                try mg.setAttribute("lambda", m.lambda)
                try mg.setAttribute("lambda_relative", m.lambdaRelative)
                try mg.setAttribute("train_tokens", m.trainTokens)
                try mg.setAttribute("heldout_tokens", m.heldoutTokens)
                try mg.setAttribute("rms_in", m.rmsIn)
                try mg.setAttribute("rms_out", m.rmsOut)
            }
            try g.writeDataset("mean_dense", shape: s.meanDense.shape, values: UnsafePointer(s.meanDense.data))
            try g.writeDataset("mean_sparse", shape: s.meanSparse.shape, values: UnsafePointer(s.meanSparse.data))
        }
        file.closeFile()
        try output.commit()
    }

    public static func load(_ path: String) throws -> Bridge {
        let file = try H5File(open: path)
        try ModelFile.checkFormat(file, expected: format, version: version, what: "bridge")
        let dense = try ModelConfig.decode(json: try file.stringAttribute("dense_config"), source: path)
        let sparse = try ModelConfig.decode(json: try file.stringAttribute("sparse_config"), source: path)
        guard case .array(let names)? = try? JSONValue.parse(try file.stringAttribute("sites")) else {
            throw BridgeError.badFile(path: path, "attribute sites is not a JSON list")
        }
        func tensor(_ g: H5Group, _ name: String, _ shape: [Int]) throws -> Tensor {
            let ds = try g.openDataset(name)
            guard ds.shape == shape else {
                throw BridgeError.badFile(path: path, "\(g.name)/\(name) has shape \(ds.shape), expected \(shape)")
            }
            let t = Tensor(zeros: shape)
            try ds.readRows(0, count: shape[0], into: t.data)
            if let bad = (0..<t.count).first(where: { !t.data[$0].isFinite }) {
                throw BridgeError.badFile(path: path, "\(g.name)/\(name) holds a non-finite value at element \(bad)")
            }
            return t
        }
        let dd = dense.dModel, ds = sparse.dModel
        var sites: [BridgeSite] = []
        for case .string(let hook) in names {
            let g = try file.openGroup("sites/" + hook)
            let e = try g.openGroup("encoder"), d = try g.openGroup("decoder")
            sites.append(BridgeSite(
                hook: hook,
                encoder: try BridgeMap(weight: try tensor(e, "W", [dd, ds]), bias: try tensor(e, "b", [ds]), attributes: e),
                decoder: try BridgeMap(weight: try tensor(d, "W", [ds, dd]), bias: try tensor(d, "b", [dd]), attributes: d),
                meanDense: try tensor(g, "mean_dense", [dd]), meanSparse: try tensor(g, "mean_sparse", [ds])))
        }
        return Bridge(denseConfig: dense, sparseConfig: sparse, denseModel: try file.stringAttribute("dense_model"),
                      sparseModel: try file.stringAttribute("sparse_model"),
                      denseSHA256: try file.stringAttribute("dense_sha256"), sparseSHA256: try file.stringAttribute("sparse_sha256"),
                      provenance: (try? JSONValue.parse(try file.stringAttribute("provenance"))) ?? .null, sites: sites)
    }
}
