// Context dilution in the bracket task. The sparse circuit keeps nesting depth as the size
// of an attention average over the list, so the depth signal at the last position shrinks
// as the list grows, until the depth-2 answer `]` loses to the newline. The study:
//
//  1. measures accuracy against list length for both models (depth 2 and depth 1 prompts);
//  2. picks the depth signal: the sparse circuit's attention-write channels at one layer
//     (the layer whose channels best separate depth 2 from depth 1 on short lists), read
//     along the direction u from the depth-1 mean to the depth-2 mean, in units where a
//     short depth-1 list reads 0 and a short depth-2 list reads 1;
//  3. reads that signal against length — in the sparse model directly, in the dense model
//     through the bridge encoder (with the dense model's own depth-1 and depth-2 means) —
//     and fits s(L) = A / L + B;
//  4. finds, by patching short depth-2 prompts, the signal value at which the sparse
//     model's answer flips: the threshold of the mechanism. (The same patch in the dense
//     model — the smallest edit of its stream that sets the encoded signal — is reported
//     too: it says whether the dense model causally reads the signal.)
//  5. predicts each model's flip length as the L where its signal falls to the sparse
//     threshold — between two measured lengths by linear interpolation, or past the sweep
//     by the fit — and compares it with the measured length where depth-2 accuracy falls
//     below one half.
//
// One channel alone is the special case of a single candidate; the paper's circuit has one
// depth channel, a circuit found here may spread depth over a few.

import Bridges
import Foundation
import Tasks
import Tensors
import Model
import Support
import Text

public enum DilutionPredictor {
    /// Least-squares fit of s(L) = A / L + B.
    public static func fit(lengths: [Double], signal: [Double]) -> (a: Double, b: Double) {
        let xs = lengths.map { 1 / $0 }, n = Double(xs.count)
        let mx = xs.reduce(0, +) / n, my = signal.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0
        for (x, y) in zip(xs, signal) { sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx) }
        let a = sxx > 0 ? sxy / sxx : 0
        return (a, my - a * mx)
    }

    /// Where a measured signal (decreasing with length, as dilution makes it) first falls to
    /// `threshold`: linear interpolation between the two lengths around the crossing; nil
    /// when the signal stays above it at every length measured.
    public static func crossing(lengths: [Double], signal: [Double], threshold: Double) -> Double? {
        guard let first = signal.first else { return nil }
        if first <= threshold { return lengths[0] }
        for i in 1..<signal.count where signal[i] <= threshold {
            let f = (signal[i - 1] - threshold) / (signal[i - 1] - signal[i])
            return lengths[i - 1] + f * (lengths[i] - lengths[i - 1])
        }
        return nil
    }

    /// The length at which A / L + B reaches `threshold`: L = A / (threshold − B), when that is
    /// a positive length (nil otherwise: the fitted signal never gets there).
    public static func flipLength(a: Double, b: Double, threshold: Double) -> Double? {
        guard threshold != b else { return nil }
        let l = a / (threshold - b)
        return l.isFinite && l > 0 ? l : nil
    }
}

/// Where the depth signal is read: sparse channels at resid_mid of one layer, and the
/// direction over them (u = depth-2 mean − depth-1 mean on short lists, sparse model).
public struct DepthSignal: Sendable {
    public let layer: Int
    public let channels: [Int]
    public let direction: [Double]
    /// Cohen's d of the projection between depth 2 and depth 1 on short lists.
    public let separation: Double
    public var site: HookPoint { .residMid(layer) }
}

public struct DilutionPoint: Sendable {
    public let length: Int
    public let accuracyDepth2: Double
    public let accuracyDepth1: Double
    public let signalDepth2: Double     // mean depth signal at the last position, depth-2 prompts
    public let signalDepth1: Double
}

public struct DilutionModelResult: Sendable {
    public let name: String
    public let points: [DilutionPoint]
    public let fit: (a: Double, b: Double)
    /// The sparse mechanism's threshold, used for the prediction.
    public let threshold: Double
    /// The threshold found by patching this model itself (NaN: the patch never flips it).
    public let ownThreshold: Double
    public let predictedFlip: Double?
    /// "signal" (crossing within the sweep), "fit" (A/L + B past the sweep), or "none".
    public let predictedFrom: String
    public let measuredFlip: Int?
    public let distractorAccuracy: Double?
}

public final class DilutionStudy {
    public let dense: Transformer
    public let sparse: Transformer
    public let bridge: Bridge
    public let pairsPerLength: Int
    public private(set) var signal = DepthSignal(layer: 0, channels: [], direction: [], separation: 0)

    public init(dense: Transformer, sparse: Transformer, bridge: Bridge, bridgePath: String, pairsPerLength: Int = 30) throws {
        try bridge.check(dense: dense.config, sparse: sparse.config, path: bridgePath)
        self.dense = dense; self.sparse = sparse; self.bridge = bridge; self.pairsPerLength = pairsPerLength
    }

    /// The candidate depth channels (layer, channel): the attention writes of a sparse
    /// `bracket_counting` circuit file, or, without one, every channel of every layer; kept
    /// only at layers whose resid_mid the bridge holds.
    public static func candidates(circuit path: String?, sparse: ModelConfig, bridge: Bridge) throws -> [(Int, Int)] {
        var found: [(Int, Int)] = []
        if let path {
            let file = try CircuitFile.read(path)
            if let task = file.task, task != "bracket_counting" {
                throw CircuitError.badFile(path: path, "is a circuit for \(task), expected bracket_counting")
            }
            for (i, node) in file.nodes.enumerated() {
                guard let loc = node.location, let idx = node.index else {
                    throw CircuitError.badFile(path: path, "node \(i) has no location and index")
                }
                let bits = loc.split(separator: ".")
                guard bits.count == 2, bits[1] == "attn_out" else { continue }
                // Checked before use: a channel past the model's width would index out of bounds.
                guard let l = Int(bits[0]), (0..<sparse.nLayer).contains(l), idx.rounded() == idx, idx >= 0, idx < Double(sparse.dModel) else {
                    throw CircuitError.badFile(path: path,
                                               "node \(i) (\(loc) channel \(idx)) is outside the sparse model (\(sparse.nLayer) "
                                                       + "layers, d_model \(sparse.dModel))")
                }
                found.append((l, Int(idx)))
            }
            guard !found.isEmpty else { throw CircuitError.badFile(path: path, "the circuit has no attention-write nodes") }
        } else {
            found = (0..<sparse.nLayer).flatMap { l in (0..<sparse.dModel).map { (l, $0) } }
        }
        let held = Set(bridge.sites.map(\.hook))
        found = found.filter { held.contains(HookPoint.residMid($0.0).name) }
        guard !found.isEmpty else {
            throw CircuitError.mismatch("the bridge holds none of the resid_mid sites the depth signal could be at")
        }
        return found
    }

    /// Pairs at one list length, cut to the models' context (their last n_ctx tokens); a pair
    /// whose list no longer fits whole is dropped.
    func pairs(length: Int, seed: UInt64) -> [PromptPair] {
        let n = min(dense.config.nCtx, sparse.config.nCtx)
        func cut(_ p: TaskPrompt) -> TaskPrompt { TaskPrompt(tokens: Array(p.tokens.suffix(n)), target: p.target,
                                                             alternative: p.alternative) }
        func holds(_ p: TaskPrompt, _ opening: String) -> Bool {
            String(decoding: p.tokens.map { UInt8(clamping: $0) }, as: UTF8.self).contains(opening)
        }
        return TaskSuite.bracketCounting.pairs(count: pairsPerLength, seed: seed &+ UInt64(length), length: length)
            .map { PromptPair(presented: cut($0.presented), counterfactual: cut($0.counterfactual)) }
            .filter { holds($0.presented, "= [[") && holds($0.counterfactual, "= [") }
    }

    /// The stream at resid_mid(layer), last position, on the signal's channels: the sparse
    /// model's own values, or the bridge encoder's reading of the dense stream.
    func channelValues(_ tokens: [Int32], sparseSide: Bool, layer: Int, channels: [Int]) throws -> [Double] {
        let model = sparseSide ? sparse : dense
        let point = HookPoint.residMid(layer)
        let enc = bridge.sites.first { $0.hook == point.name }?.encoder
        var values: [Double] = []
        let hooks = Hooks()
        let t = tokens.count, d = model.config.dModel
        hooks.add(point) { ctx in
            let row = ctx.activation.data + (t - 1) * d
            values = channels.map { c in
                if sparseSide { return Double(row[c]) }
                var s = Double(enc!.bias[c])
                for j in 0..<d { s += Double(row[j]) * Double(enc!.weight.data[j * enc!.outputWidth + c]) }
                return s
            }
        }
        try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
        return values
    }

    /// Chooses the depth signal among `candidates` (layer, channel): per layer, u is the
    /// difference of the depth-2 and depth-1 means over that layer's candidates on short
    /// lists, scored by how well the projection on u separates the two (|mean difference| /
    /// pooled standard deviation); the best layer wins.
    public func chooseSignal(candidates: [(Int, Int)]) throws {
        let short = pairs(length: 6, seed: 900)
        var best = DepthSignal(layer: 0, channels: [], direction: [], separation: -1)
        for (l, list) in Dictionary(grouping: candidates, by: { $0.0 }).sorted(by: { $0.key < $1.key }) {
            let channels = list.map(\.1)
            let deep = try short.map { try channelValues($0.presented.tokens, sparseSide: true, layer: l, channels: channels) }
            let flat = try short.map { try channelValues($0.counterfactual.tokens, sparseSide: true, layer: l, channels: channels) }
            let u = zip(Self.mean(deep), Self.mean(flat)).map { $0 - $1 }
            let pd = deep.map { Self.dot($0, u) }, pf = flat.map { Self.dot($0, u) }
            let score = Self.separation(pd, pf)
            if score > best.separation { best = DepthSignal(layer: l, channels: channels, direction: u, separation: score) }
        }
        signal = best
    }

    /// One model's reference points on short lists: the projections of depth-1 and depth-2
    /// means, so that signal(x) = (⟨x, u⟩ − p₁) / (p₂ − p₁).
    func calibration(sparseSide: Bool) throws -> (p1: Double, p2: Double) {
        let short = pairs(length: 6, seed: 900)
        let u = signal.direction
        let deep = try short.map { Self.dot(try channelValues($0.presented.tokens, sparseSide: sparseSide, layer: signal.layer,
                                                              channels: signal.channels), u) }
        let flat = try short.map { Self.dot(try channelValues($0.counterfactual.tokens, sparseSide: sparseSide,
                                                              layer: signal.layer, channels: signal.channels), u) }
        return (Self.mean(flat), Self.mean(deep))
    }

    /// Mean logit difference (] − newline) of depth-2 prompts when the signal at the last
    /// position is set to x: the sparse stream moves along u on the signal's channels; the
    /// dense stream moves along the least-norm direction that changes the encoded projection.
    func logitDiff(withSignalAt x: Double, sparseSide: Bool, calibration cal: (p1: Double, p2: Double),
                   prompts: [TaskPrompt]) throws -> Double {
        let model = sparseSide ? sparse : dense
        let d = model.config.dModel, u = signal.direction, channels = signal.channels
        let enc = bridge.sites.first { $0.hook == signal.site.name }!.encoder
        // g = ∂⟨encoded, u⟩/∂h over the dense stream (E restricted to the channels, times u).
        let g: [Double] = sparseSide ? [] : (0..<d).map { j in
            zip(channels, u).reduce(0) { $0 + Double(enc.weight.data[j * enc.outputWidth + $1.0]) * $1.1 }
        }
        let wanted = cal.p1 + x * (cal.p2 - cal.p1)   // the projection that reads as x
        var total = 0.0
        for p in prompts {
            let t = p.tokens.count
            let hooks = Hooks()
            hooks.add(signal.site) { ctx in
                let row = ctx.activation.data + (t - 1) * d
                if sparseSide {
                    let now = zip(channels, u).reduce(0.0) { $0 + Double(row[$1.0]) * $1.1 }
                    let step = (wanted - now) / max(Self.dot(u, u), 1e-30)
                    for (c, uc) in zip(channels, u) { row[c] += Float(step * uc) }
                    return
                }
                var now = zip(channels, u).reduce(0.0) { $0 + Double(enc.bias[$1.0]) * $1.1 }
                for j in 0..<d { now += Double(row[j]) * g[j] }
                let step = (wanted - now) / max(Self.dot(g, g), 1e-30)
                for j in 0..<d { row[j] += Float(step * g[j]) }
            }
            let s = try model.forward(tokens: p.tokens, batch: 1, seqLen: t, hooks: hooks)
            let l = s.logits.data + (t - 1) * model.config.vocab
            total += Double(l[Int(p.target)] - l[Int(p.alternative)])
        }
        return total / Double(prompts.count)
    }

    /// The signal value where the depth-2 answer flips on short lists: from 1 (short depth-2
    /// lists) down towards 0 (depth 1) and past it, x = 1 − s, until the logit difference
    /// changes sign, then bisect. NaN when it never does (s ≤ 16).
    func threshold(sparseSide: Bool, calibration cal: (p1: Double, p2: Double)) throws -> Double {
        let prompts = pairs(length: 6, seed: 901).map(\.presented)
        func f(_ s: Double) throws -> Double { try logitDiff(withSignalAt: 1 - s, sparseSide: sparseSide, calibration: cal,
                                                             prompts: prompts) }
        guard try f(0) > 0 else { return .nan }
        var lo = 0.0, hi = 0.5
        while try f(hi) > 0 {
            lo = hi
            hi *= 2
            if hi > 16 { return .nan }
        }
        for _ in 0..<20 {
            let mid = (lo + hi) / 2
            if try f(mid) > 0 { lo = mid } else { hi = mid }
        }
        return 1 - (lo + hi) / 2
    }

    public func run(lengths: [Int], distractors: Bool) throws -> [DilutionModelResult] {
        guard !signal.channels.isEmpty else { throw CircuitError.mismatch("choose the depth signal before running the study") }
        var mechanism = Double.nan
        return try [true, false].map { sparseSide in
            let model = sparseSide ? sparse : dense
            let cal = try calibration(sparseSide: sparseSide)
            func read(_ tokens: [Int32]) throws -> Double {
                let p = Self.dot(try channelValues(tokens, sparseSide: sparseSide, layer: signal.layer, channels: signal.channels),
                                 signal.direction)
                return (p - cal.p1) / (cal.p2 - cal.p1)
            }
            var points: [DilutionPoint] = []
            for length in lengths {
                let ps = pairs(length: length, seed: 1000)
                if ps.isEmpty { continue }
                let logits = try TaskEvaluation.lastLogits(model: model, prompts: ps.flatMap(\.prompts).map(\.tokens))
                var right2 = 0, right1 = 0, s2 = 0.0, s1 = 0.0
                for (i, pair) in ps.enumerated() {
                    let l2 = logits[2 * i], l1 = logits[2 * i + 1]
                    if l2[Int(pair.presented.target)] > l2[Int(pair.presented.alternative)] { right2 += 1 }
                    if l1[Int(pair.counterfactual.target)] > l1[Int(pair.counterfactual.alternative)] { right1 += 1 }
                    s2 += try read(pair.presented.tokens)
                    s1 += try read(pair.counterfactual.tokens)
                }
                let n = Double(ps.count)
                points.append(DilutionPoint(length: length, accuracyDepth2: Double(right2) / n, accuracyDepth1: Double(right1) / n,
                                            signalDepth2: s2 / n, signalDepth1: s1 / n))
            }
            let ls = points.map { Double($0.length) }, s2 = points.map(\.signalDepth2)
            let fit = DilutionPredictor.fit(lengths: ls, signal: s2)
            let own = try threshold(sparseSide: sparseSide, calibration: cal)
            if sparseSide { mechanism = own }
            var predicted: Double?, from = "none"
            if !mechanism.isNaN {
                if let l = DilutionPredictor.crossing(lengths: ls, signal: s2, threshold: mechanism) {
                    predicted = l; from = "signal"
                } else if let l = DilutionPredictor.flipLength(a: fit.a, b: fit.b, threshold: mechanism), l > (ls.last ?? 0) {
                    predicted = l; from = "fit"
                }
            }
            let measured = points.first { $0.accuracyDepth2 < 0.5 }?.length
            let distractor = distractors ? try distractorAccuracy(model) : nil
            return DilutionModelResult(name: sparseSide ? "sparse" : "dense", points: points, fit: fit, threshold: mechanism,
                                       ownThreshold: own, predictedFlip: predicted, predictedFrom: from, measuredFlip: measured,
                                       distractorAccuracy: distractor)
        }
    }

    /// A comment holding `[` before a flat list: the right answer is still the newline.
    func distractorAccuracy(_ model: Transformer) throws -> Double {
        var g = CodeGenerator(seed: 4242)
        var prompts: [TaskPrompt] = []
        for _ in 0..<pairsPerLength {
            let n = g.int(3...12)
            let text = "# see [ \(g.pick(CodeGenerator.words))\n\(g.name()) = "
                    + "[" + (0..<n).map { _ in g.number() }.joined(separator: ", ") + "]"
            prompts.append(TaskPrompt(tokens: text.utf8.map { Int32($0) }, target: 10, alternative: 93))
        }
        let l = try TaskEvaluation.lastLogits(model: model, prompts: prompts.map(\.tokens))
        return Double(zip(prompts, l).filter { $1[10] > $1[93] }.count) / Double(prompts.count)
    }

    static func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(max(xs.count, 1)) }
    static func mean(_ rows: [[Double]]) -> [Double] {
        guard let first = rows.first else { return [] }
        return (0..<first.count).map { k in rows.reduce(0) { $0 + $1[k] } / Double(rows.count) }
    }
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    static func separation(_ a: [Double], _ b: [Double]) -> Double {
        let ma = mean(a), mb = mean(b)
        let va = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) } / Double(max(a.count - 1, 1))
        let vb = b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) } / Double(max(b.count - 1, 1))
        return abs(ma - mb) / (((va + vb) / 2).squareRoot() + 1e-6)
    }
}
