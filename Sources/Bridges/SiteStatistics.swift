// Float64 sufficient statistics for one bridge site: sums over token rows from which a
// ridge fit in either direction, and its exact held-out error, follow without a second
// pass. Memory is O(d²) whatever the token count, and statistics from separate shards
// merge by addition.

import Tensors
import Model

public struct SiteStatistics: Sendable {
    public let dDense: Int
    public let dSparse: Int
    /// Which directions will be solved; a side's full Gram matrix is kept only when it is
    /// some direction's input (its diagonal, for the error terms, always is).
    public let directions: Set<BridgeDirection>
    public private(set) var count = 0
    public private(set) var sumDense: [Double]     // Σ x_d            [d_dense]
    public private(set) var sumSparse: [Double]    // Σ x_s            [d_sparse]
    public private(set) var gramDense: [Double]    // Σ x_d x_dᵀ       [d_dense, d_dense]
    public private(set) var gramSparse: [Double]   // Σ x_s x_sᵀ       [d_sparse, d_sparse]
    public private(set) var cross: [Double]        // Σ x_d x_sᵀ       [d_dense, d_sparse]
    public private(set) var squaresDense: [Double] // Σ x_d²           [d_dense]
    public private(set) var squaresSparse: [Double] // Σ x_s²          [d_sparse]

    public init(dDense: Int, dSparse: Int, directions: Set<BridgeDirection> = Set(BridgeDirection.allCases)) {
        self.dDense = dDense
        self.dSparse = dSparse
        self.directions = directions
        sumDense = .init(repeating: 0, count: dDense)
        sumSparse = .init(repeating: 0, count: dSparse)
        gramDense = .init(repeating: 0, count: directions.contains(.denseToSparse) ? dDense * dDense : 0)
        gramSparse = .init(repeating: 0, count: directions.contains(.sparseToDense) ? dSparse * dSparse : 0)
        cross = .init(repeating: 0, count: dDense * dSparse)
        squaresDense = .init(repeating: 0, count: dDense)
        squaresSparse = .init(repeating: 0, count: dSparse)
    }

    /// Adds `rows` paired rows (Float64 copies made by the caller, [rows, d]).
    public mutating func add(dense: [Double], sparse: [Double], rows: Int) {
        guard rows > 0 else { return }
        dense.withUnsafeBufferPointer { d in
            sparse.withUnsafeBufferPointer { s in
                if !gramDense.isEmpty {
                    gramDense.withUnsafeMutableBufferPointer { g in
                        LinearAlgebra.dgemm(transA: true, m: dDense, n: dDense, k: rows, a: d.baseAddress!, lda: dDense,
                                            b: d.baseAddress!, ldb: dDense, beta: 1, c: g.baseAddress!, ldc: dDense)
                    }
                }
                if !gramSparse.isEmpty {
                    gramSparse.withUnsafeMutableBufferPointer { g in
                        LinearAlgebra.dgemm(transA: true, m: dSparse, n: dSparse, k: rows, a: s.baseAddress!, lda: dSparse,
                                            b: s.baseAddress!, ldb: dSparse, beta: 1, c: g.baseAddress!, ldc: dSparse)
                    }
                }
                cross.withUnsafeMutableBufferPointer { g in
                    LinearAlgebra.dgemm(transA: true, m: dDense, n: dSparse, k: rows, a: d.baseAddress!, lda: dDense,
                                        b: s.baseAddress!, ldb: dSparse, beta: 1, c: g.baseAddress!, ldc: dSparse)
                }
            }
        }
        for r in 0..<rows {
            for j in 0..<dDense { let v = dense[r * dDense + j]; sumDense[j] += v; squaresDense[j] += v * v }
            for j in 0..<dSparse { let v = sparse[r * dSparse + j]; sumSparse[j] += v; squaresSparse[j] += v * v }
        }
        count += rows
    }

    /// Adds another shard's statistics.
    public mutating func merge(_ other: SiteStatistics) {
        precondition(other.dDense == dDense && other.dSparse == dSparse && other.directions == directions)
        count += other.count
        for i in squaresDense.indices { squaresDense[i] += other.squaresDense[i] }
        for i in squaresSparse.indices { squaresSparse[i] += other.squaresSparse[i] }
        for i in sumDense.indices { sumDense[i] += other.sumDense[i] }
        for i in sumSparse.indices { sumSparse[i] += other.sumSparse[i] }
        for i in gramDense.indices { gramDense[i] += other.gramDense[i] }
        for i in gramSparse.indices { gramSparse[i] += other.gramSparse[i] }
        for i in cross.indices { cross[i] += other.cross[i] }
    }

    /// Every sum in one array, the token count first (exact in a Double up to 2⁵³ tokens),
    /// so that statistics from several processes can be summed in one collective.
    public var flattened: [Double] {
        [Double(count)] + sumDense + sumSparse + gramDense + gramSparse + cross + squaresDense + squaresSparse
    }

    /// Statistics laid out as `self` holding `values` (a `flattened` array, or a sum of them).
    public func replacing(flattened values: [Double]) -> SiteStatistics {
        precondition(values.count == 1 + sumDense.count + sumSparse.count + gramDense.count + gramSparse.count
                     + cross.count + squaresDense.count + squaresSparse.count)
        var out = self, at = 1
        func take(_ n: Int) -> [Double] { defer { at += n }; return Array(values[at..<(at + n)]) }
        out.count = Int(values[0])
        out.sumDense = take(sumDense.count); out.sumSparse = take(sumSparse.count)
        out.gramDense = take(gramDense.count); out.gramSparse = take(gramSparse.count)
        out.cross = take(cross.count)
        out.squaresDense = take(squaresDense.count); out.squaresSparse = take(squaresSparse.count)
        return out
    }

    /// The moments of one direction: x = dense, y = sparse (encoder) or the reverse (decoder).
    func moments(_ direction: BridgeDirection) -> Moments {
        switch direction {
        case .denseToSparse:
            precondition(!gramDense.isEmpty, "these statistics were gathered without the encoder")
            return Moments(n: count, dIn: dDense, dOut: dSparse, sumX: sumDense, sumY: sumSparse,
                           xx: gramDense, traceXX: squaresDense.reduce(0, +), traceYY: squaresSparse.reduce(0, +), xy: cross)
        case .sparseToDense:
            var t = [Double](repeating: 0, count: cross.count)
            for i in 0..<dDense { for j in 0..<dSparse { t[j * dDense + i] = cross[i * dSparse + j] } }
            precondition(!gramSparse.isEmpty, "these statistics were gathered without the decoder")
            return Moments(n: count, dIn: dSparse, dOut: dDense, sumX: sumSparse, sumY: sumDense,
                           xx: gramSparse, traceXX: squaresSparse.reduce(0, +), traceYY: squaresDense.reduce(0, +), xy: t)
        }
    }
}

/// Sums for one direction: x the input side, y the output side.
struct Moments {
    let n: Int
    let dIn: Int, dOut: Int
    let sumX: [Double], sumY: [Double]
    let xx: [Double]   // [dIn, dIn]
    let traceXX: Double
    let traceYY: Double  // Σ ‖y‖²: the output side's own Gram matrix is never needed whole
    let xy: [Double]   // [dIn, dOut]

    /// Σ ‖y − (x W + b)‖² over these rows, from the sums alone.
    func squaredError(w: [Double], b: [Double]) -> Double {
        var xxw = [Double](repeating: 0, count: dIn * dOut)
        xx.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { wb in
                xxw.withUnsafeMutableBufferPointer { c in
                    LinearAlgebra.dgemm(m: dIn, n: dOut, k: dIn, a: a.baseAddress!, lda: dIn, b: wb.baseAddress!, ldb: dOut,
                                        c: c.baseAddress!, ldc: dOut)
                }
            }
        }
        var trWxy = 0.0, trWxxW = 0.0
        for i in 0..<(dIn * dOut) { trWxy += w[i] * xy[i]; trWxxW += w[i] * xxw[i] }
        var bSy = 0.0, bWsx = 0.0, bb = 0.0
        for j in 0..<dOut {
            var sxw = 0.0
            for i in 0..<dIn { sxw += sumX[i] * w[i * dOut + j] }
            bSy += b[j] * sumY[j]; bWsx += b[j] * sxw; bb += b[j] * b[j]
        }
        return traceYY - 2 * trWxy - 2 * bSy + trWxxW + 2 * bWsx + Double(n) * bb
    }

    /// Σ ‖y − ȳ‖² with ȳ the mean of these rows.
    var centredTotal: Double {
        guard n > 0 else { return 0 }
        let norm = sumY.reduce(0) { $0 + $1 * $1 }
        return traceYY - norm / Double(n)
    }
}

public enum BridgeDirection: String, Sendable, CaseIterable {
    case denseToSparse = "d2s"   // the encoder
    case sparseToDense = "s2d"   // the decoder

    public var mapName: String { self == .denseToSparse ? "encoder" : "decoder" }
}
