// Row kernels (norms, activations, softmax, AbsTopK) against Float64 references.

import Foundation
import Testing
import Tensors

@Suite("Kernels")
struct KernelsTests {
    @Test("normalize matches a Float64 reference, with mean and rstd outputs", arguments: [NormKind.layer, .rms], [true, false])
    func normalize(kind: NormKind, withBias: Bool) {
        // 300 rows so the kernel splits the rows across threads (≥ 64 per thread).
        let rows = 300, width = 37, eps: Float = 1e-5
        var x = randomArray(rows * width, seed: 30, std: 3)
        for j in 0..<width { x[j] += 5 }  // one row with a large mean
        let gain = randomArray(width, seed: 31).map { 1 + 0.3 * $0 }
        let bias = randomArray(width, seed: 32)
        var out = [Float](repeating: .nan, count: rows * width)
        var mean = [Float](repeating: .nan, count: rows), rstd = [Float](repeating: .nan, count: rows)
        x.withUnsafeBufferPointer { xp in gain.withUnsafeBufferPointer { gp in bias.withUnsafeBufferPointer { bp in
            out.withUnsafeMutableBufferPointer { op in mean.withUnsafeMutableBufferPointer { mp in
                rstd.withUnsafeMutableBufferPointer { rp in
                    Kernels.normalize(kind, x: xp.baseAddress!, out: op.baseAddress!, rows: rows, width: width,
                                      gain: gp.baseAddress!, bias: withBias ? bp.baseAddress! : nil, eps: eps,
                                      mean: mp.baseAddress!, rstd: rp.baseAddress!)
                }
            } }
        } } }
        var worstOut = 0.0, worstStat = 0.0
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mu = kind == .layer ? row.reduce(0, +) / Double(width) : 0
            let variance = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(width)
            let rs = 1 / (variance + Double(eps)).squareRoot()
            worstStat = max(worstStat, abs(Double(mean[r]) - mu) / (1 + abs(mu)))
            worstStat = max(worstStat, abs(Double(rstd[r]) - rs) / rs)
            for j in 0..<width {
                let ref = (row[j] - mu) * rs * Double(gain[j]) + (withBias ? Double(bias[j]) : 0)
                worstOut = max(worstOut, abs(Double(out[r * width + j]) - ref))
            }
        }
        #expect(worstOut < 1e-5)
        #expect(worstStat < 1e-5)
        if kind == .rms { #expect(mean.allSatisfy { $0 == 0 }) }
    }

    @Test("LayerNorm of a constant row is the bias; eps keeps it finite")
    func normalizeConstantRow() {
        let x: [Float] = [2, 2, 2, 2], gain: [Float] = [1, 2, 3, 4], bias: [Float] = [0.5, -0.5, 1, 0]
        var out = [Float](repeating: 0, count: 4), rstd: [Float] = [0]
        Kernels.normalize(.layer, x: x, out: &out, rows: 1, width: 4, gain: gain, bias: bias, eps: 1e-5, rstd: &rstd)
        #expect(out == bias)
        #expect(abs(Double(rstd[0]) - 1 / (1e-5).squareRoot()) < 1)
    }

    static func geluRef(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
    static func geluTanhRef(_ x: Double) -> Double {
        0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    @Test("activate matches the Float64 formulas", arguments: [ActivationKind.gelu, .geluTanh, .relu])
    func activate(kind: ActivationKind) {
        // 40 001 values (the kernel splits at 16 384 per thread) over [-10, 10], plus exact points.
        var x = sweep(-10, 10, count: 40_001) + [0, -0, 1, -1, 3, -3]
        let original = x
        Kernels.activate(kind, &x, count: x.count)
        var worst = 0.0
        for (v, y) in zip(original, x) {
            let d = Double(v)
            let ref: Double
            switch kind {
            case .gelu: ref = Self.geluRef(d)
            case .geluTanh: ref = Self.geluTanhRef(d)
            case .relu: ref = max(d, 0)
            }
            worst = max(worst, abs(Double(y) - ref) / (1 + abs(ref)))
        }
        #expect(worst < 1e-6, "worst scaled error \(worst)")
        if kind == .relu { #expect(zip(original, x).allSatisfy { $1 == ($0 > 0 ? $0 : 0) }) }
        // Spot values from the closed forms: gelu(1) = Φ(1) = 0.841344746…, gelu_tanh(1) = 0.841191990…
        var one: [Float] = [1]
        Kernels.activate(kind, &one, count: 1)
        let expectedAtOne = kind == .gelu ? 0.8413447460685429 : kind == .geluTanh ? 0.8411919906082768 : 1
        #expect(abs(Double(one[0]) - expectedAtOne) < 2e-7)
    }

    @Test("softmaxRows: rows sum to one, match Float64, stable for large logits")
    func softmax() {
        let rows = 50, width = 23
        var x = randomArray(rows * width, seed: 40, std: 4)
        for j in 0..<width { x[j] = 1000 + Float(j) }            // would overflow a naive exp
        for j in 0..<width { x[width + j] = -1000 - Float(j) }   // would underflow to 0/0
        for j in 0..<width { x[2 * width + j] = 7 }              // uniform row
        let original = x
        Kernels.softmaxRows(&x, rows: rows, width: width)
        var worst = 0.0
        for r in 0..<rows {
            let row = original[(r * width)..<((r + 1) * width)].map(Double.init)
            let m = row.max()!
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            var sum = 0.0
            for j in 0..<width {
                let y = Double(x[r * width + j])
                #expect(y.isFinite && y >= 0)
                sum += y
                worst = max(worst, abs(y - e[j] / s))
            }
            #expect(abs(sum - 1) < 1e-6, "row \(r) sums to \(sum)")
        }
        #expect(worst < 1e-6)
        #expect((0..<width).allSatisfy { abs(x[2 * width + $0] - 1 / Float(width)) < 1e-7 })
    }

    /// The indices AbsTopK must keep: largest |x| first, ties to the lower index.
    static func expectedKept(_ row: [Float], k: Int) -> Set<Int> {
        let order = row.indices.sorted { abs(row[$0]) > abs(row[$1]) || (abs(row[$0]) == abs(row[$1]) && $0 < $1) }
        return Set(order.prefix(k))
    }

    @Test("absTopK keeps exactly the k largest magnitudes per row", arguments: [1, 3, 8, 39])
    func absTopK(k: Int) {
        let rows = 100, width = 40
        var x = randomArray(rows * width, seed: UInt64(50 + k))
        // Rows with heavy ties: magnitudes drawn from {0, 1, 2} with random signs.
        var rng = SeededRandom(seed: 99)
        for r in 0..<20 { for j in 0..<width { x[r * width + j] = Float(rng.nextInt(3)) * (rng.nextInt(2) == 0 ? 1 : -1) } }
        let original = x
        Kernels.absTopK(&x, rows: rows, width: width, k: k)
        for r in 0..<rows {
            let before = Array(original[(r * width)..<((r + 1) * width)])
            let after = Array(x[(r * width)..<((r + 1) * width)])
            let keep = Self.expectedKept(before, k: k)
            for j in 0..<width {
                #expect(after[j] == (keep.contains(j) ? before[j] : 0), "row \(r) column \(j)")
            }
            // Exactly k survive (as indices; a kept value may itself be zero only if the row has fewer nonzeros).
            #expect(keep.count == k)
            if before.filter({ $0 != 0 }).count >= k { #expect(after.filter { $0 != 0 }.count == k) }
        }
    }

    @Test("absTopK resolves ties to the lower index")
    func absTopKTies() {
        var x: [Float] = [1, -1, 1, 1, 0.5,   -2, 2, -2, 0.1, 2,   3, 3, 3, 3, 3]
        Kernels.absTopK(&x, rows: 3, width: 5, k: 2)
        #expect(x == [1, -1, 0, 0, 0,   -2, 2, 0, 0, 0,   3, 3, 0, 0, 0])
        var y: [Float] = [0.5, -4, 4, 1]
        Kernels.absTopK(&y, rows: 1, width: 4, k: 1)
        #expect(y == [0, -4, 0, 0])
        var whole: [Float] = [1, -2, 3]
        Kernels.absTopK(&whole, rows: 1, width: 3, k: 3)
        #expect(whole == [1, -2, 3])
    }

    @Test("absTopKCount = floor(fraction · width), at least 1, at most width")
    func absTopKCount() {
        #expect(Kernels.absTopKCount(width: 16, fraction: 0.25) == 4)
        #expect(Kernels.absTopKCount(width: 10, fraction: 0.25) == 2)
        #expect(Kernels.absTopKCount(width: 7, fraction: 0.5) == 3)
        #expect(Kernels.absTopKCount(width: 100, fraction: 0.001) == 1)
        #expect(Kernels.absTopKCount(width: 3, fraction: 0.1) == 1)
        #expect(Kernels.absTopKCount(width: 64, fraction: 1) == 64)
        #expect(Kernels.absTopKCount(width: 1000, fraction: 0.999) == 999)
        for width in [1, 5, 17, 128, 1000] {
            for fraction in [0.01, 0.1, 0.125, 0.3, 0.5, 0.7, 0.9, 1.0] {
                let expected = min(width, max(1, Int(floor(fraction * Double(width)))))
                #expect(Kernels.absTopKCount(width: width, fraction: fraction) == expected)
            }
        }
    }

    @Test("add and addBias")
    func addKernels() {
        var y: [Float] = [1, 2, 3, 4, 5, 6]
        Kernels.add([10, 20, 30, 40, 50, 60], into: &y, count: 6)
        #expect(y == [11, 22, 33, 44, 55, 66])
        Kernels.addBias([1, -1, 0.5], to: &y, rows: 2, width: 3)
        #expect(y == [12, 21, 33.5, 45, 54, 66.5])
    }
}
