// Hybrid forward passes through a bridge. Direction d2s: run the dense model up to the
// site, map its residual stream through the encoder, and finish in the sparse model (its
// stream at the site replaced); s2d: the reverse through the decoder. The residual stream
// at a bridge site is the model's whole state, so replacing it makes everything after the
// site depend on the mapped activation only.
//
// Metrics follow SAELens: CE of the target model clean, spliced, and with the site
// zero-ablated or mean-ablated; ce_recovered = (CE_ablated − CE_spliced) /
// (CE_ablated − CE_clean); mean KL(P_clean ‖ P_spliced) per token.

import Foundation
import Tasks
import Tensors
import Model
import Text

public struct SpliceResult: Sendable {
    public let site: String
    public let direction: BridgeDirection
    public let tokens: Int
    public let ceClean: Double
    public let ceSpliced: Double
    public let ceZeroAblated: Double
    public let ceMeanAblated: Double
    public let klClean: Double
    public var recoveredZero: Double { (ceZeroAblated - ceSpliced) / (ceZeroAblated - ceClean) }
    public var recoveredMean: Double { (ceMeanAblated - ceSpliced) / (ceMeanAblated - ceClean) }
    public var taskAccuracyClean: Double?
    public var taskAccuracySpliced: Double?
}

public struct Splicer {
    public let bridge: Bridge
    public let dense: Transformer
    public let sparse: Transformer

    public init(bridge: Bridge, dense: Transformer, sparse: Transformer, bridgePath: String) throws {
        try bridge.check(dense: dense.config, sparse: sparse.config, path: bridgePath)
        self.bridge = bridge; self.dense = dense; self.sparse = sparse
    }

    func models(_ d: BridgeDirection) -> (source: Transformer, target: Transformer) {
        d == .denseToSparse ? (dense, sparse) : (sparse, dense)
    }

    /// The target model's logits [B·T, vocab] when it is entered at `site` from the source model.
    public func splicedLogits(site: BridgeSite, point: HookPoint, direction: BridgeDirection,
                              tokens: [Int32], batch: Int, seqLen: Int) throws -> Tensor {
        let (source, target) = models(direction)
        let map = site.map(direction)
        let mapped = Tensor(zeros: [batch * seqLen, map.outputWidth])
        let capture = Hooks()
        capture.add(point) { ctx in map.apply(ctx.activation.reshaped([batch * seqLen, map.inputWidth]), into: mapped) }
        try source.forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: capture, stopEarly: true)
        let replace = Hooks()
        replace.replace(point, with: mapped)
        return try target.forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: replace).logits.copy()
    }

    /// CE metrics and KL over `sequences` of `seqLen` (+1 for the targets) from `corpus`.
    public func measure(site name: String, direction: BridgeDirection, corpus: inout some TokenStream, sequences: Int,
                        seqLen t: Int, batch: Int = 8, task: BinaryTask? = nil, taskPairs: Int = 100) throws -> SpliceResult {
        let site = try bridge.site(name)
        let (_, target) = models(direction)
        let point = try HookPoint.parse(name, config: target.config)
        let mean = direction == .denseToSparse ? site.meanSparse : site.meanDense
        var sums = (clean: 0.0, spliced: 0.0, zero: 0.0, mean: 0.0, kl: 0.0), count = 0
        var done = 0
        while done < sequences {
            let b = min(batch, sequences - done)
            var raw: [Int32] = []
            for _ in 0..<b {
                guard let s = try corpus.next(t + 1) else { throw BridgeError.noTokens("the corpus ran out") }
                raw += s
            }
            let (inputs, targets) = CrossEntropy.split(raw, batch: b, seqLen: t)
            let clean = try target.forward(tokens: inputs, batch: b, seqLen: t).logits.copy()
            let spliced = try splicedLogits(site: site, point: point, direction: direction, tokens: inputs, batch: b, seqLen: t)
            let zeroHooks = Hooks()
            zeroHooks.add(point) { $0.activation.fill(0) }
            let zero = try target.forward(tokens: inputs, batch: b, seqLen: t, hooks: zeroHooks).logits.copy()
            let meanHooks = Hooks()
            meanHooks.add(point) { ctx in
                let n = ctx.activation.count / mean.count
                for r in 0..<n { (ctx.activation.data + r * mean.count).update(from: mean.data, count: mean.count) }
            }
            let meaned = try target.forward(tokens: inputs, batch: b, seqLen: t, hooks: meanHooks).logits.copy()
            let n = Double(targets.count)
            sums.clean += CrossEntropy.loss(logits: clean, targets: targets).loss * n
            sums.spliced += CrossEntropy.loss(logits: spliced, targets: targets).loss * n
            sums.zero += CrossEntropy.loss(logits: zero, targets: targets).loss * n
            sums.mean += CrossEntropy.loss(logits: meaned, targets: targets).loss * n
            sums.kl += Self.klDivergence(clean, spliced)
            count += targets.count
            done += b
        }
        let c = Double(count)
        var result = SpliceResult(site: name, direction: direction, tokens: count, ceClean: sums.clean / c,
                                  ceSpliced: sums.spliced / c, ceZeroAblated: sums.zero / c, ceMeanAblated: sums.mean / c,
                                  klClean: sums.kl / c)
        if let task {
            let pairs = task.pairs(count: taskPairs, seed: 1)
            let prompts = pairs.flatMap(\.prompts).map(\.tokens)
            let cleanLogits = try TaskEvaluation.lastLogits(model: target, prompts: prompts)
            let hybridLogits = try TaskEvaluation.lastLogits(nCtx: min(dense.config.nCtx, sparse.config.nCtx),
                                                             vocab: target.config.vocab, prompts: prompts) { tokens, b, len in
                try self.splicedLogits(site: site, point: point, direction: direction, tokens: tokens, batch: b, seqLen: len)
            }
            result.taskAccuracyClean = try TaskEvaluation.evaluate(task: task, pairs: pairs, logits: cleanLogits).accuracy
            result.taskAccuracySpliced = try TaskEvaluation.evaluate(task: task, pairs: pairs, logits: hybridLogits).accuracy
        }
        return result
    }

    /// Σ over rows of KL(softmax(p) ‖ softmax(q)), in Float64.
    static func klDivergence(_ p: Tensor, _ q: Tensor) -> Double {
        let (rows, v) = p.matrixShape
        var total = 0.0
        for r in 0..<rows {
            let a = p.data + r * v, b = q.data + r * v
            var ma = -Double.infinity, mb = -Double.infinity
            for j in 0..<v { ma = max(ma, Double(a[j])); mb = max(mb, Double(b[j])) }
            var za = 0.0, zb = 0.0
            for j in 0..<v { za += exp(Double(a[j]) - ma); zb += exp(Double(b[j]) - mb) }
            let la = log(za) + ma, lb = log(zb) + mb
            for j in 0..<v {
                let lpa = Double(a[j]) - la, lpb = Double(b[j]) - lb
                total += exp(lpa) * (lpa - lpb)
            }
        }
        return total
    }
}
