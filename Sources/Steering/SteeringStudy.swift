// Choosing a channel, and the steering curve: for each strength α, over held-out prompt
// pairs, the dense model's mean P(target), mean logit difference (target − alternative)
// and flip rate (the share of prompts where the alternative now wins), beside a control
// edit of the same norm along a random direction.

import Bridges
import Foundation
import Tasks
import Tensors
import Training
import Model

public struct ChannelScore: Sendable {
    public let channel: Int
    /// |mean Δ| / (standard deviation of Δ + ε) over the ranking pairs, at the last position.
    public let separation: Double
    public let meanDelta: Double
    /// First-order change of the dense logit difference (target − alternative) that the α = 1
    /// edit through this channel makes, mean over the ranking pairs: Σ_t Δ_t · ⟨v, ∂LD/∂h_t⟩.
    /// Steering towards the other quote wants it as negative as the logit difference is positive.
    public let predictedEffect: Double
}

/// How `--channel auto` orders the channels.
public enum ChannelRanking: String, Sendable, CaseIterable, Codable {
    /// Cohen's d of the paired difference at the last position: the channel that best tells
    /// the two prompts apart in the sparse model.
    case separation
    /// The first-order effect of the edit on the dense model's answer: the channel whose
    /// decoder row, moved by its own Δ, pushes the dense logit difference down the most.
    case effect
}

/// One strength of a steering curve, as `steer --json` prints it and the study's results.json
/// holds it (one type, so the two cannot drift apart).
public struct SteeringPoint: Codable, Sendable, Equatable {
    public let alpha: Double
    public let meanProbability: Double
    public let meanLogitDiff: Double
    public let flipRate: Double
    public let controlMeanLogitDiff: Double
    public let controlFlipRate: Double

    enum CodingKeys: String, CodingKey {
        case alpha, meanProbability = "mean_p_target", meanLogitDiff = "mean_logit_diff", flipRate = "flip_rate"
        case controlMeanLogitDiff = "control_mean_logit_diff", controlFlipRate = "control_flip_rate"
    }
}

/// The prompt pairs of a steering study, fixed once for the CLI and the study: channels are
/// ranked on one set and the curve is measured on another, held out.
public enum SteeringPairs {
    public static let rankingCount = 100
    public static let rankingSeed: UInt64 = 1
    public static let heldoutSeed: UInt64 = 2
    /// DePass of the steered run uses the first pairs of the held-out set.
    public static let attributionCount = 20

    public static func ranking(_ task: BinaryTask) -> [PromptPair] { task.pairs(count: rankingCount, seed: rankingSeed) }
    public static func heldout(_ task: BinaryTask, count: Int) -> [PromptPair] { task.pairs(count: count, seed: heldoutSeed) }
}

extension Steerer {
    /// Scores every sparse channel at the site on `pairs` and orders them by `ranking`.
    /// One sparse (or encoded) pass per prompt gives Δ at every token; one dense backward of
    /// the logit difference per pair gives ∂LD/∂h at the site, so the first-order effect of
    /// every channel's edit costs a [T, d_dense] × [d_dense, d_sparse] product.
    public func rankChannels(pairs: [PromptPair], by ranking: ChannelRanking = .separation) throws -> [ChannelScore] {
        let ds = sparse.config.dModel, dd = dense.config.dModel
        var deltas = [[Double]](repeating: [], count: ds)
        var effect = [Double](repeating: 0, count: ds)
        let factor = rescale == .rms ? site.decoder.rmsOut / max(site.decoder.rmsIn, 1e-30) : 1
        let decoder = site.decoder.weight   // [d_sparse, d_dense]
        for pair in pairs.map(clip) {
            let (a, b) = try pairActivations(pair)
            let t = pair.presented.tokens.count
            for c in 0..<ds { deltas[c].append(Double(b.data[(t - 1) * ds + c] - a.data[(t - 1) * ds + c])) }
            let g = try logitDiffGradient(pair.presented)          // [T, d_dense]
            let m = Tensor(zeros: [t, ds])                         // m[t, c] = ⟨D[c, :], g_t⟩
            BLAS.gemm(transB: true, m: t, n: ds, k: dd, a: g.data, lda: dd, b: decoder.data, ldb: dd, c: m.data, ldc: ds)
            for i in 0..<t {
                for c in 0..<ds { effect[c] += Double(b.data[i * ds + c] - a.data[i * ds + c]) * Double(m.data[i * ds + c]) }
            }
        }
        let n = Double(pairs.count)
        let scores = (0..<ds).map { c in
            let xs = deltas[c]
            let mean = xs.reduce(0, +) / n
            let sd = (xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n - 1, 1)).squareRoot()
            return ChannelScore(channel: c, separation: abs(mean) / (sd + 1e-6), meanDelta: mean, predictedEffect: factor * effect[c] / n)
        }
        switch ranking {
        case .separation: return scores.sorted { $0.separation > $1.separation }
        case .effect: return scores.sorted { $0.predictedEffect < $1.predictedEffect }
        }
    }

    /// ∂(ℓ_target − ℓ_alternative at the last position) / ∂(dense stream at the site), [T, d_dense].
    public func logitDiffGradient(_ prompt: TaskPrompt) throws -> Tensor {
        let out = Tensor(zeros: [prompt.tokens.count, dense.config.dModel])
        let hooks = Hooks()
        hooks.add(point) { out.copy(from: $0.activation) }
        try LossGradient.logitDifference(model: dense, tokens: prompt.tokens, target: prompt.target,
                                         alternative: prompt.alternative, hooks: hooks)
        return out
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
