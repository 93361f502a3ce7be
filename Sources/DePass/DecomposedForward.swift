// Carrying components through the frozen model, block by block. With c_k the components
// ([T, d_model] each, the bias component last) and the frozen forward pass `state`:
//
//   norm:       ñ_k = γ ⊙ (c_k − mean(c_k)) · rstd(h)     (LayerNorm; β goes to the bias
//               component) or ñ_k = γ ⊙ c_k · rstd(h)      (RMSNorm); rstd from the full state
//   attention:  a_k = Σ_h A^h (ñ_k W_V^h) W_O^h; the bias component also carries b_V (so it
//               is weighted by A's row sums, below 1 with a sink) and b_O
//   MLP:        by `rule` (Decomposition.swift); the bias component carries b_in and b_out
//   residual:   c_k ← c_k + a_k (and + o_k)
//   AbsTopK:    each frozen keep mask multiplies every component
//   logits:     (final-norm-scaled c_k) W_U; b_U to bias; the bigram row to the component
//               that holds the current token's embedding
//
// After every block the sum of the components is checked against the real hidden state.

import Foundation
import Tensors
import Model

public struct ExactnessCheck: Sendable {
    public let site: String
    /// max |Σ_k c_k − h| and max |h| at this site.
    public let maxError: Float
    public let scale: Float
    public var relative: Float { maxError / max(scale, 1e-30) }
}

/// One propagation: per-component logits [(K + 1) · T, vocab], the components as they leave
/// the model, the exactness record, and (when asked for) one component's routes.
public struct Propagation {
    public let logits: Tensor
    /// The components after the last block (what each contributes to the final residual).
    public let final: Components
    public let checks: [ExactnessCheck]
    /// The component whose routes were recorded, its value at the start (last position,
    /// [d_model]) and each later write it received there.
    public let routeComponent: Int?
    public let routeStart: [Float]?
    public let routeWrites: [(name: String, write: [Float])]
    /// The largest relative error over every checked site.
    public var worstRelativeError: Float { checks.map(\.relative).max() ?? 0 }
}

public final class DecomposedForward {
    public let model: Transformer
    public let tokens: [Int32]
    public let rule: MLPRule
    public let temperature: Float
    /// The frozen forward pass (batch 1, every activation kept).
    public let state: ForwardState

    /// Runs the real forward pass (with `hooks`, e.g. a steering edit) and freezes it.
    public init(model: Transformer, tokens: [Int32], rule: MLPRule = .softmax, temperature: Float = 0.1,
                hooks: Hooks? = nil) throws {
        self.model = model
        self.tokens = tokens
        self.rule = rule
        self.temperature = temperature
        // A dedicated state: the model's cached one would be overwritten by the next forward pass.
        let s = ForwardState(config: model.config, batch: 1, seqLen: tokens.count, keepActivations: true)
        state = try model.forward(tokens: tokens, batch: 1, seqLen: tokens.count, hooks: hooks, into: s)
    }

    public var seqLen: Int { tokens.count }

    /// The real residual stream at a start point, [T, d_model].
    public func residual(at p: StartPoint) -> Tensor {
        let c = model.config
        switch p.stage {
        case .beforeAttention: return state.layer(p.layer).residPre
        case .beforeMLP: return state.layer(p.layer).residMid
        case .afterBlock: return p.layer + 1 < c.nLayer ? state.layer(p.layer + 1).residPre : state.finalResid
        }
    }

    /// Propagates `components` (which must sum to the residual at `start`) to the logits. The
    /// components given are left as they are: the pass works on a copy, returned as `final`.
    /// With `routesOf`, each write (attention head, MLP layer) that component receives is
    /// recorded at the last position, to split its score into routes in the same pass.
    public func propagate(_ components: Components, from start: StartPoint, routesOf: Int? = nil) throws -> Propagation {
        let c = model.config
        let comps = components.copy()
        let pass = Pass(routeComponent: routesOf)
        let initial = routesOf.map { k in
            Array(UnsafeBufferPointer(start: comps.component(k).data + (seqLen - 1) * comps.width, count: comps.width))
        }
        check(comps, against: residual(at: start), site: start.hook(nLayer: c.nLayer).name, pass)
        for l in start.layer..<c.nLayer {
            let first = l == start.layer
            if !first || start.stage == .beforeAttention {
                attention(l, comps, pass)
                check(comps, against: state.layer(l).residMid, site: HookPoint.residMid(l).name, pass)
            }
            if !first || start.stage != .afterBlock {
                try mlp(l, comps, pass)
                let after = l + 1 < c.nLayer ? state.layer(l + 1).residPre : state.finalResid
                check(comps, against: after, site: HookPoint.residPost(l).name, pass)
            }
        }
        let logits = unembed(comps)
        check(rowsOf: logits, components: comps.count, against: state.logits, site: "logits", pass)
        return Propagation(logits: logits, final: comps, checks: pass.checks, routeComponent: routesOf,
                           routeStart: initial, routeWrites: pass.routeWrites)
    }

    /// What one pass records as it goes (a value of the pass, not of the run).
    final class Pass {
        var checks: [ExactnessCheck] = []
        let routeComponent: Int?
        var routeWrites: [(name: String, write: [Float])] = []
        init(routeComponent: Int?) { self.routeComponent = routeComponent }
    }

    // MARK: exactness

    func check(_ comps: Components, against truth: Tensor, site: String, _ pass: Pass) {
        let sum = comps.sum()
        pass.checks.append(ExactnessCheck(site: site, maxError: sum.maxAbsDifference(truth), scale: truth.maxAbs))
    }

    func check(rowsOf perComponent: Tensor, components: Int, against truth: Tensor, site: String, _ pass: Pass) {
        let (rows, v) = (truth.matrixShape.rows, truth.matrixShape.cols)
        let sum = Tensor(zeros: [rows, v])
        for k in 0..<components { Kernels.add(perComponent.data + k * rows * v, into: sum.data, count: rows * v) }
        pass.checks.append(ExactnessCheck(site: site, maxError: sum.maxAbsDifference(truth), scale: truth.maxAbs))
    }

    // MARK: pieces

    /// ñ_k for every component, [(K + 1) · T, d_model]. Each component is centred on its own
    /// mean (LayerNorm); the means add up to the full state's, so nothing of it is needed.
    func normalize(_ comps: Components, gain: Tensor, bias: Tensor?, rstd: Tensor) -> Tensor {
        let t = seqLen, d = comps.width, layer = model.config.norm == .layer
        let out = Tensor(zeros: comps.data.shape)
        Parallel.forRange(comps.count * t, minimumPerThread: 64) { rows in
            for r in rows {
                let k = r / t, pos = r % t
                let x = comps.data.data + r * d, y = out.data + r * d
                let m = layer ? VectorOps.sum(x, d) / Float(d) : 0
                let s = rstd[pos]
                for j in 0..<d { y[j] = gain[j] * (x[j] - m) * s }
                if k == comps.biasIndex, let bias { for j in 0..<d { y[j] += bias[j] } }
            }
        }
        return out
    }

    /// x ← x ⊙ mask (mask [T, width], the same for every component) where AbsTopK applied.
    func mask(_ location: AbsTopKLocation, _ l: Int, _ x: Tensor, components: Int) {
        guard let m = state.layer(l).masks[location] else { return }
        let per = m.count
        Parallel.forRange(components) { ks in
            for k in ks { for i in 0..<per { x.data[k * per + i] *= m.data[i] } }
        }
    }

    /// Adds `bias` to every row of the bias component's block of x [(K + 1) · T, width].
    func addToBias(_ bias: Tensor?, _ x: Tensor, comps: Components) {
        guard let bias else { return }
        let width = x.matrixShape.cols
        Kernels.addBias(bias.data, to: x.data + comps.biasIndex * seqLen * width, rows: seqLen, width: width)
    }

    func attention(_ l: Int, _ comps: Components, _ pass: Pass) {
        let c = model.config, w = model.weights.blocks[l], acts = state.layer(l)
        let t = seqLen, a = c.attentionWidth, dh = c.dHead, k = comps.count
        let n = normalize(comps, gain: w.ln1Gain, bias: w.ln1Bias, rstd: acts.ln1Rstd)
        mask(.attnIn, l, n, components: k)
        let v = Tensor(zeros: [k * t, a])                                 // values per component
        matmul(n, w.W_V, into: v)
        addToBias(w.b_V, v, comps: comps)
        mask(.attnV, l, v, components: k)
        let z = Tensor(zeros: [k * t, a])                                 // z_k = A^h v_k per head
        let pattern = acts.pattern!
        Parallel.forRange(k * c.nHead) { pairs in
            for pair in pairs {
                let comp = pair / c.nHead, h = pair % c.nHead
                BLAS.gemm(m: t, n: dh, k: t, a: pattern.data + h * t * t, lda: t,
                          b: v.data + comp * t * a + h * dh, ldb: a, c: z.data + comp * t * a + h * dh, ldc: a, split: false)
            }
        }
        let out = Tensor(zeros: [k * t, c.dModel])
        matmul(z, w.W_O, into: out)
        addToBias(w.b_O, out, comps: comps)
        mask(.attnOut, l, out, components: k)
        if let r = pass.routeComponent {
            // Head h's write at the last position: z^h W_O^h, masked like the whole output.
            let row = (r * t + t - 1), d = c.dModel
            let m = state.layer(l).masks[.attnOut].map { Array(UnsafeBufferPointer(start: $0.data + (t - 1) * d, count: d)) }
            for h in 0..<c.nHead {
                var write = [Float](repeating: 0, count: d)
                for j in 0..<dh {
                    let zv = z.data[row * a + h * dh + j]
                    if zv == 0 { continue }
                    for i in 0..<d { write[i] += zv * w.W_O.data[(h * dh + j) * d + i] }
                }
                if let m { for i in 0..<d { write[i] *= m[i] } }
                pass.routeWrites.append(("L\(l)H\(h)", write))
            }
        }
        Kernels.add(out.data, into: comps.data.data, count: out.count)
        mask(.residPostAttn, l, comps.data, components: k)
    }

    func mlp(_ l: Int, _ comps: Components, _ pass: Pass) throws {
        let c = model.config, w = model.weights.blocks[l], acts = state.layer(l)
        let t = seqLen, f = c.dMLP, k = comps.count
        let n = normalize(comps, gain: w.ln2Gain, bias: w.ln2Bias, rstd: acts.ln2Rstd)
        mask(.mlpIn, l, n, components: k)
        let h = acts.mlpPre, m = acts.mlpPost                             // [T, d_mlp], frozen
        // Components in chunks, so that [chunk · T, d_mlp] stays bounded.
        let chunk = max(1, min(k, (1 << 24) / max(1, t * f)))
        let out = Tensor(zeros: [k * t, c.dModel])
        func pre(_ ks: Range<Int>) -> Tensor {                           // z = ñ_k W_in (+ b_in for bias)
            let p = Tensor(zeros: [ks.count * t, f])
            matmul(n.rows((ks.lowerBound * t)..<(ks.upperBound * t)), w.W_in, into: p)
            if ks.contains(comps.biasIndex), let b = w.b_in {
                Kernels.addBias(b.data, to: p.data + (comps.biasIndex - ks.lowerBound) * t * f, rows: t, width: f)
            }
            return p
        }
        switch rule {
        case .ratio:
            for start in stride(from: 0, to: k, by: chunk) {
                let ks = start..<min(k, start + chunk), p = pre(ks)
                Parallel.forRange(ks.count * t, minimumPerThread: 16) { rows in
                    for r in rows {
                        let pos = r % t
                        for i in 0..<f {
                            let hv = h.data[pos * f + i]
                            p.data[r * f + i] *= hv == 0 ? 0 : m.data[pos * f + i] / hv
                        }
                    }
                }
                matmul(p, w.W_out, into: out.rows((ks.lowerBound * t)..<(ks.upperBound * t)))
            }
        case .softmax:
            // Pass 1: per (position, neuron), the max and the sum of exp(z/τ) over components with z ≠ 0.
            let tau = temperature
            var maxZ = [Float](repeating: -.infinity, count: t * f)
            var sumE = [Float](repeating: 0, count: t * f)
            for start in stride(from: 0, to: k, by: chunk) {
                let ks = start..<min(k, start + chunk), p = pre(ks)
                for kk in 0..<ks.count {
                    for j in 0..<(t * f) {
                        let z = p.data[kk * t * f + j]
                        if z == 0 { continue }
                        let s = z / tau
                        if s > maxZ[j] { sumE[j] = sumE[j] * exp(maxZ[j] - s) + 1; maxZ[j] = s }
                        else { sumE[j] += exp(s - maxZ[j]) }
                    }
                }
            }
            // Pass 2: component k's share of m_i is exp(z/τ − max) / Σ.
            for start in stride(from: 0, to: k, by: chunk) {
                let ks = start..<min(k, start + chunk), p = pre(ks)
                for kk in 0..<ks.count {
                    for j in 0..<(t * f) {
                        let z = p.data[kk * t * f + j]
                        p.data[kk * t * f + j] = z == 0 ? 0 : m.data[j] * exp(z / tau - maxZ[j]) / sumE[j]
                    }
                }
                matmul(p, w.W_out, into: out.rows((ks.lowerBound * t)..<(ks.upperBound * t)))
            }
        }
        addToBias(w.b_out, out, comps: comps)
        mask(.mlpOut, l, out, components: k)
        if let r = pass.routeComponent {
            let d = c.dModel
            pass.routeWrites.append(("L\(l)MLP", Array(UnsafeBufferPointer(start: out.data + (r * t + t - 1) * d, count: d))))
        }
        Kernels.add(out.data, into: comps.data.data, count: out.count)
        mask(.residPostMLP, l, comps.data, components: k)
    }

    func unembed(_ comps: Components) -> Tensor {
        let c = model.config, w = model.weights, t = seqLen, k = comps.count
        let n = normalize(comps, gain: w.lnFinalGain, bias: w.lnFinalBias, rstd: state.lnFinalRstd)
        let logits = Tensor(zeros: [k * t, c.vocab])
        if let W_U = w.W_U { matmul(n, W_U, into: logits) } else { matmul(n, w.W_E, into: logits, transposeB: true) }
        addToBias(w.b_U, logits, comps: comps)
        if let table = w.bigram {
            for pos in 0..<t {
                let owner = comps.bigramOwner?(pos) ?? comps.biasIndex
                let row = logits.data + (owner * t + pos) * c.vocab, add = table.data + Int(tokens[pos]) * c.vocab
                for j in 0..<c.vocab { row[j] += add[j] }
            }
        }
        return logits
    }
}
