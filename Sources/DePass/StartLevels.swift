// The starting decompositions. Each returns components that sum exactly to the residual
// stream at its start point (checked again when propagation begins).

import Foundation
import HDF5
import Tensors
import Model

extension DecomposedForward {
    /// Token level: one component per position (its token embedding plus its position
    /// embedding), starting before block 0. The bigram row of position t goes to component t.
    public func tokenComponents() -> (Components, StartPoint) {
        let t = seqLen, d = model.config.dModel
        let names = (0..<t).map { "\($0):\(String(reflecting: String(UnicodeScalar(UInt8(clamping: tokens[$0])))))" }
        let comps = Components(names: names, seqLen: t, width: d)
        for pos in 0..<t {
            let row = comps.data.data + (pos * t + pos) * d
            row.update(from: state.embed.data + pos * d, count: d)
            for j in 0..<d { row[j] += state.posEmbed.data[pos * d + j] }
        }
        comps.bigramOwner = { $0 }
        return (comps, StartPoint(layer: 0, stage: .beforeAttention))
    }

    /// Head level at `layer`: [the stream entering the layer, each head's output z_h W_O^h
    /// (its b_V share included), bias = b_O], starting after the layer's attention.
    public func headComponents(layer l: Int) -> (Components, StartPoint) {
        let c = model.config, w = model.weights.blocks[l], acts = state.layer(l), t = seqLen, d = c.dModel
        let comps = Components(names: ["resid_pre"] + (0..<c.nHead).map { "L\(l)H\($0)" }, seqLen: t, width: d)
        comps.component(0).copy(from: acts.residPre)
        for h in 0..<c.nHead {
            BLAS.gemm(m: t, n: d, k: c.dHead, a: acts.z.data + h * c.dHead, lda: c.attentionWidth,
                      b: w.W_O.data + h * c.dHead * d, ldb: d, c: comps.component(h + 1).data, ldc: d)
        }
        if let b = w.b_O { Kernels.addBias(b.data, to: comps.component(comps.biasIndex).data, rows: t, width: d) }
        // AbsTopK at attn_out and on the stream act on every component alike.
        mask(.attnOut, l, comps.data.rows((t)..<(comps.count * t)), components: comps.count - 1)
        mask(.residPostAttn, l, comps.data, components: comps.count)
        comps.bigramOwner = { _ in 0 }
        return (comps, StartPoint(layer: l, stage: .beforeMLP))
    }

    /// Neuron level at `layer` for neurons `range`: [each neuron's output m_i W_out[i, :], the
    /// rest of the stream after the block], starting after the block.
    public func neuronComponents(layer l: Int, neurons range: Range<Int>) -> (Components, StartPoint) {
        let c = model.config, w = model.weights.blocks[l], acts = state.layer(l), t = seqLen, d = c.dModel
        let comps = Components(names: range.map { "L\(l)N\($0)" } + ["rest"], seqLen: t, width: d)
        for (k, i) in range.enumerated() {
            let out = comps.component(k).data
            for pos in 0..<t {
                let m = acts.mlpPost.data[pos * c.dMLP + i]
                if m == 0 { continue }
                for j in 0..<d { out[pos * d + j] = m * w.W_out.data[i * d + j] }
            }
        }
        mask(.mlpOut, l, comps.data.rows(0..<(range.count * t)), components: range.count)
        let after = l + 1 < c.nLayer ? state.layer(l + 1).residPre : state.finalResid
        let rest = comps.component(range.count)
        rest.copy(from: after)
        for k in 0..<range.count {
            let x = comps.component(k).data
            for i in 0..<(t * d) { rest.data[i] -= x[i] }
        }
        comps.bigramOwner = { _ in range.count }
        return (comps, StartPoint(layer: l, stage: .afterBlock))
    }

    /// Subspace level at the stream entering `layer`: [P h, (I − P) h] with P the orthogonal
    /// projection onto the span of `basis` rows ([r, d_model]). The bigram row goes to (I − P) h.
    public func subspaceComponents(layer l: Int, basis: Tensor) throws -> (Components, StartPoint) {
        let d = model.config.dModel, t = seqLen
        guard basis.rank == 2, basis.shape[1] == d else {
            throw DePassError("the basis has shape \(basis.shape); it needs rows of width d_model \(d)")
        }
        // Gram–Schmidt in Float64 (rows that add nothing new are dropped).
        var q: [[Double]] = []
        for r in 0..<basis.shape[0] {
            var v = (0..<d).map { Double(basis.data[r * d + $0]) }
            for u in q { let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }; for j in 0..<d { v[j] -= dot * u[j] } }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-9 { q.append(v.map { $0 / norm }) }
        }
        guard !q.isEmpty else { throw DePassError("the basis spans nothing (all rows are zero)") }
        let h = state.layer(l).residPre
        let comps = Components(names: ["in_subspace", "complement"], seqLen: t, width: d)
        for pos in 0..<t {
            let x = (0..<d).map { Double(h.data[pos * d + $0]) }
            var p = [Double](repeating: 0, count: d)
            for u in q { let dot = zip(u, x).reduce(0) { $0 + $1.0 * $1.1 }; for j in 0..<d { p[j] += dot * u[j] } }
            for j in 0..<d {
                comps.data.data[pos * d + j] = Float(p[j])
                comps.data.data[(t + pos) * d + j] = h.data[pos * d + j] - Float(p[j])
            }
        }
        comps.bigramOwner = { _ in 1 }
        return (comps, StartPoint(layer: l, stage: .beforeAttention))
    }

    /// A layer's neurons `range` in chunks of at most `size`, each one decomposition
    /// (neuronComponents): K stays small whatever the layer's width.
    public static func neuronChunks(_ range: Range<Int>, size: Int) -> [Range<Int>] {
        stride(from: range.lowerBound, to: range.upperBound, by: size).map { $0..<min(range.upperBound, $0 + size) }
    }

    /// Reads a basis from `FILE.h5:DATASET` (float32 [r, d_model]).
    public static func loadBasis(_ spec: String, width: Int) throws -> Tensor {
        guard let colon = spec.lastIndex(of: ":") else {
            throw DePassError("\(parameter: "basis") must be FILE.h5:DATASET, got \(spec)")
        }
        let path = String(spec[..<colon]), name = String(spec[spec.index(after: colon)...])
        let file = try H5File(open: path)
        let ds = try file.openDataset(name)
        guard ds.shape.count == 2, ds.shape[1] == width, ds.shape[0] > 0 else {
            throw DePassError("\(path): \(name) has shape \(ds.shape); expected [rows, d_model \(width)]")
        }
        let t = Tensor(zeros: ds.shape)
        try ds.readRows(0, count: ds.shape[0], into: t.data)
        if let bad = (0..<t.count).first(where: { !t.data[$0].isFinite }) {
            throw DePassError("\(path): \(name) holds a non-finite value at row \(bad / width), column \(bad % width)")
        }
        return t
    }

    /// Any decomposition the caller builds (e.g. steering: [unsteered, α·Δ⊗D[c, :]]).
    public func customComponents(names: [String], parts: [Tensor], at start: StartPoint, bigramOwner: Int) -> Components {
        let comps = Components(names: names, seqLen: seqLen, width: model.config.dModel)
        for (k, p) in parts.enumerated() { comps.component(k).copy(from: p) }
        comps.bigramOwner = { _ in bigramOwner }
        return comps
    }
}
