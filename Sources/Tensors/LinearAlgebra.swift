// Float64 linear algebra for bridge fitting: products (cblas_dgemm) and the symmetric
// eigendecomposition (LAPACKE_dsyevd). Matrices are row-major [Double] arrays.

import CLinAlg
import Support

public enum LinearAlgebra {
    /// C[m, n] = alpha · op(A) · op(B) + beta · C (row-major, Float64).
    public static func dgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Double = 1,
                             a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                             beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int) {
        _ = BLASRuntime.singleThreadedBLAS
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public struct EigenError: UserFacingError {
        public let info: Int32
        public var description: String { "the symmetric eigendecomposition failed (LAPACK info \(info))" }
    }

    /// Eigenvalues (ascending) and eigenvectors (the columns of V, row-major [n, n]) of a
    /// symmetric n × n matrix.
    public static func symmetricEigen(_ matrix: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var w = [Double](repeating: 0, count: n)
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
        guard info == 0 else { throw EigenError(info: info) }
        return (w, a)
    }
}
