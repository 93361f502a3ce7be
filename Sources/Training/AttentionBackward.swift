// Attention backwards for every (sequence, head) pair, with the pattern P kept by the
// forward pass. For pair (b, h), with Z = P V and S = Q Kᵀ / √d_head:
//   dP = dZ Vᵀ,  dV = Pᵀ dZ
//   dS[i, j] = P[i, j] (dP[i, j] − ρ_i),  ρ_i = Σ_j P[i, j] dP[i, j]   (zero above the diagonal)
//   dQ = dS K / √d_head,  dK = dSᵀ Q / √d_head
//   d sink_h = −Σ_i p_sink[i] ρ_i,  p_sink[i] = 1 − Σ_j P[i, j]
// (the sink's value is zero, so its own share of dP is zero).

import Tensors
import Model

extension BackwardPass {
    /// `patternHook`, when given, receives d loss / d pattern [B, n_head, T, T] (and may edit it)
    /// before it flows on; all of it is then materialised at once.
    func attentionBackward(acts: LayerActivations, sink: Tensor?, dSink: Tensor?,
                           patternHook: ((Tensor) throws -> Void)?) throws {
        let c = config, t = seqLen, heads = c.nHead, dh = c.dHead, width = c.attentionWidth
        guard let pattern = acts.pattern else { preconditionFailure("the kept forward pass has no attention pattern") }
        let scale = 1 / Float(dh).squareRoot()
        let pairs = batch * heads
        let workers = min(scratch.count, sinkPartials.count)
        for p in sinkPartials { p.fill(0) }

        // Products go by blocks of query rows, each against the keys it can see (as forward).
        let blocks = Attention.causalBlocks(t)
        func patternGradient(_ pair: Int, into dP: UnsafeMutablePointer<Float>) {
            let offset = (pair / heads) * t * width + (pair % heads) * dh
            // dP = dZ Vᵀ                                                      [T, T]
            for rows in blocks {
                BLAS.gemm(transB: true, m: rows.count, n: rows.upperBound, k: dh, a: dZ.data + offset + rows.lowerBound * width,
                          lda: width, b: acts.v.data + offset, ldb: width, c: dP + rows.lowerBound * t, ldc: t, split: false)
                for i in rows { (dP + i * t + i + 1).update(repeating: 0, count: t - i - 1) }
            }
        }
        func rest(_ pair: Int, dP dS: UnsafeMutablePointer<Float>, worker: Int) {
            let h = pair % heads, offset = (pair / heads) * t * width + h * dh
            let P = pattern.data + pair * t * t
            // dV = Pᵀ dZ, summed over query blocks                             [T, d_head]
            for i in 0..<t {
                (dV.data + offset + i * width).update(repeating: 0, count: dh)
                (dK.data + offset + i * width).update(repeating: 0, count: dh)
            }
            for rows in blocks {
                BLAS.gemm(transA: true, m: rows.upperBound, n: dh, k: rows.count, a: P + rows.lowerBound * t, lda: t,
                          b: dZ.data + offset + rows.lowerBound * width, ldb: width, beta: 1,
                          c: dV.data + offset, ldc: width, split: false)
            }
            // dS = P ⊙ (dP − ρ), row by row over the visible keys.
            for i in 0..<t {
                let row = dS + i * t, prow = P + i * t
                let rho = VectorOps.softmaxBackward(prow, row, i + 1)
                if sink != nil { sinkPartials[worker][h] -= (1 - VectorOps.sum(prow, i + 1)) * rho }
                (row + i + 1).update(repeating: 0, count: t - i - 1)
            }
            // dQ = dS K / √d_head,  dK = dSᵀ Q / √d_head                     [T, d_head]
            for rows in blocks {
                BLAS.gemm(m: rows.count, n: dh, k: rows.upperBound, alpha: scale, a: dS + rows.lowerBound * t, lda: t,
                          b: acts.k.data + offset, ldb: width, c: dQ.data + offset + rows.lowerBound * width, ldc: width,
                          split: false)
                BLAS.gemm(transA: true, m: rows.upperBound, n: dh, k: rows.count, alpha: scale, a: dS + rows.lowerBound * t,
                          lda: t, b: acts.q.data + offset + rows.lowerBound * width, ldb: width, beta: 1,
                          c: dK.data + offset, ldc: width, split: false)
            }
        }

        if let patternHook {
            let full = dPatternBuffer()
            Parallel.forChunks(pairs, maxWorkers: workers) { _, range in
                for pair in range { patternGradient(pair, into: full.data + pair * t * t) }
            }
            try patternHook(full)
            Parallel.forChunks(pairs, maxWorkers: workers) { worker, range in
                for pair in range { rest(pair, dP: full.data + pair * t * t, worker: worker) }
            }
        } else {
            Parallel.forChunks(pairs, maxWorkers: workers) { worker, range in
                let dP = scratch[worker].data
                for pair in range {
                    patternGradient(pair, into: dP)
                    rest(pair, dP: dP, worker: worker)
                }
            }
        }
        if let dSink {
            for p in sinkPartials { for h in 0..<heads { dSink[h] += p[h] } }
        }
    }
}
