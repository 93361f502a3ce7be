// Reductions and elementwise maps over contiguous Float arrays, from the C kernels.
// (Strict IEEE semantics stop Swift from vectorising `s += x[i]` or `m = max(m, x[i])`;
// the C kernels spell out 16 partial results and are built per CPU feature level.)

import CKernels

public enum VectorOps {
    @inlinable public static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float { sb_sum(p, n) }
    @inlinable public static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float { sb_max(p, n) }
    /// Σ (p[i] − c)².
    @inlinable public static func sumSquares(_ p: UnsafePointer<Float>, _ n: Int, centre c: Float) -> Float {
        sb_sum_squares(p, n, c)
    }
    /// p[i] ← exp(p[i] − shift) for every i; returns the sum of the results.
    @inlinable public static func expShiftedSum(_ p: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        sb_exp_shifted_sum(p, n, shift)
    }
    /// p[i] ← p[i] · scale.
    @inlinable public static func scale(_ p: UnsafeMutablePointer<Float>, _ n: Int, by scale: Float) { sb_scale(p, n, scale) }
    @inlinable public static func gelu(_ p: UnsafeMutablePointer<Float>, _ n: Int) { sb_gelu_erf(p, n) }
    @inlinable public static func geluTanh(_ p: UnsafeMutablePointer<Float>, _ n: Int) { sb_gelu_tanh(p, n) }
}

extension VectorOps {
    /// Softmax backward on one row: dp ← p · (dp − ρ) with ρ = Σ p·dp; returns ρ.
    @discardableResult
    @inlinable public static func softmaxBackward(_ p: UnsafePointer<Float>, _ dp: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        sb_softmax_backward(p, dp, n)
    }
}

extension VectorOps {
    /// Norm backward on one row (`layer`: LayerNorm, else RMSNorm): adds d loss/dx into `dx`,
    /// dy ⊙ x̂ into `dGain` and dy into `dBias`.
    @inlinable public static func normBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, gain: UnsafePointer<Float>,
                                               mean: Float, rstd: Float, width: Int, layer: Bool,
                                               dx: UnsafeMutablePointer<Float>, dGain: UnsafeMutablePointer<Float>,
                                               dBias: UnsafeMutablePointer<Float>?) {
        sb_norm_backward(x, dy, gain, mean, rstd, width, layer ? 1 : 0, dx, dGain, dBias)
    }

    /// g ← g · act'(x) for the MLP activation.
    public static func activationBackward(_ kind: ActivationKind, x: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>,
                                          count n: Int) {
        Parallel.forRange(n, minimumPerThread: 16_384) { r in
            let xs = x + r.lowerBound, gs = g + r.lowerBound
            switch kind {
            case .gelu: sb_gelu_erf_backward(xs, gs, r.count)
            case .geluTanh: sb_gelu_tanh_backward(xs, gs, r.count)
            case .relu: for i in 0..<r.count where xs[i] <= 0 { gs[i] = 0 }
            }
        }
    }
}
