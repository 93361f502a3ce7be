// One pre-norm transformer block, top to bottom, on a batch of N = B·T token rows:
//
//   x ─┬─ norm ─ attention ─ W_O ─(+)─┬─ norm ─ W_in ─ act ─ W_out ─(+)─→
//      └──────────────────────────────┘└──────────────────────────────┘
//
// At each hook point the live buffer is handed to the hooks (they may rewrite it);
// AbsTopK, where the config asks for it, is applied just before the hook, as in
// circuit_sparsity, so hooks see (and edit) the sparsified activation.

import Tensors

extension Transformer {
    /// Runs block `l` on `state.resid` in place. Returns false when the pass should stop
    /// (the last requested hook has fired).
    func runBlock(_ l: Int, _ state: ForwardState, _ hooks: Hooks?, stopAfter: Int) throws -> Bool {
        let c = config, w = weights.blocks[l], acts = state.layer(l)
        let b = state.batch, t = state.seqLen, n = b * t, d = c.dModel
        let resid = state.resid                                        // [N, d_model]
        // Calls the hooks at `point` on `tensor` seen as [B, T, …]; false means stop here.
        func hook(_ point: HookPoint, _ tensor: Tensor) throws -> Bool {
            if let hooks, hooks.contains(point) {
                let shaped = tensor.reshaped([b] + point.shape(config: c, seqLen: t))
                try hooks.run(point, shaped, batch: b, seqLen: t, tokens: UnsafeBufferPointer(state.tokens))
            }
            return point.order < stopAfter
        }
        func sparsify(_ location: AbsTopKLocation, _ x: Tensor) {
            let width = x.shape.last!
            guard let k = c.absTopK(location, width: width) else { return }
            let mask = state.keepActivations ? acts.maskBuffer(location, shape: [n, width]).data : nil
            Kernels.absTopK(x.data, rows: n, width: width, k: k, mask: mask)
        }

        guard try hook(.residPre(l), resid) else { return false }
        if state.keepActivations { acts.residPre.copy(from: resid) }

        // Attention input: norm, then AbsTopK.                         [N, d_model]
        Kernels.normalize(c.norm, x: resid.data, out: acts.ln1Out.data, rows: n, width: d, gain: w.ln1Gain.data,
                          bias: w.ln1Bias?.data, eps: Float(c.normEps), mean: acts.ln1Mean.data, rstd: acts.ln1Rstd.data)
        sparsify(.attnIn, acts.ln1Out)
        guard try hook(.ln1Normalized(l), acts.ln1Out) else { return false }

        // Queries, keys, values.                                        [N, n_head·d_head]
        for (out, W, bias, location, point) in [(acts.q, w.W_Q, w.b_Q, AbsTopKLocation.attnQ, HookPoint.q(l)),
                                                (acts.k, w.W_K, w.b_K, .attnK, .k(l)),
                                                (acts.v, w.W_V, w.b_V, .attnV, .v(l))] {
            matmul(acts.ln1Out, W, into: out, bias: bias)
            sparsify(location, out)
            guard try hook(point, out) else { return false }
        }

        // Attention pattern and weighted values.                        z: [N, n_head·d_head]
        let shape = Attention.Shape(batch: b, seqLen: t, heads: c.nHead, dHead: c.dHead)
        let sink = w.sink.map { UnsafePointer($0.data) }
        let patternHooked = hooks?.contains(.pattern(l)) ?? false
        if state.keepActivations || patternHooked || stopAfter == HookPoint.pattern(l).order {
            // Materialise every pattern [B, n_head, T, T] first, so hooks can read or edit it.
            let pattern = acts.patternBuffer(config: c, batch: b, seqLen: t)
            Attention.forEachPair(shape) { bi, h, _ in
                Attention.pattern(b: bi, h: h, shape: shape, q: acts.q.data, k: acts.k.data, sink: sink,
                                  into: pattern.data + (bi * c.nHead + h) * t * t)
            }
            guard try hook(.pattern(l), pattern) else { return false }
            // The pattern is causal: whatever a hook wrote above the diagonal is ignored.
            if patternHooked {
                Parallel.forRange(b * c.nHead) { pairs in
                    for pair in pairs {
                        for i in 0..<t { (pattern.data + (pair * t + i) * t + i + 1).update(repeating: 0, count: t - i - 1) }
                    }
                }
            }
            Attention.forEachPair(shape) { bi, h, _ in
                Attention.apply(b: bi, h: h, shape: shape, pattern: pattern.data + (bi * c.nHead + h) * t * t,
                                v: acts.v.data, z: acts.z.data)
            }
        } else {
            // The usual path: each pair's [T, T] pattern lives only in a per-thread scratch.
            // The scratch list was sized by the thread count when the state was made; never index past it.
            Attention.forEachPair(shape, maxWorkers: state.attentionScratch.count) { bi, h, worker in
                let scratch = state.attentionScratch[worker].data
                Attention.pattern(b: bi, h: h, shape: shape, q: acts.q.data, k: acts.k.data, sink: sink, into: scratch)
                Attention.apply(b: bi, h: h, shape: shape, pattern: scratch, v: acts.v.data, z: acts.z.data)
            }
        }
        guard try hook(.z(l), acts.z) else { return false }

        // Attention output, written into the residual stream.           [N, d_model]
        matmul(acts.z, w.W_O, into: acts.attnOut, bias: w.b_O)
        sparsify(.attnOut, acts.attnOut)
        guard try hook(.attnOut(l), acts.attnOut) else { return false }
        Kernels.add(acts.attnOut.data, into: resid.data, count: n * d)
        sparsify(.residPostAttn, resid)
        guard try hook(.residMid(l), resid) else { return false }
        if state.keepActivations { acts.residMid.copy(from: resid) }

        // MLP input: norm, then AbsTopK.                                [N, d_model]
        Kernels.normalize(c.norm, x: resid.data, out: acts.ln2Out.data, rows: n, width: d, gain: w.ln2Gain.data,
                          bias: w.ln2Bias?.data, eps: Float(c.normEps), mean: acts.ln2Mean.data, rstd: acts.ln2Rstd.data)
        sparsify(.mlpIn, acts.ln2Out)
        guard try hook(.ln2Normalized(l), acts.ln2Out) else { return false }

        // Both MLP matrices sparse and nobody to see the neurons (no hook on them, no AbsTopK,
        // not kept for a backward pass): one fused kernel, whose [N, d_mlp] activations never
        // leave a per-thread buffer (sb_csc_mlp). At 1/64 that traffic, not the arithmetic, is
        // most of the MLP's time. The result is the same floats as the steps below.
        if !state.keepActivations, let up = w.W_in.sparseForm, let down = w.W_out.sparseForm,
           c.absTopK(.mlpNeuron, width: c.dMLP) == nil, HookPoint.mlpPost(l).order < stopAfter,
           !(hooks.map { $0.contains(.mlpPre(l)) || $0.contains(.mlpPost(l)) } ?? false) {
            SparseMatrix.mlp(acts.ln2Out.data, ldx: d, n: n, up: up, upBias: w.b_in.map { UnsafePointer($0.data) },
                             activation: c.activation, down: down, downBias: w.b_out.map { UnsafePointer($0.data) },
                             into: acts.mlpOut.data, ldy: d)                  // [N, d_model]
            return try mlpOutput(l, acts, resid, hook, sparsify)
        }

        // Neurons.                                                      [N, d_mlp]
        matmul(acts.ln2Out, w.W_in, into: acts.mlpPre, bias: w.b_in)
        guard try hook(.mlpPre(l), acts.mlpPre) else { return false }
        acts.mlpPost.copy(from: acts.mlpPre)
        Kernels.activate(c.activation, acts.mlpPost.data, count: n * c.dMLP)
        sparsify(.mlpNeuron, acts.mlpPost)
        guard try hook(.mlpPost(l), acts.mlpPost) else { return false }

        // MLP output.                                                   [N, d_model]
        matmul(acts.mlpPost, w.W_out, into: acts.mlpOut, bias: w.b_out)
        return try mlpOutput(l, acts, resid, hook, sparsify)
    }

    /// The rest of block `l` once `acts.mlpOut` holds h · W_out + b_out: into the residual stream.
    private func mlpOutput(_ l: Int, _ acts: LayerActivations, _ resid: Tensor, _ hook: (HookPoint, Tensor) throws -> Bool,
                           _ sparsify: (AbsTopKLocation, Tensor) -> Void) throws -> Bool {
        let (n, d) = acts.mlpOut.matrixShape
        sparsify(.mlpOut, acts.mlpOut)
        guard try hook(.mlpOut(l), acts.mlpOut) else { return false }
        Kernels.add(acts.mlpOut.data, into: resid.data, count: n * d)
        sparsify(.residPostMLP, resid)
        return try hook(.residPost(l), resid)
    }
}
