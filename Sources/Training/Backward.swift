// The backward pass: from d loss / d logits to the gradient of every parameter, through
// the activations a kept-mode forward pass left behind (ForwardState.keepActivations).
// Gradients can be read, or rewritten, at every hook point through a `Hooks` object
// whose functions receive d loss / d activation instead of the activation (called in
// reverse execution order). Parameter gradients accumulate: zero them between steps.

import Tensors
import Model

public final class BackwardPass {
    public let config: ModelConfig
    public let batch: Int
    public let seqLen: Int
    let dResid: Tensor       // [N, d_model]  d loss / d residual stream, flowing backwards
    let dLn: Tensor          // [N, d_model]  d loss / d norm output
    let dWrite: Tensor       // [N, d_model]  d loss / d block write (attn_out, mlp_out)
    let dQ, dK, dV, dZ: Tensor  // [N, n_head·d_head]
    let dHidden: Tensor      // [N, d_mlp]
    let ones: Tensor         // [N]  for bias gradients (column sums) as one product
    /// Per-thread [T, T] scratch for d pattern → d scores.
    let scratch: [Tensor]
    /// Per-thread partial sums of sink-logit gradients.
    let sinkPartials: [Tensor]
    /// [B, n_head, T, T], only when a hook asks for the pattern's gradient.
    private var dPattern: Tensor?

    func dPatternBuffer() -> Tensor {
        if let p = dPattern { return p }
        let p = Tensor(zeros: [batch, config.nHead, seqLen, seqLen])
        dPattern = p
        return p
    }

    public init(config c: ModelConfig, batch b: Int, seqLen t: Int) {
        config = c; batch = b; seqLen = t
        let n = b * t, d = c.dModel, a = c.attentionWidth
        dResid = Tensor(zeros: [n, d]); dLn = Tensor(zeros: [n, d]); dWrite = Tensor(zeros: [n, d])
        dQ = Tensor(zeros: [n, a]); dK = Tensor(zeros: [n, a]); dV = Tensor(zeros: [n, a]); dZ = Tensor(zeros: [n, a])
        dHidden = Tensor(zeros: [n, c.dMLP])
        ones = Tensor(shape: [n], repeating: 1)
        scratch = (0..<Parallel.threads).map { _ in Tensor(zeros: [t, t]) }
        sinkPartials = (0..<Parallel.threads).map { _ in Tensor(zeros: [c.nHead]) }
    }

    /// Accumulates into `grads` the gradient of the loss whose logit gradient is `dLogits`
    /// [N, vocab], for the forward pass held in `state` (run with keepActivations).
    public func run(model: Transformer, state s: ForwardState, dLogits: Tensor, grads: TransformerWeights,
                    hooks: Hooks? = nil) throws {
        let c = config, w = model.weights, n = batch * seqLen, d = c.dModel
        precondition(s.keepActivations && s.batch == batch && s.seqLen == seqLen, "backward needs a kept forward pass of the same shape")
        func hook(_ point: HookPoint, _ gradient: Tensor) throws {
            if let hooks, hooks.contains(point) {
                try hooks.run(point, gradient.reshaped([batch] + point.shape(config: c, seqLen: seqLen)),
                              batch: batch, seqLen: seqLen, tokens: UnsafeBufferPointer(s.tokens))
            }
        }
        try hook(.logits, dLogits)

        // Logits = ln_final · W_U + b_U + bigram[token].
        if let table = grads.bigram {
            for i in 0..<n {
                let row = table.data + Int(s.tokens[i]) * c.vocab, g = dLogits.data + i * c.vocab
                for j in 0..<c.vocab { row[j] += g[j] }
            }
        }
        addColumnSums(dLogits, into: grads.b_U)
        if let W_U = w.W_U {
            matmul(s.lnFinalOut, dLogits, into: grads.W_U!, transposeA: true, accumulate: true)
            matmul(dLogits, W_U, into: dLn, transposeB: true)
        } else {
            matmul(dLogits, s.lnFinalOut, into: grads.W_E, transposeA: true, accumulate: true)
            matmul(dLogits, w.W_E, into: dLn)
        }
        try hook(.lnFinalNormalized, dLn)
        dResid.fill(0)
        normBackward(dLn, x: s.finalResid, mean: s.lnFinalMean, rstd: s.lnFinalRstd, gain: w.lnFinalGain,
                     dGain: grads.lnFinalGain, dBias: grads.lnFinalBias)

        for l in stride(from: c.nLayer - 1, through: 0, by: -1) {
            try blockBackward(l, model: model, state: s, grads: grads, hooks: hooks, hook: hook)
        }

        // Embeddings: the stream entering block 0 is W_E[token] + W_pos[position].
        try hook(.embed, dResid)
        for i in 0..<n {
            let row = grads.W_E.data + Int(s.tokens[i]) * d, g = dResid.data + i * d
            for j in 0..<d { row[j] += g[j] }
        }
        if let dPos = grads.W_pos {
            try hook(.posEmbed, dResid)
            for i in 0..<n {
                let row = dPos.data + (i % seqLen) * d, g = dResid.data + i * d
                for j in 0..<d { row[j] += g[j] }
            }
        }
    }

    /// For y = x · W + b: dW += xᵀ · dy, db += Σ_rows dy, and dx = dy · Wᵀ (added to dx when
    /// `accumulate`, for an input that feeds several products).
    func linearBackward(x: Tensor, w: Tensor, dy: Tensor, dW: Tensor, db: Tensor?, dx: Tensor, accumulate: Bool = false) {
        matmul(x, dy, into: dW, transposeA: true, accumulate: true)
        addColumnSums(dy, into: db)
        matmul(dy, w, into: dx, transposeB: true, accumulate: accumulate)
    }

    /// bias += Σ over rows of `gradient` (as one product: onesᵀ · gradient).
    func addColumnSums(_ gradient: Tensor, into bias: Tensor?) {
        guard let bias else { return }
        let (rows, cols) = gradient.matrixShape
        BLAS.gemm(m: 1, n: cols, k: rows, a: ones.data, lda: rows, b: gradient.data, ldb: cols,
                  beta: 1, c: bias.data, ldc: cols)
    }

    /// dResid += d loss / d x for y = norm(x), given d loss / d y in `dy`; accumulates the gain
    /// and bias gradients. Rows are split across threads, each with its own partial sums.
    func normBackward(_ dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, gain: Tensor, dGain: Tensor, dBias: Tensor?) {
        let (n, width) = dy.matrixShape
        let workers = Parallel.threads
        let partial = Tensor(zeros: [workers, 2, width])
        let layer = config.norm == .layer
        Parallel.forChunks(n, minimumPerThread: 64) { worker, range in
            let pg = partial.data + worker * 2 * width, pb = pg + width
            for r in range {
                VectorOps.normBackward(x: x.data + r * width, dy: dy.data + r * width, gain: gain.data, mean: mean[r],
                                       rstd: rstd[r], width: width, layer: layer, dx: dResid.data + r * width,
                                       dGain: pg, dBias: dBias == nil ? nil : pb)
            }
        }
        for wkr in 0..<workers {
            let pg = partial.data + wkr * 2 * width
            for j in 0..<width {
                dGain[j] += pg[j]
                if let dBias { dBias[j] += pg[width + j] }
            }
        }
    }

    /// g ← g ⊙ mask where AbsTopK applied at `location` (straight-through on kept entries).
    func applyMask(_ location: AbsTopKLocation, _ acts: LayerActivations, _ g: Tensor) {
        guard let mask = acts.masks[location] else { return }
        precondition(mask.count == g.count)
        Parallel.forRange(g.count, minimumPerThread: 65_536) { range in
            for i in range { g.data[i] *= mask.data[i] }
        }
    }
}
