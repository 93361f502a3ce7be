// Row-wise kernels on [rows, width] matrices stored contiguously: norms, activations,
// softmax, AbsTopK. Each splits its rows across `Parallel.threads`.

public enum NormKind: String, Codable, Sendable { case layer, rms }

public enum ActivationKind: String, Codable, Sendable {
    case gelu          // exact: x·Φ(x), with erf
    case geluTanh = "gelu_tanh"  // GPT-2's tanh approximation
    case relu
}

public enum Kernels {
    /// out = norm(x) ⊙ gain (+ bias for LayerNorm). Writes the per-row mean (LayerNorm only)
    /// and reciprocal standard deviation (or reciprocal RMS) when buffers are given: the
    /// backward pass and DePass reuse them.
    public static func normalize(_ kind: NormKind, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                 rows: Int, width: Int, gain: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 eps: Float, mean meanOut: UnsafeMutablePointer<Float>? = nil,
                                 rstd rstdOut: UnsafeMutablePointer<Float>? = nil) {
        Parallel.forRange(rows, minimumPerThread: 64) { range in
            for r in range {
                let xr = x + r * width, yr = out + r * width
                let mean = kind == .layer ? VectorOps.sum(xr, width) / Float(width) : 0
                let rstd = 1 / (VectorOps.sumSquares(xr, width, centre: mean) / Float(width) + eps).squareRoot()
                if let bias {
                    for j in 0..<width { yr[j] = (xr[j] - mean) * rstd * gain[j] + bias[j] }
                } else {
                    for j in 0..<width { yr[j] = (xr[j] - mean) * rstd * gain[j] }
                }
                meanOut?[r] = mean
                rstdOut?[r] = rstd
            }
        }
    }

    /// In place: x ← act(x).
    public static func activate(_ kind: ActivationKind, _ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRange(count, minimumPerThread: 16_384) { range in
            let p = x + range.lowerBound, n = range.count
            switch kind {
            case .relu:
                for i in 0..<n { p[i] = max(p[i], 0) }
            case .gelu:
                VectorOps.gelu(p, n)
            case .geluTanh:
                VectorOps.geluTanh(p, n)
            }
        }
    }

    /// Numerically stable softmax of each row, in place.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        Parallel.forRange(rows, minimumPerThread: 16) { range in
            for r in range { softmax(x + r * width, count: width) }
        }
    }

    @inlinable
    public static func softmax(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        let m = VectorOps.max(p, n)
        let s = VectorOps.expShiftedSum(p, n, shift: m)
        VectorOps.scale(p, n, by: 1 / s)
    }

    /// Number of entries AbsTopK keeps in a row of `width` at keep fraction `fraction`:
    /// floor(fraction · width) as circuit_sparsity computes it, but at least one.
    public static func absTopKCount(width: Int, fraction: Double) -> Int {
        min(width, max(1, Int((fraction * Double(width)).rounded(.down))))
    }

    /// AbsTopK in place: each row keeps its `k` entries of largest magnitude and zeroes the rest.
    /// Ties at the threshold go to the lower index, so exactly `k` survive. With `mask`, writes
    /// 1 where an entry was kept and 0 where it was dropped (the backward pass lets gradients
    /// through the kept entries only).
    public static func absTopK(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, k: Int,
                               mask: UnsafeMutablePointer<Float>? = nil) {
        if k >= width {
            mask?.update(repeating: 1, count: rows * width)
            return
        }
        Parallel.forRange(rows, minimumPerThread: 32) { range in
            var scratch = [Float](repeating: 0, count: width)
            for r in range {
                let row = x + r * width
                for j in 0..<width { scratch[j] = abs(row[j]) }
                let threshold = kthLargest(&scratch, k)
                var above = 0
                for j in 0..<width where abs(row[j]) > threshold { above += 1 }
                var tiesLeft = k - above
                for j in 0..<width {
                    let a = abs(row[j])
                    var keep = a > threshold
                    if !keep && a == threshold && tiesLeft > 0 { tiesLeft -= 1; keep = true }
                    if !keep { row[j] = 0 }
                    mask?[r * width + j] = keep ? 1 : 0
                }
            }
        }
    }

    /// The k-th largest value (1-based) of `v`, by quickselect; reorders `v`.
    public static func kthLargest(_ v: inout [Float], _ k: Int) -> Float {
        var lo = 0, hi = v.count - 1
        let target = k - 1
        while lo < hi {
            let pivot = v[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while v[i] > pivot { i += 1 }
                while v[j] < pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return v[target] }
        }
        return v[target]
    }

    /// y += x (elementwise, `count` entries).
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRange(count, minimumPerThread: 65_536) { range in
            for i in range { y[i] += x[i] }
        }
    }

    /// Adds `bias` [width] to each of `rows` rows of x.
    public static func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        Parallel.forRange(rows, minimumPerThread: 256) { range in
            for r in range {
                let row = x + r * width
                for j in 0..<width { row[j] += bias[j] }
            }
        }
    }
}
