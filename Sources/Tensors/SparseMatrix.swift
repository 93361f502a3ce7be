// A weight matrix W [in, out] (y = x · W) kept by output column (CSC) for the sparse ×
// dense kernel of CKernels (sparse_matmul_impl.h): each column's nonzero rows in
// increasing order, padded with zero-valued entries to a multiple of four, because the
// kernel's inner loop takes four nonzeros at a time (four independent FMA chains).
//
// A weight tensor carries one (Tensor.sparseForm) when its kept fraction is at or below
// `densityThreshold`; `matmul` then takes the sparse kernel instead of BLAS. Why CSC by
// column and how the threshold was measured: docs/sparse-kernels.md.

import CKernels

public final class SparseMatrix {
    /// Rows (in) and columns (out) of the dense matrix this stands for.
    public let rows: Int
    public let cols: Int
    /// Nonzero entries of the dense matrix (padding excluded).
    public let nonzeros: Int
    let columnStart: [Int32]  // [out + 1]
    let rowIndex: [Int32]     // [stored entries]
    let values: [Float]       // [stored entries]

    /// Products by the sparse kernel take less time than BLAS below this kept fraction.
    /// Calibrated on this project's shapes (configs D and S, 1 and 2 threads) by
    /// `sparsebridge-bench-sparse --calibrate`; the measurements are in docs/sparse-kernels.md.
    public static let densityThreshold = 0.25

    /// Whether a matrix of this kept fraction should take the sparse kernel.
    public static func pays(density: Double) -> Bool { density <= densityThreshold }

    /// The CSC form of a dense [in, out] matrix.
    public init(dense w: Tensor) {
        precondition(w.rank == 2, "a sparse form needs a matrix, not \(w.shape)")
        let (n, m) = (w.shape[0], w.shape[1])
        precondition(n < Int(Int32.max) && n * m < Int(Int32.max), "matrix \(w.shape) too large for 32-bit indices")
        rows = n; cols = m
        var perColumn = [Int](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m where w.data[i * m + j] != 0 { perColumn[j] += 1 } }
        nonzeros = perColumn.reduce(0, +)
        var start = [Int32](repeating: 0, count: m + 1)
        for j in 0..<m { start[j + 1] = start[j] + Int32((perColumn[j] + 3) / 4 * 4) }
        var index = [Int32](repeating: 0, count: Int(start[m]))
        var value = [Float](repeating: 0, count: Int(start[m]))
        var fill = start.dropLast().map(Int.init)
        for i in 0..<n {
            for j in 0..<m where w.data[i * m + j] != 0 {
                index[fill[j]] = Int32(i)
                value[fill[j]] = w.data[i * m + j]
                fill[j] += 1
            }
        }
        // Padding repeats the column's last row (a cache line the kernel just read), weight 0.
        for j in 0..<m {
            let last = fill[j] > Int(start[j]) ? index[fill[j] - 1] : 0
            for p in fill[j]..<Int(start[j + 1]) { index[p] = last }
        }
        columnStart = start; rowIndex = index; values = value
    }

    /// Entries stored for column j, padding included.
    public func storedEntries(column j: Int) -> Int { Int(columnStart[j + 1] - columnStart[j]) }

    /// Column j's stored (row, value) pairs, padding included.
    public func entries(column j: Int) -> [(row: Int, value: Float)] {
        (Int(columnStart[j])..<Int(columnStart[j + 1])).map { (Int(rowIndex[$0]), values[$0]) }
    }

    /// Kept fraction of the dense matrix.
    public var density: Double { Double(nonzeros) / Double(max(1, rows * cols)) }

    /// y[n, out] = alpha · x[n, in] · W + beta · y (+ bias [out], added last), with row strides
    /// ldx and ldy; token tiles are split across `Parallel.threads` unless `split` is false.
    public func multiply(_ x: UnsafePointer<Float>, ldx: Int, n: Int, alpha: Float = 1, beta: Float = 0,
                         bias: UnsafePointer<Float>? = nil, into y: UnsafeMutablePointer<Float>, ldy: Int,
                         split: Bool = true) {
        if n == 0 || cols == 0 { return }
        columnStart.withUnsafeBufferPointer { start in
            rowIndex.withUnsafeBufferPointer { index in
                values.withUnsafeBufferPointer { value in
                    func run(_ r: Range<Int>) {
                        sb_csc_matmul(x + r.lowerBound * ldx, ldx, r.count, rows, start.baseAddress, index.baseAddress,
                                      value.baseAddress, cols, alpha, beta, bias, y + r.lowerBound * ldy, ldy)
                    }
                    let tile = sb_csc_tile_rows(), tiles = (n + tile - 1) / tile
                    if !split {
                        run(0..<n)
                    } else {
                        Parallel.forRange(tiles) { ts in run((ts.lowerBound * tile)..<min(n, ts.upperBound * tile)) }
                    }
                }
            }
        }
    }
}

extension SparseMatrix {
    /// A block's MLP when both matrices are sparse: y[n, out] = act(x[n, in] · up + upBias) · down
    /// + downBias, without storing the [n, hidden] activations (sb_csc_mlp: each token tile's
    /// hidden values stay in a per-thread buffer). Token tiles are split across `Parallel.threads`.
    public static func mlp(_ x: UnsafePointer<Float>, ldx: Int, n: Int, up: SparseMatrix, upBias: UnsafePointer<Float>?,
                           activation: ActivationKind, down: SparseMatrix, downBias: UnsafePointer<Float>?,
                           into y: UnsafeMutablePointer<Float>, ldy: Int) {
        precondition(up.cols == down.rows, "MLP of \(up.rows)→\(up.cols) then \(down.rows)→\(down.cols)")
        if n == 0 || down.cols == 0 { return }
        let act: Int32
        switch activation {
        case .gelu: act = Int32(SB_ACT_GELU_ERF)
        case .geluTanh: act = Int32(SB_ACT_GELU_TANH)
        case .relu: act = Int32(SB_ACT_RELU)
        }
        up.columnStart.withUnsafeBufferPointer { upStart in
            up.rowIndex.withUnsafeBufferPointer { upRow in
                up.values.withUnsafeBufferPointer { upValue in
                    down.columnStart.withUnsafeBufferPointer { downStart in
                        down.rowIndex.withUnsafeBufferPointer { downRow in
                            down.values.withUnsafeBufferPointer { downValue in
                                let tile = sb_csc_tile_rows(), tiles = (n + tile - 1) / tile
                                Parallel.forRange(tiles) { ts in
                                    let r = (ts.lowerBound * tile)..<min(n, ts.upperBound * tile)
                                    sb_csc_mlp(x + r.lowerBound * ldx, ldx, r.count, up.rows, upStart.baseAddress,
                                               upRow.baseAddress, upValue.baseAddress, upBias, up.cols, act,
                                               downStart.baseAddress, downRow.baseAddress, downValue.baseAddress,
                                               downBias, down.cols, y + r.lowerBound * ldy, ldy)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Builds this matrix's sparse form when its kept fraction pays for the sparse kernel
    /// (or always, with `force`); removes it otherwise. Returns whether it now has one.
    /// The form is a copy: whoever changes the tensor's values must call `dropSparseForm()`.
    @discardableResult
    public func prepareSparseForm(force: Bool = false) -> Bool {
        guard rank == 2 else { return false }
        let form = SparseMatrix(dense: self)
        sparseForm = force || SparseMatrix.pays(density: form.density) ? form : nil
        return sparseForm != nil
    }

    /// Back to BLAS for this tensor (its values are about to change, or for comparison).
    public func dropSparseForm() { sparseForm = nil }
}
