// Choosing a channel, and the steering curve: for each strength α, over held-out prompt
// pairs, the dense model's mean P(target), mean logit difference (target − alternative)
// and flip rate (the share of prompts where the alternative now wins), beside a control
// edit of the same norm along a random direction.

import Bridges
import Foundation
import Tasks
import Tensors
import Transformers

public struct ChannelScore: Sendable {
    public let channel: Int
    /// |mean Δ| / (standard deviation of Δ + ε) over the ranking pairs, at the last position.
    public let separation: Double
    public let meanDelta: Double
}

public struct SteeringPoint: Sendable {
    public let alpha: Double
    public let meanProbability: Double
    public let meanLogitDiff: Double
    public let flipRate: Double
    public let controlMeanLogitDiff: Double
    public let controlFlipRate: Double
}

extension Steerer {
    /// Ranks the sparse channels at the site by how well their value at the last position
    /// separates the two prompts of each pair: |mean Δ| / (std Δ + 1e-6) with Δ the
    /// counterfactual's value minus the presented one's (Cohen's d on the paired differences).
    public func rankChannels(pairs: [PromptPair]) throws -> [ChannelScore] {
        let d = sparse.config.dModel
        var deltas = [[Double]](repeating: [], count: d)
        for pair in pairs.map(clip) {
            let a = try sparseActivations(pair.presented.tokens), b = try sparseActivations(pair.counterfactual.tokens)
            let ra = (pair.presented.tokens.count - 1) * d, rb = (pair.counterfactual.tokens.count - 1) * d
            for c in 0..<d { deltas[c].append(Double(b.data[rb + c] - a.data[ra + c])) }
        }
        return (0..<d).map { c in
            let xs = deltas[c], n = Double(xs.count)
            let mean = xs.reduce(0, +) / n
            let sd = (xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n - 1, 1)).squareRoot()
            return ChannelScore(channel: c, separation: abs(mean) / (sd + 1e-6), meanDelta: mean)
        }.sorted { $0.separation > $1.separation }
    }

    /// The steering curve over `pairs` for channel c, with a random-direction control of the
    /// same norm (seeded).
    public func curve(pairs: [PromptPair], channel c: Int, alphas: [Double], controlSeed: UInt64 = 17) throws -> [SteeringPoint] {
        let v = direction(channel: c)
        let norm = v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        var rng = SeededRandom(seed: controlSeed)
        var r = (0..<v.count).map { _ in Double(rng.nextNormal()) }
        let rn = r.reduce(0) { $0 + $1 * $1 }.squareRoot()
        r = r.map { $0 / rn * norm }
        let control = r.map { Float($0) }
        let pairs = pairs.map(clip)
        let deltas = try pairs.map { try delta($0, channel: c) }
        return try alphas.map { alpha in
            var p = 0.0, diff = 0.0, flips = 0, cDiff = 0.0, cFlips = 0
            for (pair, dlt) in zip(pairs, deltas) {
                let tokens = pair.presented.tokens, tgt = Int(pair.presented.target), alt = Int(pair.presented.alternative)
                let l = try steeredLastLogits(tokens, delta: dlt, direction: v, alpha: Float(alpha))
                let m = l.max()!
                let z = l.reduce(0.0) { $0 + exp(Double($1 - m)) }
                p += exp(Double(l[tgt] - m)) / z
                diff += Double(l[tgt] - l[alt])
                if l[alt] > l[tgt] { flips += 1 }
                let lc = try steeredLastLogits(tokens, delta: dlt, direction: control, alpha: Float(alpha))
                cDiff += Double(lc[tgt] - lc[alt])
                if lc[alt] > lc[tgt] { cFlips += 1 }
            }
            let n = Double(pairs.count)
            return SteeringPoint(alpha: alpha, meanProbability: p / n, meanLogitDiff: diff / n, flipRate: Double(flips) / n,
                                 controlMeanLogitDiff: cDiff / n, controlFlipRate: Double(cFlips) / n)
        }
    }
}
