// The CSC sparse form and its kernel against a Float64 reference.

import Foundation
import Testing
import Tensors

/// A [rows, cols] matrix with about `density` of its entries nonzero (N(0, 1)), the rest 0.
func sparseRandomMatrix(rows: Int, cols: Int, density: Double, seed: UInt64) -> Tensor {
    var rng = SeededRandom(seed: seed)
    let w = Tensor(zeros: [rows, cols])
    for i in 0..<w.count where Double(rng.nextInt(1 << 20)) < density * Double(1 << 20) { w[i] = rng.nextNormal() }
    return w
}

@Suite("Sparse matrices")
struct SparseMatrixTests {
    @Test("the CSC form holds every nonzero once, in row order, padded to four per column")
    func layout() {
        let w = sparseRandomMatrix(rows: 23, cols: 17, density: 0.2, seed: 1)
        let s = SparseMatrix(dense: w)
        var seen = 0
        for j in 0..<17 {
            // Rebuild column j from the entries the kernel will read (padding has weight 0).
            var column = [Float](repeating: 0, count: 23)
            let entries = (0..<w.count).filter { $0 % 17 == j && w[$0] != 0 }.count
            seen += entries
            #expect(s.storedEntries(column: j) % 4 == 0)
            #expect(s.storedEntries(column: j) - entries < 4)
            for (row, value) in s.entries(column: j) { column[row] += value }
            #expect(column == (0..<23).map { w[$0 * 17 + j] }, "column \(j)")
        }
        #expect(s.nonzeros == seen)
        #expect(abs(s.density - Double(seen) / Double(23 * 17)) < 1e-12)
    }

    @Test("y = alpha·x·W + beta·y (+ bias) matches Float64, at several densities and tile tails",
          arguments: [(1, 5, 3), (37, 19, 33), (70, 40, 17), (200, 64, 48)], [0.5, 1.0 / 16, 1.0 / 64, 0])
    func product(shape: (Int, Int, Int), density: Double) {
        let (n, k, m) = shape
        let w = sparseRandomMatrix(rows: k, cols: m, density: density, seed: UInt64(n * 1000 + k))
        let s = SparseMatrix(dense: w)
        let x = Tensor(shape: [n, k], values: randomArray(n * k, seed: 5))
        let start = randomArray(n * m, seed: 6)
        let bias = Tensor(shape: [m], values: randomArray(m, seed: 13))
        for (alpha, beta, withBias) in [(Float(1), Float(0), false), (1.5, 1, false), (-0.5, 0.25, false),
                                        (1, 0, true), (0.5, 1, true)] {
            let y = Tensor(shape: [n, m], values: beta == 0 ? [Float](repeating: .nan, count: n * m) : start)
            s.multiply(x.data, ldx: k, n: n, alpha: alpha, beta: beta, bias: withBias ? UnsafePointer(bias.data) : nil,
                       into: y.data, ldy: m)
            var worst = 0.0
            for r in 0..<n {
                for j in 0..<m {
                    var sum = 0.0
                    for i in 0..<k { sum += Double(x[r * k + i]) * Double(w[i * m + j]) }
                    let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(start[r * m + j]))
                        + (withBias ? Double(bias[j]) : 0)
                    worst = max(worst, abs(Double(y[r * m + j]) - expected))
                }
            }
            #expect(worst < 1e-5, "alpha \(alpha) beta \(beta) bias \(withBias): max error \(worst)")
        }
    }

    @Test("matmul takes the sparse form of a weight and agrees with BLAS; dense tensors stay on BLAS")
    func dispatch() {
        let w = sparseRandomMatrix(rows: 96, cols: 80, density: 1.0 / 16, seed: 9)
        let x = Tensor(shape: [130, 96], values: randomArray(130 * 96, seed: 10))
        let viaBLAS = matmul(x, w)
        let x2 = Tensor(shape: [7, 80], values: randomArray(7 * 80, seed: 12))
        let transposedViaBLAS = matmul(x2, w, transposeB: true)
        #expect(w.prepareSparseForm())
        #expect(w.sparseForm != nil)
        let viaSparse = matmul(x, w)
        #expect(viaSparse.maxAbsDifference(viaBLAS) <= 1e-5 * viaBLAS.maxAbs)
        // A transposed use stays on BLAS, bit for bit.
        #expect(matmul(x2, w, transposeB: true).maxAbsDifference(transposedViaBLAS) == 0)
        let dense = Tensor(shape: [96, 80], values: randomArray(96 * 80, seed: 11))
        #expect(!dense.prepareSparseForm())
        #expect(dense.sparseForm == nil)
        w.dropSparseForm()
        #expect(w.sparseForm == nil)
        #expect(matmul(x, w).maxAbsDifference(viaBLAS) == 0)
    }
}

@Suite("Fused sparse MLP")
struct SparseMLPTests {
    static func act(_ kind: ActivationKind, _ x: Double) -> Double {
        switch kind {
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .relu: return max(x, 0)
        }
    }

    @Test("act(x·W_in + b_in)·W_out + b_out matches Float64, with tile tails, with and without biases",
          arguments: [(1, 5, 12, 3), (37, 19, 40, 33), (70, 64, 256, 48)], [ActivationKind.gelu, .geluTanh, .relu])
    func mlp(shape: (Int, Int, Int, Int), kind: ActivationKind) {
        let (n, k, h, m) = shape
        let up = sparseRandomMatrix(rows: k, cols: h, density: 1.0 / 4, seed: UInt64(n + k))
        let down = sparseRandomMatrix(rows: h, cols: m, density: 1.0 / 8, seed: UInt64(h + m))
        let x = Tensor(shape: [n, k], values: randomArray(n * k, seed: 7))
        let bias = Tensor(shape: [h], values: randomArray(h, seed: 8))
        let outBias = Tensor(shape: [m], values: randomArray(m, seed: 9))
        for withBias in [false, true] {
            let y = Tensor(shape: [n, m], values: [Float](repeating: .nan, count: n * m))
            SparseMatrix.mlp(x.data, ldx: k, n: n, up: SparseMatrix(dense: up), upBias: withBias ? UnsafePointer(bias.data) : nil,
                             activation: kind, down: SparseMatrix(dense: down),
                             downBias: withBias ? UnsafePointer(outBias.data) : nil, into: y.data, ldy: m)
            var worst = 0.0, scale = 0.0
            for r in 0..<n {
                var hidden = [Double](repeating: 0, count: h)
                for j in 0..<h {
                    var sum = withBias ? Double(bias[j]) : 0
                    for i in 0..<k { sum += Double(x[r * k + i]) * Double(up[i * h + j]) }
                    hidden[j] = Self.act(kind, sum)
                }
                for j in 0..<m {
                    var sum = withBias ? Double(outBias[j]) : 0
                    for i in 0..<h { sum += hidden[i] * Double(down[i * m + j]) }
                    worst = max(worst, abs(Double(y[r * m + j]) - sum))
                    scale = max(scale, abs(sum))
                }
            }
            #expect(worst <= 1e-5 * max(1, scale), "\(kind) bias \(withBias): max error \(worst), scale \(scale)")
        }
    }
}
