import ArgumentParser
import Bridges
import Foundation
import HDF5
import Tensors
import Checkpoints
import Model
import Support

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Summarise a model, activation, bridge or safetensors file, or a circuit_sparsity checkpoint.")

    @Argument(help: "The file.")
    var file: String
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let summary = try FileSummary.of(file)
        if json { printJSON(summary.json) } else { print(summary.text) }
    }
}

/// What `info` reports, as text and as JSON.
struct FileSummary {
    var text: String
    var json: JSONValue

    static func of(_ path: String) throws -> FileSummary {
        if path.hasSuffix(".safetensors") { return try safetensors(path) }
        if ModelLoader.isCheckpoint(path) { return try model(path) }  // a circuit_sparsity folder or .pt
        let file = try H5File(open: path)
        guard file.hasAttribute("format") else {
            throw CommandError(file: path, "an HDF5 file, but not one of SparseBridge's (no format attribute)")
        }
        switch try file.stringAttribute("format") {
        case ModelFile.format:
            file.closeFile()
            return try model(path)
        case ActivationFormat.format:
            file.closeFile()
            return try activations(path)
        case Bridge.format:
            file.closeFile()
            return try bridge(path)
        case let other:
            throw CommandError(file: path, "unknown format \(other)")
        }
    }

    static func model(_ path: String) throws -> FileSummary {
        let loaded = try ModelLoader.load(path)
        let c = loaded.model.config, w = loaded.model.weights
        let params = w.parameterCount, nonzero = w.nonzeroCount
        var lines = ["model \(path)",
                     "  config      \(c.jsonString())",
                     "  tokenizer   \(loaded.tokenizer.json.jsonString)",
                     "  parameters  \(params) (\(nonzero) nonzero, \(fmt(Double(nonzero) / Double(max(params, 1)), 4)) kept)",
                     "  matmul      sparse kernel at kept fraction ≤ \(SparseMatrix.densityThreshold), else BLAS",
                     "  provenance  \(loaded.provenance.jsonString)"]
        // Which kernel multiplies by each weight matrix: the sparse kernel for those whose kept
        // fraction is at most SparseMatrix.densityThreshold, else BLAS.
        var table = Table(headers: ["tensor", "shape", "kept fraction", "matmul"])
        var tensors: [JSONValue] = []
        for p in w.parameters {
            var nz = 0
            for i in 0..<p.tensor.count where p.tensor.data[i] != 0 { nz += 1 }
            let kept = Double(nz) / Double(max(p.tensor.count, 1))
            let path = TransformerWeights.isMatmulWeight(p.role) ? (p.tensor.sparseForm == nil ? "dense" : "sparse") : "-"
            table.rows.append([p.name, "\(p.tensor.shape)", fmt(kept), path])
            var entry: [String: JSONValue] = ["name": .string(p.name), "shape": .array(p.tensor.shape.map { .number(Double($0)) }),
                                              "kept_fraction": .number(kept)]
            if path != "-" { entry["matmul"] = .string(path) }
            tensors.append(.object(entry))
        }
        lines.append(table.render())
        let json = JSONValue.object([
            "kind": .string("model"), "path": .string(path), "config": try JSONValue.parse(c.jsonString()),
            "tokenizer": loaded.tokenizer.json, "provenance": loaded.provenance,
            "parameters": .number(Double(params)), "nonzero": .number(Double(nonzero)), "tensors": .array(tensors)])
        return FileSummary(text: lines.joined(separator: "\n"), json: json)
    }

    static func activations(_ path: String) throws -> FileSummary {
        let a = try ActivationFile(path: path)
        var lines = ["activations \(path)",
                     "  model       \(try a.file.stringAttribute("model")) (sha256 \(a.modelSHA256.prefix(16))…)",
                     "  corpus      \(a.corpus)",
                     "  n_ctx       \(a.seqLen)",
                     "  rows        \(a.rowsComplete) complete"]
        var table = Table(headers: ["site", "shape"])
        var sites: [JSONValue] = []
        for s in a.sites {
            let shape = try a.site(s).shape
            table.rows.append([s, "\(shape)"])
            sites.append(.object(["name": .string(s), "shape": .array(shape.map { .number(Double($0)) })]))
        }
        lines.append(table.render())
        let json = JSONValue.object([
            "kind": .string("activations"), "path": .string(path), "model_sha256": .string(a.modelSHA256),
            "corpus": .string(a.corpus), "n_ctx": .number(Double(a.seqLen)),
            "rows_complete": .number(Double(a.rowsComplete)), "sites": .array(sites)])
        return FileSummary(text: lines.joined(separator: "\n"), json: json)
    }

    static func bridge(_ path: String) throws -> FileSummary {
        let b = try Bridge.load(path)
        let text = ["bridge \(path)",
                    "  dense       \(b.denseModel) (d_model \(b.denseConfig.dModel), sha256 \(b.denseSHA256.prefix(16))…)",
                    "  sparse      \(b.sparseModel) (d_model \(b.sparseConfig.dModel), sha256 \(b.sparseSHA256.prefix(16))…)",
                    "  provenance  \(b.provenance.jsonString)",
                    nmseTable(b.sites)].joined(separator: "\n")
        let json = JSONValue.object([
            "kind": .string("bridge"), "path": .string(path), "dense_model": .string(b.denseModel),
            "sparse_model": .string(b.sparseModel), "provenance": b.provenance, "sites": .array(b.sites.map(siteJSON))])
        return FileSummary(text: text, json: json)
    }

    static func safetensors(_ path: String) throws -> FileSummary {
        let f = try SafetensorsFile(path: path)
        var table = Table(headers: ["tensor", "dtype", "shape"])
        for e in f.entries { table.rows.append([e.name, e.dtype, "\(e.shape)"]) }
        let text = (["safetensors \(path)", "  metadata    \(f.metadata.keys.sorted().joined(separator: ", "))",
                     "  tensors     \(f.entries.count)"] + [table.render()]).joined(separator: "\n")
        let json = JSONValue.object([
            "kind": .string("safetensors"), "path": .string(path),
            "metadata": .object(f.metadata.mapValues { .string($0) }),
            "tensors": .array(f.entries.map { .object(["name": .string($0.name), "dtype": .string($0.dtype),
                                                       "shape": .array($0.shape.map { .number(Double($0)) })]) })])
        return FileSummary(text: text, json: json)
    }
}
