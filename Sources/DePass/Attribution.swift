// Scores from a decomposition: each component's logit for the target at the last
// position (minus the alternative's, when one is given), with the exactness record.

import Tensors
import Transformers

public struct Attribution: Sendable {
    public let names: [String]          // K components, then "bias"
    public let scores: [Double]         // per component, in `names` order
    public let total: Double            // Σ scores = the real logit (difference)
    public let checks: [ExactnessCheck]
    /// The largest relative error over every checked site.
    public var worstRelativeError: Float { checks.map(\.relative).max() ?? 0 }
    public static let tolerance: Float = 1e-4

    public var isExact: Bool { worstRelativeError <= Attribution.tolerance }

    /// Components ranked by |score|, largest first.
    public func top(_ k: Int) -> [(name: String, score: Double)] {
        zip(names, scores).sorted { abs($0.1) > abs($1.1) }.prefix(k).map { ($0.0, $0.1) }
    }
}

extension DecomposedForward {
    public func attribute(_ comps: Components, from start: StartPoint, target: Int32, alternative: Int32? = nil) throws -> Attribution {
        let logits = try propagate(comps, from: start)
        let t = seqLen, v = model.config.vocab
        var scores: [Double] = []
        for k in 0..<comps.count {
            let row = logits.data + (k * t + t - 1) * v
            scores.append(Double(row[Int(target)]) - (alternative.map { Double(row[Int($0)]) } ?? 0))
        }
        return Attribution(names: comps.names + ["bias"], scores: scores, total: scores.reduce(0, +), checks: checks)
    }
}
