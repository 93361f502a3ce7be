// AdamW with decoupled weight decay, and the global gradient rescaling of the sparse
// recipe (every step, all gradients together are scaled to RMS 1).

import Foundation
import Tensors
import Model

public final class AdamW {
    public let m: TransformerWeights
    public let v: TransformerWeights
    public internal(set) var step = 0
    public var beta1: Float, beta2: Float, eps: Float

    public init(like weights: TransformerWeights, beta1: Double, beta2: Double, eps: Double) throws {
        m = try TransformerWeights(zerosLike: weights)
        v = try TransformerWeights(zerosLike: weights)
        self.beta1 = Float(beta1); self.beta2 = Float(beta2); self.eps = Float(eps)
    }

    /// Weight decay applies to matrices (weights and embeddings), not to biases, gains, sinks
    /// or the bigram table.
    static func decays(_ role: ParameterRole) -> Bool { SparseProjection.isProjected(role) }

    /// One step: w ← w·(1 − lr·wd) − lr · m̂ / (√v̂ + ε).
    public func update(_ weights: TransformerWeights, gradients: TransformerWeights, lr: Double, weightDecay: Double) {
        step += 1
        weights.dropSparseKernels()  // the values change: a compressed copy would go stale
        let b1 = beta1, b2 = beta2, e = eps, rate = Float(lr)
        let c1 = Float(1 / (1 - pow(Double(b1), Double(step)))), c2 = Float(1 / (1 - pow(Double(b2), Double(step))))
        for (i, p) in weights.parameters.enumerated() {
            let w = p.tensor.data, g = gradients.parameters[i].tensor.data
            let mm = m.parameters[i].tensor.data, vv = v.parameters[i].tensor.data
            let decay = AdamW.decays(p.role) ? 1 - rate * Float(weightDecay) : 1
            Parallel.forRange(p.tensor.count, minimumPerThread: 32_768) { range in
                for j in range {
                    let gj = g[j]
                    mm[j] = b1 * mm[j] + (1 - b1) * gj
                    vv[j] = b2 * vv[j] + (1 - b2) * gj * gj
                    w[j] = w[j] * decay - rate * (mm[j] * c1) / ((vv[j] * c2).squareRoot() + e)
                }
            }
        }
    }

    /// Scales all gradients together to RMS 1; returns the RMS before scaling.
    @discardableResult
    public static func normalizeRMS(_ gradients: TransformerWeights) -> Double {
        var sum = 0.0, count = 0
        for p in gradients.parameters {
            sum += Double(VectorOps.sumSquares(p.tensor.data, p.tensor.count, centre: 0))
            count += p.tensor.count
        }
        let rms = (sum / Double(max(count, 1))).squareRoot()
        guard rms > 0 else { return 0 }
        let scale = Float(1 / rms)
        for p in gradients.parameters { VectorOps.scale(p.tensor.data, p.tensor.count, by: scale) }
        return rms
    }
}

