// Steering the dense model through one sparse channel (DESIGN.md "Steering").
//
// For a prompt pair that differs minimally, Δ_t = a_c(counterfactual)_t − a_c(presented)_t
// for every token t, with a_c channel c of the sparse residual stream at the site (the
// sparse model's own activation, or the encoder applied to the dense one). The dense
// stream at the same site becomes h_t + α · Δ_t · D[c, :], D[c, :] the decoder's row c
// (optionally times the dense/sparse RMS ratio).

import Bridges
import Foundation
import Tasks
import Tensors
import Model
import Support

public enum SteeringSource: String, Sendable, CaseIterable, Codable { case sparse, encoded }
public enum SteeringRescale: String, Sendable, CaseIterable, Codable { case none, rms }

public struct SteeringError: UserFacingError {
    public let message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

public final class Steerer {
    public let dense: Transformer
    public let sparse: Transformer
    public let site: BridgeSite
    public let point: HookPoint
    public let source: SteeringSource
    public let rescale: SteeringRescale

    public init(bridge: Bridge, dense: Transformer, sparse: Transformer, site name: String, source: SteeringSource,
                rescale: SteeringRescale, bridgePath: String) throws {
        try bridge.check(dense: dense.config, sparse: sparse.config, path: bridgePath)
        self.dense = dense; self.sparse = sparse
        site = try bridge.site(name, path: bridgePath)
        point = try HookPoint.parse(name, config: dense.config)
        self.source = source; self.rescale = rescale
    }

    /// The pair with both prompts cut to the models' context (their last n_ctx tokens).
    public func clip(_ pair: PromptPair) -> PromptPair {
        let n = min(dense.config.nCtx, sparse.config.nCtx)
        func cut(_ p: TaskPrompt) -> TaskPrompt { TaskPrompt(tokens: Array(p.tokens.suffix(n)), target: p.target,
                                                             alternative: p.alternative) }
        return PromptPair(presented: cut(pair.presented), counterfactual: cut(pair.counterfactual))
    }

    /// The sparse residual stream at the site for one prompt, [T, d_sparse].
    public func sparseActivations(_ tokens: [Int32]) throws -> Tensor {
        let t = tokens.count
        let out = Tensor(zeros: [t, sparse.config.dModel])
        let hooks = Hooks()
        switch source {
        case .sparse:
            hooks.add(point) { out.copy(from: $0.activation) }
            try sparse.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
        case .encoded:
            hooks.add(point) { ctx in self.site.encoder.apply(ctx.activation.reshaped([t, self.dense.config.dModel]), into: out) }
            try dense.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
        }
        return out
    }

    /// The sparse stream at the site on both prompts of a pair, which must have the same length.
    public func pairActivations(_ pair: PromptPair) throws -> (presented: Tensor, counterfactual: Tensor) {
        guard pair.presented.tokens.count == pair.counterfactual.tokens.count else {
            throw SteeringError("steering needs prompt pairs of equal length (this task's prompts differ in length)")
        }
        return (try sparseActivations(pair.presented.tokens), try sparseActivations(pair.counterfactual.tokens))
    }

    /// Δ_t for channel c over a pair (the two prompts must have the same length).
    public func delta(_ pair: PromptPair, channel c: Int) throws -> [Float] {
        let (a, b) = try pairActivations(pair)
        let d = sparse.config.dModel
        return (0..<pair.presented.tokens.count).map { b.data[$0 * d + c] - a.data[$0 * d + c] }
    }

    /// D[c, :] (the decoder's row for channel c), times the RMS ratio when asked.
    public func direction(channel c: Int) -> [Float] {
        let d = dense.config.dModel, w = site.decoder.weight
        let factor = rescale == .rms ? Float(site.decoder.rmsOut / max(site.decoder.rmsIn, 1e-30)) : 1
        return (0..<d).map { w.data[c * d + $0] * factor }
    }

    /// A hook adding α · Δ_t · v to the dense stream at the site.
    public func hooks(delta: [Float], direction v: [Float], alpha: Float) -> Hooks {
        let hooks = Hooks()
        let d = dense.config.dModel
        hooks.add(point) { ctx in
            let x = ctx.activation.data
            for t in 0..<min(delta.count, ctx.seqLen) {
                let s = alpha * delta[t]
                for j in 0..<d { x[t * d + j] += s * v[j] }
            }
        }
        return hooks
    }

    /// Dense logits at the last position of `tokens` with the edit applied.
    public func steeredLastLogits(_ tokens: [Int32], delta: [Float], direction v: [Float], alpha: Float) throws -> [Float] {
        let s = try dense.forward(tokens: tokens, batch: 1, seqLen: tokens.count,
                                  hooks: hooks(delta: delta, direction: v, alpha: alpha))
        let vocab = dense.config.vocab
        return Array(UnsafeBufferPointer(start: s.logits.data + (tokens.count - 1) * vocab, count: vocab))
    }
}
