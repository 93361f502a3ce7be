// Context dilution in the bracket task. The sparse circuit keeps nesting depth as the size
// of an attention average over the list, so the depth signal at the last position shrinks
// as the list grows, until the depth-2 answer `]` loses to the newline. The study:
//
//  1. measures accuracy against list length for both models (depth 2 and depth 1 prompts);
//  2. picks the sparse residual channel that carries depth (the circuit's attention-write
//     channels, ranked by how well they separate depth 2 from depth 1 on short lists);
//  3. reads that channel against length — in the sparse model directly, in the dense model
//     through the bridge encoder — and fits s(L) = A / L + B;
//  4. finds, by patching, the channel value at which each model's answer flips (for the
//     dense model, the smallest edit of its stream that sets the encoded channel);
//  5. predicts the flip length as the L where the fitted signal reaches that threshold,
//     and compares it with the measured length where depth-2 accuracy falls below one half.

import Bridges
import Foundation
import Tasks
import Tensors
import Transformers

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

    /// The length at which A / L + B reaches `threshold`: L = A / (threshold − B), when that is
    /// a positive length (nil otherwise: the fitted signal never gets there).
    public static func flipLength(a: Double, b: Double, threshold: Double) -> Double? {
        guard threshold != b else { return nil }
        let l = a / (threshold - b)
        return l.isFinite && l > 0 ? l : nil
    }
}

public struct DilutionPoint: Sendable {
    public let length: Int
    public let accuracyDepth2: Double
    public let accuracyDepth1: Double
    public let signalDepth2: Double     // mean channel value at the last position, depth-2 prompts
    public let signalDepth1: Double
}

public struct DilutionModelResult: Sendable {
    public let name: String
    public let points: [DilutionPoint]
    public let fit: (a: Double, b: Double)
    public let threshold: Double
    public let predictedFlip: Double?
    public let measuredFlip: Int?
    public let distractorAccuracy: Double?
}

public final class DilutionStudy {
    public let dense: Transformer
    public let sparse: Transformer
    public let bridge: Bridge
    public let pairsPerLength: Int
    public private(set) var site: HookPoint = .residMid(0)
    public private(set) var channel = 0
    public private(set) var channelSeparation = 0.0

    public init(dense: Transformer, sparse: Transformer, bridge: Bridge, bridgePath: String, pairsPerLength: Int = 30) throws {
        try bridge.check(dense: dense.config, sparse: sparse.config, path: bridgePath)
        self.dense = dense; self.sparse = sparse; self.bridge = bridge; self.pairsPerLength = pairsPerLength
    }

    /// Pairs at one list length, cut to the models' context (their last n_ctx tokens); a pair
    /// whose list no longer fits whole is dropped.
    func pairs(length: Int, seed: UInt64) -> [PromptPair] {
        let n = min(dense.config.nCtx, sparse.config.nCtx)
        func cut(_ p: TaskPrompt) -> TaskPrompt { TaskPrompt(tokens: Array(p.tokens.suffix(n)), target: p.target, alternative: p.alternative) }
        func holds(_ p: TaskPrompt, _ opening: String) -> Bool {
            String(decoding: p.tokens.map { UInt8(clamping: $0) }, as: UTF8.self).contains(opening)
        }
        return TaskSuite.bracketCounting.pairs(count: pairsPerLength, seed: seed &+ UInt64(length), length: length)
            .map { PromptPair(presented: cut($0.presented), counterfactual: cut($0.counterfactual)) }
            .filter { holds($0.presented, "= [[") && holds($0.counterfactual, "= [") }
    }

    /// The stream at `point`, last position, of one prompt: sparse directly, dense through the encoder.
    func channelValue(_ tokens: [Int32], sparseSide: Bool, point: HookPoint, channel c: Int, encoder: BridgeMap?) throws -> Double {
        let model = sparseSide ? sparse : dense
        var value = 0.0
        let hooks = Hooks()
        let t = tokens.count, d = model.config.dModel
        hooks.add(point) { ctx in
            let row = ctx.activation.data + (t - 1) * d
            if sparseSide { value = Double(row[c]) } else {
                var s = Double(encoder!.bias[c])
                for j in 0..<d { s += Double(row[j]) * Double(encoder!.weight.data[j * encoder!.outputWidth + c]) }
                value = s
            }
        }
        try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
        return value
    }

    /// Chooses the depth channel: among `candidates` (layer, channel) of the sparse model's
    /// attention writes, the one whose value at resid_mid(layer) best separates depth 2 from 1
    /// on short lists (|mean difference| / pooled standard deviation).
    public func chooseChannel(candidates: [(Int, Int)]) throws {
        let short = pairs(length: 6, seed: 900)
        var best = (score: -1.0, layer: 0, channel: 0)
        let byLayer = Dictionary(grouping: candidates, by: { $0.0 })
        for (l, list) in byLayer {
            let point = HookPoint.residMid(l)
            var a: [[Double]] = list.map { _ in [] }, b = a
            let d = sparse.config.dModel
            for pair in short {
                for (side, tokens) in [(0, pair.presented.tokens), (1, pair.counterfactual.tokens)] {
                    let hooks = Hooks()
                    var row = [Float](repeating: 0, count: d)
                    let t = tokens.count
                    hooks.add(point) { ctx in row = Array(UnsafeBufferPointer(start: ctx.activation.data + (t - 1) * d, count: d)) }
                    try sparse.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
                    for (k, (_, c)) in list.enumerated() {
                        if side == 0 { a[k].append(Double(row[c])) } else { b[k].append(Double(row[c])) }
                    }
                }
            }
            for (k, (_, c)) in list.enumerated() {
                let ma = a[k].reduce(0, +) / Double(a[k].count), mb = b[k].reduce(0, +) / Double(b[k].count)
                let va = a[k].reduce(0) { $0 + ($1 - ma) * ($1 - ma) } / Double(max(a[k].count - 1, 1))
                let vb = b[k].reduce(0) { $0 + ($1 - mb) * ($1 - mb) } / Double(max(b[k].count - 1, 1))
                let score = abs(ma - mb) / (((va + vb) / 2).squareRoot() + 1e-6)
                if score > best.score { best = (score, l, c) }
            }
        }
        site = .residMid(best.layer); channel = best.channel; channelSeparation = best.score
    }

    /// Mean logit difference (] − newline) of depth-2 prompts when the channel is set to x
    /// at the last position (dense: the smallest edit of the stream that sets the encoded value).
    func logitDiff(withChannelAt x: Double, sparseSide: Bool, prompts: [TaskPrompt]) throws -> Double {
        let model = sparseSide ? sparse : dense
        let d = model.config.dModel, enc = bridge.sites.first { $0.hook == site.name }!.encoder
        var total = 0.0
        for p in prompts {
            let t = p.tokens.count
            let hooks = Hooks()
            hooks.add(site) { ctx in
                let row = ctx.activation.data + (t - 1) * d
                if sparseSide { row[self.channel] = Float(x); return }
                // e_c(h) = h·E[:, c] + e_c; move h along E[:, c] so that e_c becomes x.
                var current = Double(enc.bias[self.channel]), norm = 0.0
                for j in 0..<d {
                    let u = Double(enc.weight.data[j * enc.outputWidth + self.channel])
                    current += Double(row[j]) * u; norm += u * u
                }
                let step = (x - current) / max(norm, 1e-30)
                for j in 0..<d { row[j] += Float(step * Double(enc.weight.data[j * enc.outputWidth + self.channel])) }
            }
            let s = try model.forward(tokens: p.tokens, batch: 1, seqLen: t, hooks: hooks)
            let l = s.logits.data + (t - 1) * model.config.vocab
            total += Double(l[Int(p.target)] - l[Int(p.alternative)])
        }
        return total / Double(prompts.count)
    }

    /// The channel value where the depth-2 answer flips: starting from the depth-2 value v₂ on
    /// short lists, move towards (and past) the depth-1 value v₁, x(s) = v₂ + s·(v₁ − v₂), until
    /// the logit difference changes sign, then bisect. NaN when it never does (s ≤ 16).
    func threshold(sparseSide: Bool) throws -> Double {
        let short = pairs(length: 6, seed: 901)
        let prompts = short.map(\.presented)
        let enc = bridge.sites.first { $0.hook == site.name }?.encoder
        func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(max(xs.count, 1)) }
        let v2 = mean(try short.map { try channelValue($0.presented.tokens, sparseSide: sparseSide, point: site, channel: channel, encoder: enc) })
        let v1 = mean(try short.map { try channelValue($0.counterfactual.tokens, sparseSide: sparseSide, point: site, channel: channel, encoder: enc) })
        func f(_ s: Double) throws -> Double { try logitDiff(withChannelAt: v2 + s * (v1 - v2), sparseSide: sparseSide, prompts: prompts) }
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
        return v2 + (lo + hi) / 2 * (v1 - v2)
    }

    public func run(lengths: [Int], distractors: Bool) throws -> [DilutionModelResult] {
        let enc = bridge.sites.first { $0.hook == site.name }?.encoder
        guard enc != nil else { throw BridgeError.badFile(path: "bridge", "holds no site \(site.name) for the depth channel") }
        return try [true, false].map { sparseSide in
            let model = sparseSide ? sparse : dense
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
                    s2 += try channelValue(pair.presented.tokens, sparseSide: sparseSide, point: site, channel: channel, encoder: enc)
                    s1 += try channelValue(pair.counterfactual.tokens, sparseSide: sparseSide, point: site, channel: channel, encoder: enc)
                }
                let n = Double(ps.count)
                points.append(DilutionPoint(length: length, accuracyDepth2: Double(right2) / n, accuracyDepth1: Double(right1) / n,
                                            signalDepth2: s2 / n, signalDepth1: s1 / n))
            }
            let fit = DilutionPredictor.fit(lengths: points.map { Double($0.length) }, signal: points.map(\.signalDepth2))
            let th = try threshold(sparseSide: sparseSide)
            let predicted = th.isNaN ? nil : DilutionPredictor.flipLength(a: fit.a, b: fit.b, threshold: th)
            let measured = points.first { $0.accuracyDepth2 < 0.5 }?.length
            var distractor: Double?
            if distractors {
                // A comment holding `[` before a flat list: the right answer is still the newline.
                var g = CodeGenerator(seed: 4242)
                var prompts: [TaskPrompt] = []
                for _ in 0..<pairsPerLength {
                    let n = g.int(3...12)
                    let text = "# see [ \(g.pick(CodeGenerator.words))\n\(g.name()) = [" + (0..<n).map { _ in g.number() }.joined(separator: ", ") + "]"
                    prompts.append(TaskPrompt(tokens: text.utf8.map { Int32($0) }, target: 10, alternative: 93))
                }
                let l = try TaskEvaluation.lastLogits(model: model, prompts: prompts.map(\.tokens))
                distractor = Double(zip(prompts, l).filter { $1[10] > $1[93] }.count) / Double(prompts.count)
            }
            return DilutionModelResult(name: sparseSide ? "sparse" : "dense", points: points, fit: fit, threshold: th,
                                       predictedFlip: predicted, measuredFlip: measured, distractorAccuracy: distractor)
        }
    }
}
