// The model: weights plus the batched forward pass. Embeddings → blocks (Block.swift)
// → final norm → unembedding (+ bigram table).

import Tensors

public final class Transformer {
    public let config: ModelConfig
    public let weights: TransformerWeights
    /// Reused across calls with the same batch shape.
    private var cachedState: ForwardState?

    public init(weights: TransformerWeights) {
        self.config = weights.config
        self.weights = weights
    }

    public convenience init(config: ModelConfig, seed: UInt64) throws {
        try config.validate()
        self.init(weights: try TransformerWeights(config: config, seed: seed))
    }

    /// Buffers for a batch shape, reused when the shape (and mode) repeats.
    public func state(batch: Int, seqLen: Int, keepActivations: Bool = false) -> ForwardState {
        if let s = cachedState, s.batch == batch, s.seqLen == seqLen, s.keepActivations == keepActivations {
            return s
        }
        let s = ForwardState(config: config, batch: batch, seqLen: seqLen, keepActivations: keepActivations)
        cachedState = s
        return s
    }

    /// Checks tokens against the vocabulary and the context length.
    func validate(tokens: [Int32], batch: Int, seqLen: Int) throws {
        guard batch > 0, seqLen > 0, tokens.count == batch * seqLen else {
            throw ModelError.badInput("\(tokens.count) tokens do not make \(batch) sequences of \(seqLen)")
        }
        guard seqLen <= config.nCtx else {
            throw ModelError.badInput("sequence length \(seqLen) exceeds the model's n_ctx \(config.nCtx)")
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= config.vocab }) {
            throw ModelError.badInput("token \(tokens[bad]) at position \(bad) is outside the vocabulary of \(config.vocab)")
        }
    }

    /// Runs the model on `batch` sequences of `seqLen` tokens (row-major [B, T]).
    ///
    /// Returns the state holding every buffer; `state.logits` [B·T, vocab] is valid only when
    /// the pass ran to the end. With hooks and `stopEarly`, the pass stops after the last
    /// hooked point. The state is reused by the next call of the same shape.
    @discardableResult
    public func forward(tokens: [Int32], batch: Int, seqLen: Int, hooks: Hooks? = nil, stopEarly: Bool = false,
                        keepActivations: Bool = false) throws -> ForwardState {
        try forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: hooks, stopEarly: stopEarly,
                    into: state(batch: batch, seqLen: seqLen, keepActivations: keepActivations))
    }

    /// The same, into buffers the caller owns (which then outlive later calls).
    @discardableResult
    public func forward(tokens: [Int32], batch: Int, seqLen: Int, hooks: Hooks? = nil, stopEarly: Bool = false,
                        into s: ForwardState) throws -> ForwardState {
        try validate(tokens: tokens, batch: batch, seqLen: seqLen)
        precondition(s.batch == batch && s.seqLen == seqLen, "forward state of shape \(s.batch)×\(s.seqLen) for \(batch)×\(seqLen)")
        let c = config, n = batch * seqLen, d = c.dModel
        let keepActivations = s.keepActivations
        for i in 0..<n { s.tokens[i] = tokens[i] }
        let stopAfter = stopEarly ? (hooks?.lastOrder ?? Int.max) : Int.max
        let tokenBuffer = UnsafeBufferPointer(s.tokens)
        func hook(_ point: HookPoint, _ tensor: Tensor) throws -> Bool {
            if let hooks, hooks.contains(point) {
                try hooks.run(point, tensor.reshaped([batch] + point.shape(config: c, seqLen: seqLen)),
                              batch: batch, seqLen: seqLen, tokens: tokenBuffer)
            }
            return point.order < stopAfter
        }

        // Embeddings.                                                   [N, d_model]
        for i in 0..<n {
            (s.embed.data + i * d).update(from: weights.W_E.data + Int(s.tokens[i]) * d, count: d)
        }
        guard try hook(.embed, s.embed) else { return s }
        if let pos = weights.W_pos {
            for i in 0..<n { (s.posEmbed.data + i * d).update(from: pos.data + (i % seqLen) * d, count: d) }
            guard try hook(.posEmbed, s.posEmbed) else { return s }
        }
        s.resid.copy(from: s.embed)
        if weights.W_pos != nil { Kernels.add(s.posEmbed.data, into: s.resid.data, count: n * d) }

        for l in 0..<c.nLayer {
            guard try runBlock(l, s, hooks, stopAfter: stopAfter) else { return s }
        }
        if keepActivations { s.finalResid.copy(from: s.resid) }

        // Final norm and unembedding.                                   [N, vocab]
        Kernels.normalize(c.norm, x: s.resid.data, out: s.lnFinalOut.data, rows: n, width: d,
                          gain: weights.lnFinalGain.data, bias: weights.lnFinalBias?.data, eps: Float(c.normEps),
                          mean: s.lnFinalMean.data, rstd: s.lnFinalRstd.data)
        guard try hook(.lnFinalNormalized, s.lnFinalOut) else { return s }
        if let W_U = weights.W_U {
            matmul(s.lnFinalOut, W_U, into: s.logits)
        } else {
            matmul(s.lnFinalOut, weights.W_E, into: s.logits, transposeB: true)
        }
        if let b_U = weights.b_U { Kernels.addBias(b_U.data, to: s.logits.data, rows: n, width: c.vocab) }
        if let table = weights.bigram {
            for i in 0..<n {
                let row = s.logits.data + i * c.vocab, add = table.data + Int(s.tokens[i]) * c.vocab
                for j in 0..<c.vocab { row[j] += add[j] }
            }
        }
        _ = try hook(.logits, s.logits)
        return s
    }

    /// Logits for one sequence, copied out: [T, vocab].
    public func logits(tokens: [Int32]) throws -> Tensor {
        let s = try forward(tokens: tokens, batch: 1, seqLen: tokens.count)
        return s.logits.copy()
    }
}
