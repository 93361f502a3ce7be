// BLAS.gemm and matmul against a naive Float64 triple loop.

import Testing
import Tensors

/// Deterministic test data: normal values from a seeded stream.
func randomArray(_ count: Int, seed: UInt64, std: Float = 1) -> [Float] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { _ in std * rng.nextNormal() }
}

/// C = alpha · op(A) · op(B) + beta · C in Float64, with the same stride conventions as BLAS.gemm.
func referenceGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                   a: [Float], lda: Int, b: [Float], ldb: Int, beta: Double, c: [Float], ldc: Int) -> [Double] {
    var out = c.map(Double.init)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += Double(av) * Double(bv)
            }
            out[i * ldc + j] = alpha * s + beta * Double(c[i * ldc + j])
        }
    }
    return out
}

/// Largest |x − ref| / (1 + |ref|).
func maxScaledError(_ x: [Float], _ ref: [Double]) -> Double {
    precondition(x.count == ref.count)
    var worst = 0.0
    for i in 0..<x.count { worst = max(worst, abs(Double(x[i]) - ref[i]) / (1 + abs(ref[i]))) }
    return worst
}

struct GemmCase: CustomTestStringConvertible, Sendable {
    let transA: Bool, transB: Bool, alpha: Float, beta: Float
    var testDescription: String { "transA \(transA) transB \(transB) alpha \(alpha) beta \(beta)" }
}

let gemmCases: [GemmCase] = [false, true].flatMap { ta in
    [false, true].flatMap { tb in
        [GemmCase(transA: ta, transB: tb, alpha: 1, beta: 0), GemmCase(transA: ta, transB: tb, alpha: -0.5, beta: 1),
         GemmCase(transA: ta, transB: tb, alpha: 2, beta: 0.25)]
    }
}

@Suite("BLAS and matmul")
struct BLASTests {
    @Test("gemm with padded leading dimensions matches a Float64 loop", arguments: gemmCases)
    func gemm(_ g: GemmCase) {
        let m = 13, n = 17, k = 29
        // Stored shapes: A is [m, k] (or [k, m] when transposed); padding makes lda > columns.
        let (aRows, aCols) = g.transA ? (k, m) : (m, k)
        let (bRows, bCols) = g.transB ? (n, k) : (k, n)
        let lda = aCols + 3, ldb = bCols + 5, ldc = n + 2
        let a = randomArray(aRows * lda, seed: 1), b = randomArray(bRows * ldb, seed: 2)
        var c = randomArray(m * ldc, seed: 3)
        let expected = referenceGemm(transA: g.transA, transB: g.transB, m: m, n: n, k: k, alpha: Double(g.alpha),
                                     a: a, lda: lda, b: b, ldb: ldb, beta: Double(g.beta), c: c, ldc: ldc)
        let before = c
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: g.transA, transB: g.transB, m: m, n: n, k: k, alpha: g.alpha,
                              a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                              beta: g.beta, c: cp.baseAddress!, ldc: ldc)
                }
            }
        }
        // Inside the m × n window: the product. Padding columns of C: untouched.
        var window: [Float] = [], windowRef: [Double] = []
        for i in 0..<m {
            for j in 0..<ldc {
                if j < n { window.append(c[i * ldc + j]); windowRef.append(expected[i * ldc + j]) }
                else { #expect(c[i * ldc + j] == before[i * ldc + j], "padding C[\(i), \(j)] was written") }
            }
        }
        #expect(maxScaledError(window, windowRef) < 2e-6)
    }

    @Test("large products split across threads match the Float64 loop",
          arguments: [(160, 130, 101), (100, 170, 130)], [false, true])
    func largeGemm(shape: (Int, Int, Int), transA: Bool) {
        let (m, n, k) = shape
        #expect(m * n * k >= 1 << 21)  // large enough to be split
        for transB in [false, true] {
            let (aRows, aCols) = transA ? (k, m) : (m, k)
            let (bRows, bCols) = transB ? (n, k) : (k, n)
            let a = randomArray(aRows * aCols, seed: 4), b = randomArray(bRows * bCols, seed: 5)
            var c = randomArray(m * n, seed: 6)
            let expected = referenceGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5,
                                         a: a, lda: aCols, b: b, ldb: bCols, beta: 1, c: c, ldc: n)
            withThreadCountLock {
                let saved = Parallel.threads
                defer { Parallel.threads = saved }
                Parallel.threads = 3
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: aCols,
                              b: bp.baseAddress!, ldb: bCols, beta: 1, c: cp.baseAddress!, ldc: n)
                } } }
            }
            #expect(maxScaledError(c, expected) < 1e-5, "transB \(transB)")
        }
    }

    @Test("gemm with k = 0 scales C by beta")
    func gemmEmptySum() {
        var c: [Float] = [1, 2, 3, 4, 5, 6]
        let dummy: [Float] = [7]
        dummy.withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(m: 2, n: 3, k: 0, a: p.baseAddress!, lda: 1, b: p.baseAddress!, ldb: 3, beta: 0.5,
                          c: cp.baseAddress!, ldc: 3)
            }
        }
        #expect(c == [0.5, 1, 1.5, 2, 2.5, 3])
    }

    @Test("matmul: every transpose combination, fresh and accumulated", arguments: [false, true], [false, true])
    func matmulTensors(transposeA: Bool, transposeB: Bool) {
        let m = 9, k = 21, n = 11
        let aShape = transposeA ? [k, m] : [m, k], bShape = transposeB ? [n, k] : [k, n]
        let aVals = randomArray(m * k, seed: 10), bVals = randomArray(k * n, seed: 11), cVals = randomArray(m * n, seed: 12)
        let a = Tensor(shape: aShape, values: aVals), b = Tensor(shape: bShape, values: bVals)

        // A fresh product.
        let fresh = matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(fresh.shape == [m, n])
        let ref = referenceGemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 1,
                                a: aVals, lda: aShape[1], b: bVals, ldb: bShape[1], beta: 0,
                                c: [Float](repeating: 0, count: m * n), ldc: n)
        #expect(maxScaledError(fresh.toArray(), ref) < 2e-6)

        // Accumulated into existing values, scaled by alpha.
        let out = Tensor(shape: [m, n], values: cVals)
        matmul(a, b, into: out, transposeA: transposeA, transposeB: transposeB, accumulate: true, alpha: 0.75)
        let refAcc = referenceGemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 0.75,
                                   a: aVals, lda: aShape[1], b: bVals, ldb: bShape[1], beta: 1, c: cVals, ldc: n)
        #expect(maxScaledError(out.toArray(), refAcc) < 2e-6)

        // Without accumulate the old contents are overwritten, not added.
        let overwritten = Tensor(shape: [m, n], values: cVals)
        matmul(a, b, into: overwritten, transposeA: transposeA, transposeB: transposeB)
        #expect(maxScaledError(overwritten.toArray(), ref) < 2e-6)
    }

    @Test("matmul folds leading axes of a rank-3 left operand into rows")
    func matmulFoldsLeadingAxes() {
        let aVals = randomArray(2 * 3 * 4, seed: 20), bVals = randomArray(4 * 5, seed: 21)
        let a = Tensor(shape: [2, 3, 4], values: aVals), b = Tensor(shape: [4, 5], values: bVals)
        let out = Tensor(zeros: [2, 3, 5])
        matmul(a, b, into: out)
        let ref = referenceGemm(transA: false, transB: false, m: 6, n: 5, k: 4, alpha: 1, a: aVals, lda: 4,
                                b: bVals, ldb: 5, beta: 0, c: [Float](repeating: 0, count: 30), ldc: 5)
        #expect(maxScaledError(out.toArray(), ref) < 1e-6)
    }

    @Test("a small product checked by hand")
    func handProduct() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], values: [7, 8, 9, 10, 11, 12])
        #expect(matmul(a, b).toArray() == [58, 64, 139, 154])
        #expect(matmul(a, a, transposeB: true).toArray() == [14, 32, 32, 77])
        #expect(matmul(a, a, transposeA: true).toArray() == [17, 22, 27, 22, 29, 36, 27, 36, 45])
    }
}
