// One block backwards, bottom to top: the mirror of Model/Block.swift.
//
// On entry dResid = d loss / d resid_post(l); on exit dResid = d loss / d resid_pre(l).
// Every product Y = X · W + b gives dW += Xᵀ · dY, db += Σ_rows dY, dX = dY · Wᵀ.

import Tensors
import Model

extension BackwardPass {
    func blockBackward(_ l: Int, model: Transformer, state s: ForwardState, grads: TransformerWeights,
                       hooks: Hooks?, hook: (HookPoint, Tensor) throws -> Void) throws {
        let c = config, w = model.weights.blocks[l], g = grads.blocks[l], acts = s.layer(l)
        let n = batch * seqLen, f = c.dMLP

        try hook(.residPost(l), dResid)
        applyMask(.residPostMLP, acts, dResid)

        // MLP output: mlp_out = post · W_out + b_out, added to the stream.     [N, d_model]
        dWrite.copy(from: dResid)
        try hook(.mlpOut(l), dWrite)
        applyMask(.mlpOut, acts, dWrite)
        linearBackward(x: acts.mlpPost, w: w.W_out, dy: dWrite, dW: g.W_out, db: g.b_out, dx: dHidden)  // dx [N, d_mlp]
        try hook(.mlpPost(l), dHidden)
        applyMask(.mlpNeuron, acts, dHidden)

        // Neurons: post = act(pre), pre = ln2 · W_in + b_in.
        VectorOps.activationBackward(c.activation, x: acts.mlpPre.data, gradient: dHidden.data, count: n * f)
        try hook(.mlpPre(l), dHidden)
        linearBackward(x: acts.ln2Out, w: w.W_in, dy: dHidden, dW: g.W_in, db: g.b_in, dx: dLn)        // dx [N, d_model]
        try hook(.ln2Normalized(l), dLn)
        applyMask(.mlpIn, acts, dLn)
        normBackward(dLn, x: acts.residMid, mean: acts.ln2Mean, rstd: acts.ln2Rstd, gain: w.ln2Gain,
                     dGain: g.ln2Gain, dBias: g.ln2Bias)

        try hook(.residMid(l), dResid)
        applyMask(.residPostAttn, acts, dResid)

        // Attention output: attn_out = z · W_O + b_O, added to the stream.     [N, d_model]
        dWrite.copy(from: dResid)
        try hook(.attnOut(l), dWrite)
        applyMask(.attnOut, acts, dWrite)
        linearBackward(x: acts.z, w: w.W_O, dy: dWrite, dW: g.W_O, db: g.b_O, dx: dZ)                  // dx [N, n_head·d_head]
        try hook(.z(l), dZ)

        // Through the attention pattern to queries, keys and values.
        try withoutActuallyEscaping(hook) { hook in
            let patternHook: ((Tensor) throws -> Void)? = (hooks?.contains(.pattern(l)) ?? false)
                ? { try hook(.pattern(l), $0) } : nil
            try attentionBackward(acts: acts, sink: w.sink, dSink: g.sink, patternHook: patternHook)
        }

        // q, k, v = ln1 · W + b.
        dLn.fill(0)
        for (dOut, W, dW, dB, location, point) in [(dQ, w.W_Q, g.W_Q, g.b_Q, AbsTopKLocation.attnQ, HookPoint.q(l)),
                                                   (dK, w.W_K, g.W_K, g.b_K, .attnK, .k(l)),
                                                   (dV, w.W_V, g.W_V, g.b_V, .attnV, .v(l))] {
            try hook(point, dOut)
            applyMask(location, acts, dOut)
            linearBackward(x: acts.ln1Out, w: W, dy: dOut, dW: dW, db: dB, dx: dLn, accumulate: true)
        }
        try hook(.ln1Normalized(l), dLn)
        applyMask(.attnIn, acts, dLn)
        normBackward(dLn, x: acts.residPre, mean: acts.ln1Mean, rstd: acts.ln1Rstd, gain: w.ln1Gain,
                     dGain: g.ln1Gain, dBias: g.ln1Bias)
        try hook(.residPre(l), dResid)
    }
}
