// Causal self-attention for every (sequence, head) pair of a batch.
//
// For sequence b and head h, with Q, K, V the head's [T, d_head] slices:
//   S = Q Kᵀ / √d_head                     [T, T]
//   P[i, j] = exp(S[i, j]) / (Σ_{j' ≤ i} exp(S[i, j']) + exp(sink_h))   for j ≤ i, else 0
//   Z = P V                                [T, d_head]  (written into z's columns)
// The sink term is present only with an attention sink: a key with zero value whose
// logit is the learned sink_h, so a row of P may sum to less than one.
// The products go by blocks of query rows, each against only the keys it can see, which
// skips most of the masked half. Pairs are split across threads; each pair's products
// run on its own thread.

import Tensors

public enum Attention {
    struct Shape {
        let batch, seqLen, heads, dHead: Int
        var width: Int { heads * dHead }  // row stride of q, k, v, z
    }

    /// Query-row blocks [r0, r1) of a causal product: block i needs keys 0 ..< r1 only.
    public static func causalBlocks(_ t: Int, size: Int = 64) -> [Range<Int>] {
        stride(from: 0, to: t, by: size).map { $0..<min($0 + size, t) }
    }

    /// P for pair (b, h) into `p` [T, T].
    static func pattern(b: Int, h: Int, shape s: Shape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                        sink: UnsafePointer<Float>?, into p: UnsafeMutablePointer<Float>) {
        let t = s.seqLen
        let qbh = q + b * t * s.width + h * s.dHead
        let kbh = k + b * t * s.width + h * s.dHead
        for rows in causalBlocks(t) {
            BLAS.gemm(transB: true, m: rows.count, n: rows.upperBound, k: s.dHead, alpha: 1 / Float(s.dHead).squareRoot(),
                      a: qbh + rows.lowerBound * s.width, lda: s.width, b: kbh, ldb: s.width,
                      c: p + rows.lowerBound * t, ldc: t, split: false)
        }
        let sinkLogit = sink?[h]
        for i in 0..<t {
            let row = p + i * t, n = i + 1  // keys 0 ... i are visible
            let m = Swift.max(VectorOps.max(row, n), sinkLogit ?? -Float.infinity)
            let sum = VectorOps.expShiftedSum(row, n, shift: m) + (sinkLogit.map { fastExp($0 - m) } ?? 0)
            VectorOps.scale(row, n, by: 1 / sum)
            (row + n).update(repeating: 0, count: t - n)
        }
    }

    /// Z for pair (b, h) = P V, into z's columns of head h.
    static func apply(b: Int, h: Int, shape s: Shape, pattern p: UnsafePointer<Float>, v: UnsafePointer<Float>,
                      z: UnsafeMutablePointer<Float>) {
        let t = s.seqLen
        let offset = b * t * s.width + h * s.dHead
        for rows in causalBlocks(t) {
            BLAS.gemm(m: rows.count, n: s.dHead, k: rows.upperBound, a: p + rows.lowerBound * t, lda: t,
                      b: v + offset, ldb: s.width, c: z + offset + rows.lowerBound * s.width, ldc: s.width, split: false)
        }
    }

    /// Runs `body(b, h, threadIndex)` for every pair, split across threads.
    /// `maxWorkers` bounds the thread index (the number of per-thread scratch buffers).
    static func forEachPair(_ s: Shape, maxWorkers: Int = .max, _ body: (Int, Int, Int) -> Void) {
        let pairs = s.batch * s.heads
        Parallel.forChunks(pairs, maxWorkers: maxWorkers) { worker, range in
            for i in range { body(i / s.heads, i % s.heads, worker) }
        }
    }
}
