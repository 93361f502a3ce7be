// Scores from a decomposition: each component's logit for the target at the last
// position (minus the alternative's, when one is given), with the exactness record.

import Tensors
import Model

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

extension DecomposedForward {
    /// How component `k`'s score splits over the paths it takes: the direct path from the start
    /// point and each later write (attention head, MLP layer), each through the frozen final
    /// norm and the unembedding, at the last position. The routes sum to the component's score
    /// (AbsTopK on the stream itself, where present, makes the split approximate).
    public func routes(of k: Int, _ comps: Components, from start: StartPoint, target: Int32,
                       alternative: Int32?) throws -> [(name: String, score: Double)] {
        let initial = Array(UnsafeBufferPointer(start: comps.component(k).data + (seqLen - 1) * comps.width, count: comps.width))
        routeComponent = k
        defer { routeComponent = nil }
        _ = try propagate(comps, from: start)
        let w = model.weights, d = model.config.dModel, t = seqLen
        let rstd = state.lnFinalRstd[t - 1], layer = model.config.norm == .layer
        // The unembedding direction of (target − alternative), [d_model].
        let v = model.config.vocab
        let direction: [Double] = (0..<d).map { j in
            func u(_ tok: Int32) -> Double {
                if let W_U = w.W_U { return Double(W_U.data[j * v + Int(tok)]) }
                return Double(w.W_E.data[Int(tok) * d + j])
            }
            return u(target) - (alternative.map(u) ?? 0)
        }
        func score(_ x: [Float]) -> Double {
            let m = layer ? x.reduce(0, +) / Float(d) : 0
            var s = 0.0
            for j in 0..<d { s += Double(w.lnFinalGain[j] * (x[j] - m) * rstd) * direction[j] }
            return s
        }
        return [("direct", score(initial))] + routeWrites.map { ($0.name, score($0.write)) }
    }
}
