import Foundation
@_exported import ModelFixtures
import Testing
import Tensors
import Model



// MARK: models


/// Rows [from, to) of a [rows, width] tensor as Float64 rows.
func rowsOf(_ t: Tensor, width: Int, _ range: Range<Int>) -> [[Double]] {
    range.map { r in (0..<width).map { Double(t.data[r * width + $0]) } }
}

func maxAbsDiff(_ a: [[Double]], _ b: [[Double]]) -> Double {
    precondition(a.count == b.count)
    var m = 0.0
    for (x, y) in zip(a, b) {
        precondition(x.count == y.count)
        for (u, v) in zip(x, y) { m = max(m, abs(u - v)) }
    }
    return m
}

// MARK: a Float64 reference forward pass, written from the formulas in DESIGN.md

enum Reference {
    static func vector(_ t: Tensor?) -> [Double]? { t.map { $0.toArray().map(Double.init) } }

    /// x · W (+ b) for W stored [in, out].
    static func linear(_ x: [[Double]], _ w: Tensor, _ b: Tensor?) -> [[Double]] {
        let (nIn, nOut) = (w.shape[0], w.shape[1])
        let bias = vector(b)
        return x.map { row in
            (0..<nOut).map { j in
                var s = bias?[j] ?? 0
                for i in 0..<nIn { s += row[i] * Double(w.data[i * nOut + j]) }
                return s
            }
        }
    }

    static func norm(_ x: [[Double]], _ kind: NormKind, gain: Tensor, bias: Tensor?, eps: Double) -> [[Double]] {
        let g = vector(gain)!, b = vector(bias)
        return x.map { row in
            let n = Double(row.count)
            let mean = kind == .layer ? row.reduce(0, +) / n : 0
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
            let r = 1 / (variance + eps).squareRoot()
            return row.indices.map { (row[$0] - mean) * r * g[$0] + (b?[$0] ?? 0) }
        }
    }

    static func activation(_ kind: ActivationKind, _ v: Double) -> Double {
        switch kind {
        case .gelu: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
        case .relu: return max(v, 0)
        }
    }

    /// P[h][i][j] from one sequence's q, k rows ([T][n_head·d_head]).
    static func pattern(q: [[Double]], k: [[Double]], heads: Int, dHead: Int, sink: [Double]?) -> [[[Double]]] {
        let t = q.count
        return (0..<heads).map { h in
            (0..<t).map { i in
                var scores = [Double](repeating: -.infinity, count: t)
                for j in 0...i {
                    var s = 0.0
                    for d in 0..<dHead { s += q[i][h * dHead + d] * k[j][h * dHead + d] }
                    scores[j] = s / Double(dHead).squareRoot()
                }
                let sinkLogit = sink?[h] ?? -.infinity
                let m = max(scores.max()!, sinkLogit)
                let e = scores.map { exp($0 - m) }
                let denominator = e.reduce(0, +) + exp(sinkLogit - m)
                return e.map { $0 / denominator }
            }
        }
    }

    /// Final norm and unembedding (+ bigram) of residual rows.
    static func unembed(_ w: TransformerWeights, resid: [[Double]], tokens: [Int32]) -> [[Double]] {
        let c = w.config
        let normed = norm(resid, c.norm, gain: w.lnFinalGain, bias: w.lnFinalBias, eps: c.normEps)
        var logits: [[Double]]
        if let W_U = w.W_U {
            logits = linear(normed, W_U, w.b_U)
        } else {
            let bias = vector(w.b_U)
            logits = normed.map { row in
                (0..<c.vocab).map { v in
                    var s = bias?[v] ?? 0
                    for d in 0..<c.dModel { s += row[d] * Double(w.W_E.data[v * c.dModel + d]) }
                    return s
                }
            }
        }
        if let table = w.bigram {
            for (i, tok) in tokens.enumerated() {
                for v in 0..<c.vocab { logits[i][v] += Double(table.data[Int(tok) * c.vocab + v]) }
            }
        }
        return logits
    }

    /// The residual stream after the last block, for one sequence (no AbsTopK).
    static func finalResidual(_ w: TransformerWeights, tokens: [Int32]) -> [[Double]] {
        let c = w.config, d = c.dModel, t = tokens.count
        var x: [[Double]] = tokens.enumerated().map { i, tok in
            (0..<d).map { j in
                Double(w.W_E.data[Int(tok) * d + j]) + (w.W_pos.map { Double($0.data[i * d + j]) } ?? 0)
            }
        }
        for b in w.blocks {
            let n1 = norm(x, c.norm, gain: b.ln1Gain, bias: b.ln1Bias, eps: c.normEps)
            let q = linear(n1, b.W_Q, b.b_Q), k = linear(n1, b.W_K, b.b_K), v = linear(n1, b.W_V, b.b_V)
            let p = pattern(q: q, k: k, heads: c.nHead, dHead: c.dHead, sink: vector(b.sink))
            var z = [[Double]](repeating: [Double](repeating: 0, count: c.attentionWidth), count: t)
            for h in 0..<c.nHead {
                for i in 0..<t {
                    for j in 0...i {
                        for e in 0..<c.dHead { z[i][h * c.dHead + e] += p[h][i][j] * v[j][h * c.dHead + e] }
                    }
                }
            }
            let attnOut = linear(z, b.W_O, b.b_O)
            for i in 0..<t { for j in 0..<d { x[i][j] += attnOut[i][j] } }
            let n2 = norm(x, c.norm, gain: b.ln2Gain, bias: b.ln2Bias, eps: c.normEps)
            let post = linear(n2, b.W_in, b.b_in).map { $0.map { activation(c.activation, $0) } }
            let mlpOut = linear(post, b.W_out, b.b_out)
            for i in 0..<t { for j in 0..<d { x[i][j] += mlpOut[i][j] } }
        }
        return x
    }

    static func logits(_ w: TransformerWeights, tokens: [Int32]) -> [[Double]] {
        unembed(w, resid: finalResidual(w, tokens: tokens), tokens: tokens)
    }
}
