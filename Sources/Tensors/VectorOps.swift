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
