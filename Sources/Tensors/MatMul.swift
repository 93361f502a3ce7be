// Every matrix product in SparseBridge goes through cblas_sgemm (row-major), except the
// products by a weight-sparse model's matrices, which `matmul` sends to the sparse kernel.
//
// OpenBLAS runs single-threaded; large products are split into row (or column) blocks
// across our own threads instead. Two thread pools on two cores fight: OpenBLAS's idle
// workers spin in sched_yield while our elementwise kernels want the cores. One pool,
// ours, serves both.

import CLinAlg

public enum BLAS {
    /// C[m, n] = alpha · op(A) · op(B) + beta · C, with op(X) = Xᵀ when `transX`.
    /// Leading dimensions are the row strides of the stored (untransposed) matrices.
    /// `split: false` keeps the call on the current thread (for callers already running in parallel).
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true) {
        _ = BLASRuntime.singleThreadedBLAS
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C untouched when k = 0 only if beta = 1; make the empty sum explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        func call(_ rows: Range<Int>, _ cols: Range<Int>) {
            // Row block of op(A) and column block of op(B); element (i, j) of X is X[i·ld + j].
            let aBlock = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
            let bBlock = transB ? b + cols.lowerBound * ldb : b + cols.lowerBound
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(rows.count), Int32(cols.count), Int32(k), alpha, aBlock, Int32(lda), bBlock, Int32(ldb),
                        beta, c + rows.lowerBound * ldc + cols.lowerBound, Int32(ldc))
        }
        let threads = Parallel.threads
        if !split || threads == 1 || m * n * k < 1 << 21 {
            call(0..<m, 0..<n)
        } else if m >= n {
            Parallel.forRange(m, minimumPerThread: 16) { rows in call(rows, 0..<n) }
        } else {
            Parallel.forRange(n, minimumPerThread: 16) { cols in call(0..<m, cols) }
        }
    }
}

extension Tensor {
    /// The tensor as a matrix: all leading axes folded into rows.
    @inlinable public var matrixShape: (rows: Int, cols: Int) {
        let cols = shape.last ?? 1
        return (cols == 0 ? 0 : count / cols, cols)
    }
}

/// out = a · b (+ out when `accumulate`) (+ `bias` [n] on every row, added last), with a [.., k]
/// folded to rows and b [k, n]. `transposeB` multiplies by bᵀ instead (b stored [n, k]). A
/// weight b that carries a sparse form (a weight-sparse model's matrix, SparseMatrix.swift)
/// goes to the sparse kernel, which adds the bias as it writes; BLAS products get a bias pass.
public func matmul(_ a: Tensor, _ b: Tensor, into out: Tensor, transposeA: Bool = false,
                   transposeB: Bool = false, accumulate: Bool = false, alpha: Float = 1, bias: Tensor? = nil) {
    let (ar, ac) = a.matrixShape, (br, bc) = b.matrixShape, (or, oc) = out.matrixShape
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (kb, n) = transposeB ? (bc, br) : (br, bc)
    precondition(k == kb && or == m && oc == n,
                 "matmul shapes \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "") → \(out.shape)")
    precondition(bias == nil || bias!.count == n, "bias of \(bias!.shape) for \(n) columns")
    if let sparse = b.sparseForm, !transposeA, !transposeB {
        sparse.multiply(a.data, ldx: ac, n: m, alpha: alpha, beta: accumulate ? 1 : 0,
                        bias: bias.map { UnsafePointer($0.data) }, into: out.data, ldy: oc)
        return
    }
    BLAS.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
              a: a.data, lda: ac, b: b.data, ldb: bc, beta: accumulate ? 1 : 0, c: out.data, ldc: oc)
    if let bias { Kernels.addBias(bias.data, to: out.data, rows: m, width: n) }
}

/// A new tensor a · b.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    let m = transposeA ? a.matrixShape.cols : a.matrixShape.rows
    let n = transposeB ? b.matrixShape.rows : b.matrixShape.cols
    let out = Tensor(zeros: [m, n])
    matmul(a, b, into: out, transposeA: transposeA, transposeB: transposeB)
    return out
}
