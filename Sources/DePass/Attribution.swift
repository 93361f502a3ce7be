// Scores from a decomposition: each component's logit for the target at the last
// position (minus the alternative's, when one is given), with the exactness record, and,
// when the pass recorded them, one component's routes. Pure functions of their inputs: one
// pass gives both scores and routes.

import Tensors
import Model

public struct Attribution: Sendable {
    public let names: [String]          // K components, then "bias"
    public let scores: [Double]         // per component, in `names` order
    public let total: Double            // Σ scores = the real logit (difference)
    public let checks: [ExactnessCheck]
    /// How the routed component's score splits over the paths it takes (nil: none was routed).
    public let routes: [(name: String, score: Double)]?
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
    /// Propagates `comps` from `start` and scores every component; with `routesOf`, also splits
    /// that component's score into its routes, in the same pass.
    public func attribute(_ comps: Components, from start: StartPoint, target: Int32, alternative: Int32? = nil,
                          routesOf: Int? = nil) throws -> Attribution {
        attribution(of: try propagate(comps, from: start, routesOf: routesOf), names: comps.names, target: target, alternative: alternative)
    }

    /// The scores (and routes, if recorded) of a propagation.
    public func attribution(of p: Propagation, names: [String], target: Int32, alternative: Int32? = nil) -> Attribution {
        let t = seqLen, v = model.config.vocab
        var scores: [Double] = []
        for k in 0..<p.final.count {
            let row = p.logits.data + (k * t + t - 1) * v
            scores.append(Double(row[Int(target)]) - (alternative.map { Double(row[Int($0)]) } ?? 0))
        }
        return Attribution(names: names + ["bias"], scores: scores, total: scores.reduce(0, +), checks: p.checks,
                           routes: routes(of: p, target: target, alternative: alternative))
    }

    /// How the routed component's score splits over the paths it takes: the direct path from the
    /// start point and each later write (attention head, MLP layer), each through the frozen final
    /// norm and the unembedding, at the last position. The routes sum to the component's score
    /// (AbsTopK on the stream itself, where present, makes the split approximate).
    func routes(of p: Propagation, target: Int32, alternative: Int32?) -> [(name: String, score: Double)]? {
        guard let initial = p.routeStart else { return nil }
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
        return [("direct", score(initial))] + p.routeWrites.map { ($0.name, score($0.write)) }
    }
}
