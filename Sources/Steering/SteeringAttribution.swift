// DePass of a steered run: from the steering site, components [the unsteered stream,
// α · Δ_t · D[c, :], bias (zero at the start)]; the steering component's score is its share
// of the logit difference, and its routes say through which downstream heads and MLP
// layers the effect travels.

import DePass
import Tasks
import Tensors
import Model

public struct SteeringAttribution: Sendable {
    public let pairs: Int
    public let meanLogitDiff: Double          // of the steered run
    public let meanSteeringScore: Double      // the steering component's part of it
    public let meanRoutes: [(name: String, score: Double)]
    public let worstRelativeError: Float
}

extension Steerer {
    public func attribute(pairs: [PromptPair], channel c: Int, alpha: Double, rule: MLPRule = .softmax) throws -> SteeringAttribution {
        let v = direction(channel: c), d = dense.config.dModel
        let start: StartPoint
        switch point {
        case .residPre(let l): start = StartPoint(layer: l, stage: .beforeAttention)
        case .residMid(let l): start = StartPoint(layer: l, stage: .beforeMLP)
        case .residPost(let l): start = StartPoint(layer: l, stage: .afterBlock)
        default: throw SteeringError("steering attribution needs a residual-stream site, not \(point.name)")
        }
        var total = 0.0, steer = 0.0, worst: Float = 0
        var routeSums: [String: Double] = [:], routeOrder: [String] = []
        for pair in pairs.map(clip) {
            let tokens = pair.presented.tokens, t = tokens.count
            let dlt = try delta(pair, channel: c)
            let run = try DecomposedForward(model: dense, tokens: tokens, rule: rule,
                                            hooks: hooks(delta: dlt, direction: v, alpha: Float(alpha)))
            // The steered stream at the site is unsteered + edit; split it back.
            let steered = run.residual(at: start)
            let edit = Tensor(zeros: [t, d])
            for pos in 0..<t { for j in 0..<d { edit.data[pos * d + j] = Float(alpha) * dlt[pos] * v[j] } }
            let unsteered = steered.copy()
            for i in 0..<(t * d) { unsteered.data[i] -= edit.data[i] }
            let comps = run.customComponents(names: ["unsteered", "steering"], parts: [unsteered, edit], at: start, bigramOwner: 0)
            // One pass scores the components and routes the steering one.
            let attribution = try run.attribute(comps, from: start, target: pair.presented.target,
                                                alternative: pair.presented.alternative, routesOf: 1)
            total += attribution.total
            steer += attribution.scores[1]
            worst = max(worst, attribution.worstRelativeError)
            for (name, score) in attribution.routes ?? [] {
                if routeSums[name] == nil { routeOrder.append(name) }
                routeSums[name, default: 0] += score
            }
        }
        let n = Double(pairs.count)
        return SteeringAttribution(pairs: pairs.count, meanLogitDiff: total / n, meanSteeringScore: steer / n,
                                   meanRoutes: routeOrder.map { ($0, routeSums[$0]! / n) }, worstRelativeError: worst)
    }
}
