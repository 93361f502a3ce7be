// fastExp / fastErf / fastTanh against Foundation's Float64 functions.

import Foundation
import Testing
import Tensors

/// `count` evenly spaced Floats from lo to hi inclusive.
func sweep(_ lo: Double, _ hi: Double, count: Int) -> [Float] {
    (0..<count).map { Float(lo + (hi - lo) * Double($0) / Double(count - 1)) }
}

@Suite("Fast math")
struct FastMathTests {
    @Test("fastExp: relative error below 3e-7 over [-87, 88]")
    func expAccuracy() {
        var worst = 0.0, worstAt: Float = 0
        // A dense sweep plus the exact integers and half-integers (range-reduction boundaries).
        let xs = sweep(-87, 88, count: 400_001) + (-87...88).flatMap { [Float($0), Float($0) + 0.5] }
        for x in xs where x <= 88 {
            let ref = exp(Double(x))
            let err = abs(Double(fastExp(x)) - ref) / ref
            if err > worst { worst = err; worstAt = x }
        }
        #expect(worst < 3e-7, "worst relative error \(worst) at x = \(worstAt)")
    }

    @Test("fastExp: exact at 0, zero below the Float range, finite at the top")
    func expEdges() {
        #expect(fastExp(0) == 1)
        #expect(fastExp(-100) == 0)
        #expect(fastExp(-88) == 0)
        #expect(fastExp(-Float.infinity) == 0)
        #expect(fastExp(88).isFinite)
        // Inputs above 88 saturate at exp(88) rather than overflowing.
        #expect(fastExp(1000) == fastExp(88))
        #expect(abs(Double(fastExp(1)) - M_E) / M_E < 3e-7)
    }

    @Test("fastErf: absolute error at most 2e-7 over [-6, 6], odd, saturating")
    func erfAccuracy() {
        var worst = 0.0, worstAt: Float = 0
        for x in sweep(-6, 6, count: 120_001) {
            let err = abs(Double(fastErf(x)) - erf(Double(x)))
            if err > worst { worst = err; worstAt = x }
        }
        #expect(worst <= 2e-7, "worst absolute error \(worst) at x = \(worstAt)")
        for x: Float in [0.1, 0.5, 1, 2.5] { #expect(fastErf(-x) == -fastErf(x)) }
        #expect(abs(fastErf(0)) <= 2e-7)
        #expect(fastErf(10) == 1 && fastErf(-10) == -1)
    }

    @Test("fastTanh: absolute error below 3e-7 over [-20, 20], exact saturation")
    func tanhAccuracy() {
        var worst = 0.0, worstAt: Float = 0
        for x in sweep(-20, 20, count: 80_001) {
            let err = abs(Double(fastTanh(x)) - tanh(Double(x)))
            if err > worst { worst = err; worstAt = x }
        }
        #expect(worst < 3e-7, "worst absolute error \(worst) at x = \(worstAt)")
        // Relative accuracy away from zero.
        for x in sweep(0.5, 8, count: 1001) {
            #expect(abs(Double(fastTanh(x)) - tanh(Double(x))) / tanh(Double(x)) < 3e-7)
        }
        #expect(fastTanh(0) == 0)
        #expect(fastTanh(50) == 1 && fastTanh(-50) == -1)
    }
}
