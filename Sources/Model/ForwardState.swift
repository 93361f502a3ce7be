// Buffers for one forward pass over a batch of B sequences of length T (N = B·T rows),
// allocated once and reused batch after batch. In inference one set of per-layer buffers
// serves every layer; with `keepActivations` (training, DePass) each layer keeps its own,
// so that everything the backward pass needs is still there afterwards.

import Tensors

public final class LayerActivations {
    public let residPre: Tensor     // [N, d_model]  copy of the stream entering the block (kept mode)
    public let ln1Out: Tensor       // [N, d_model]
    public let ln1Mean: Tensor      // [N]  (LayerNorm only)
    public let ln1Rstd: Tensor      // [N]  1/σ or 1/rms
    public let q, k, v: Tensor      // [N, n_head·d_head]
    public let z: Tensor            // [N, n_head·d_head]
    public let attnOut: Tensor      // [N, d_model]
    public let residMid: Tensor     // [N, d_model]  copy (kept mode)
    public let ln2Out: Tensor       // [N, d_model]
    public let ln2Mean, ln2Rstd: Tensor
    public let mlpPre: Tensor       // [N, d_mlp]
    public let mlpPost: Tensor      // [N, d_mlp]
    public let mlpOut: Tensor       // [N, d_model]
    /// [B, n_head, T, T], allocated on first need (kept mode, or a pattern hook).
    public private(set) var pattern: Tensor?
    /// AbsTopK keep masks (1 = kept) per location, recorded in kept mode for the backward pass.
    public private(set) var masks: [AbsTopKLocation: Tensor] = [:]

    init(config c: ModelConfig, batch b: Int, seqLen t: Int, kept: Bool) {
        let n = b * t, d = c.dModel, a = c.attentionWidth
        residPre = Tensor(zeros: kept ? [n, d] : [0, d])
        residMid = Tensor(zeros: kept ? [n, d] : [0, d])
        ln1Out = Tensor(zeros: [n, d]); ln1Mean = Tensor(zeros: [n]); ln1Rstd = Tensor(zeros: [n])
        q = Tensor(zeros: [n, a]); k = Tensor(zeros: [n, a]); v = Tensor(zeros: [n, a]); z = Tensor(zeros: [n, a])
        attnOut = Tensor(zeros: [n, d])
        ln2Out = Tensor(zeros: [n, d]); ln2Mean = Tensor(zeros: [n]); ln2Rstd = Tensor(zeros: [n])
        mlpPre = Tensor(zeros: [n, c.dMLP]); mlpPost = Tensor(zeros: [n, c.dMLP])
        mlpOut = Tensor(zeros: [n, d])
    }

    func maskBuffer(_ location: AbsTopKLocation, shape: [Int]) -> Tensor {
        if let m = masks[location] { return m }
        let m = Tensor(zeros: shape)
        masks[location] = m
        return m
    }

    func patternBuffer(config c: ModelConfig, batch b: Int, seqLen t: Int) -> Tensor {
        if let p = pattern { return p }
        let p = Tensor(zeros: [b, c.nHead, t, t])
        pattern = p
        return p
    }
}

public final class ForwardState {
    public let batch: Int
    public let seqLen: Int
    public let keepActivations: Bool
    public let tokens: UnsafeMutableBufferPointer<Int32>  // [N]
    public let embed: Tensor        // [N, d_model]  token embeddings
    public let posEmbed: Tensor     // [N, d_model]  positional embeddings (zeros when positional = none)
    public let resid: Tensor        // [N, d_model]  the residual stream, updated in place
    public let layers: [LayerActivations]
    public let finalResid: Tensor   // [N, d_model]  copy of the stream before the final norm (kept mode)
    public let lnFinalOut: Tensor   // [N, d_model]
    public let lnFinalMean, lnFinalRstd: Tensor
    public let logits: Tensor       // [N, vocab]
    /// Per-thread [T, T] score matrices for attention when the pattern is not kept.
    let attentionScratch: [Tensor]

    public init(config c: ModelConfig, batch b: Int, seqLen t: Int, keepActivations kept: Bool) {
        batch = b; seqLen = t; keepActivations = kept
        let n = b * t, d = c.dModel
        tokens = .allocate(capacity: n)
        tokens.initialize(repeating: 0)
        embed = Tensor(zeros: [n, d]); posEmbed = Tensor(zeros: [n, d]); resid = Tensor(zeros: [n, d])
        let one = { LayerActivations(config: c, batch: b, seqLen: t, kept: kept) }
        layers = kept ? (0..<c.nLayer).map { _ in one() } : [one()]
        finalResid = Tensor(zeros: kept ? [n, d] : [0, d])
        lnFinalOut = Tensor(zeros: [n, d]); lnFinalMean = Tensor(zeros: [n]); lnFinalRstd = Tensor(zeros: [n])
        logits = Tensor(zeros: [n, c.vocab])
        attentionScratch = (0..<Parallel.threads).map { _ in Tensor(zeros: [t, t]) }
    }

    deinit { tokens.deallocate() }

    /// The buffers of layer `l`.
    public func layer(_ l: Int) -> LayerActivations { keepActivations ? layers[l] : layers[0] }
}
