// exp, erf and tanh-GELU come from the C kernels (CKernels/kernels.c): one
// implementation, vectorised per CPU feature level. These are the scalar entry points.

import CKernels

/// exp(x), relative error about 2e-7; 0 below −87.3; inputs above 88 give exp(88).
@inlinable public func fastExp(_ x: Float) -> Float { sb_expf(x) }

/// erf(x), absolute error ≤ 2e-7.
@inlinable public func fastErf(_ x: Float) -> Float { sb_erff(x) }

/// tanh(x) = 1 − 2 / (exp(2x) + 1), saturating cleanly at ±1.
@inlinable public func fastTanh(_ x: Float) -> Float {
    let xc = min(max(x, -15), 15)
    return 1 - 2 / (fastExp(2 * xc) + 1)
}
