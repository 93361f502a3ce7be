// The gradient of the mean next-token cross-entropy on a batch, with respect to every
// parameter and to chosen hook sites: one kept forward pass, one backward pass.

import Tensors
import Model

public struct LossGradient {
    public let loss: Double
    public let parameters: TransformerWeights
    /// d loss / d activation per requested site, [B, T, …] as the hook sees it.
    public let sites: [HookPoint: Tensor]

    /// `tokens` holds `batch` sequences of `seqLen + 1` tokens (inputs and their next tokens).
    public static func compute(model: Transformer, tokens: [Int32], batch: Int, seqLen: Int,
                               sites: [HookPoint] = []) throws -> LossGradient {
        let (inputs, targets) = CrossEntropy.split(tokens, batch: batch, seqLen: seqLen)
        let state = try model.forward(tokens: inputs, batch: batch, seqLen: seqLen, keepActivations: true)
        let dLogits = Tensor(zeros: state.logits.shape)
        let (loss, _) = CrossEntropy.loss(logits: state.logits, targets: targets, gradient: dLogits)
        let grads = try TransformerWeights(zerosLike: model.weights)
        let hooks = Hooks()
        var captured: [HookPoint: Tensor] = [:]
        for site in sites { hooks.add(site) { captured[site] = $0.activation.copy() } }
        try BackwardPass(config: model.config, batch: batch, seqLen: seqLen)
            .run(model: model, state: state, dLogits: dLogits, grads: grads, hooks: hooks)
        return LossGradient(loss: loss, parameters: grads, sites: captured)
    }
}

extension LossGradient {
    /// The backward pass of ℓ_target − ℓ_alternative at the last position of one prompt:
    /// `hooks` see the gradient at their sites (parameter gradients are not kept).
    public static func logitDifference(model: Transformer, tokens: [Int32], target: Int32, alternative: Int32,
                                       hooks: Hooks) throws {
        let c = model.config, t = tokens.count
        let state = ForwardState(config: c, batch: 1, seqLen: t, keepActivations: true)
        try model.forward(tokens: tokens, batch: 1, seqLen: t, into: state)
        let dLogits = Tensor(zeros: [t, c.vocab])
        dLogits.data[(t - 1) * c.vocab + Int(target)] = 1
        dLogits.data[(t - 1) * c.vocab + Int(alternative)] -= 1
        try BackwardPass(config: c, batch: 1, seqLen: t)
            .run(model: model, state: state, dLogits: dLogits, grads: try TransformerWeights(zerosLike: model.weights), hooks: hooks)
    }
}
