// A faithfulness check of the DePass paper's kind: rank units (attention heads, MLP
// neurons, or input tokens) by DePass and by baselines, remove the top k by each ranking,
// and see how far task accuracy falls. A ranking that finds the units the model really
// uses makes accuracy fall fastest.
//
// Removal is mean ablation: a head's z (or a neuron's activation) is replaced at every
// position by its mean over the synthetic corpus; a token's embedding by the mean token
// embedding. Baselines: activation norm (‖z_h W_O^h‖ or |m_i|·‖W_out[i]‖ at the last
// position) and attribution patching, (a − mean)·∂(ℓ_target − ℓ_alt)/∂a summed over
// positions. Tokens: Disrupt-top removes the top k; Recover-top keeps only the top k.

import Foundation
import Tasks
import Tensors
import Training
import Model
import Text

public enum FaithfulnessUnit: String, Sendable, CaseIterable { case head, neuron, token }

public struct FaithfulnessCurve: Sendable {
    public let method: String          // "depass", "norm", "atp" (+ token variants)
    public let ks: [Int]
    public let accuracy: [Double]      // after removing the top k (tokens, recover: keeping only the top k)
}

public struct Faithfulness {
    public let model: Transformer
    public let rule: MLPRule

    public init(model: Transformer, rule: MLPRule = .softmax) {
        self.model = model
        self.rule = rule
    }

    /// Mean z per layer [n_head·d_head] and mean MLP activation per layer [d_mlp] over corpus text.
    public func means(corpus: inout some TokenStream, sequences: Int, seqLen: Int) throws -> (z: [[Float]], post: [[Float]]) {
        let c = model.config
        var zSum = [[Double]](repeating: .init(repeating: 0, count: c.attentionWidth), count: c.nLayer)
        var pSum = [[Double]](repeating: .init(repeating: 0, count: c.dMLP), count: c.nLayer)
        var rows = 0
        let hooks = Hooks()
        for l in 0..<c.nLayer {
            hooks.add(.z(l)) { ctx in
                let a = c.attentionWidth, n = ctx.activation.count / a
                for r in 0..<n { for j in 0..<a { zSum[l][j] += Double(ctx.activation.data[r * a + j]) } }
            }
            hooks.add(.mlpPost(l)) { ctx in
                let f = c.dMLP, n = ctx.activation.count / f
                for r in 0..<n { for j in 0..<f { pSum[l][j] += Double(ctx.activation.data[r * f + j]) } }
            }
        }
        for _ in 0..<sequences {
            guard let s = try corpus.next(seqLen) else { break }
            try model.forward(tokens: s, batch: 1, seqLen: seqLen, hooks: hooks)
            rows += seqLen
        }
        return (zSum.map { $0.map { Float($0 / Double(max(rows, 1))) } }, pSum.map { $0.map { Float($0 / Double(max(rows, 1))) } })
    }

    /// Is the prompt answered right (target beats alternative) with `hooks` applied?
    func correct(_ p: TaskPrompt, hooks: Hooks? = nil) throws -> Bool {
        let tokens = Array(p.tokens.suffix(model.config.nCtx))
        let s = try model.forward(tokens: tokens, batch: 1, seqLen: tokens.count, hooks: hooks)
        let row = s.logits.data + (tokens.count - 1) * model.config.vocab
        return row[Int(p.target)] > row[Int(p.alternative)]
    }

    /// Hooks that mean-ablate the given units: (layer, index) for heads or neurons.
    func ablation(_ unit: FaithfulnessUnit, _ units: [(Int, Int)], means: (z: [[Float]], post: [[Float]])) -> Hooks {
        let c = model.config, hooks = Hooks()
        let byLayer = Dictionary(grouping: units, by: { $0.0 })
        for (l, list) in byLayer {
            switch unit {
            case .head:
                hooks.add(.z(l)) { ctx in
                    let a = c.attentionWidth, n = ctx.activation.count / a
                    for (_, h) in list { for r in 0..<n { for j in (h * c.dHead)..<((h + 1) * c.dHead) {
                        ctx.activation.data[r * a + j] = means.z[l][j]
                    } } }
                }
            case .neuron:
                hooks.add(.mlpPost(l)) { ctx in
                    let f = c.dMLP, n = ctx.activation.count / f
                    for (_, i) in list { for r in 0..<n { ctx.activation.data[r * f + i] = means.post[l][i] } }
                }
            case .token: break
            }
        }
        return hooks
    }

    /// Per-unit scores for one prompt by each method: [method: [(layer, index): score]].
    func scores(_ unit: FaithfulnessUnit, _ p: TaskPrompt, means: (z: [[Float]], post: [[Float]])) throws -> [String: [Double]] {
        let c = model.config
        let tokens = Array(p.tokens.suffix(c.nCtx)), t = tokens.count
        let run = try DecomposedForward(model: model, tokens: tokens, rule: rule)
        var depass: [Double] = [], norm: [Double] = [], atp: [Double] = []
        // Gradient of the logit difference with respect to z and the MLP activations.
        let grads = try gradients(tokens, target: p.target, alternative: p.alternative)
        for l in 0..<c.nLayer {
            let acts = run.state.layer(l)
            switch unit {
            case .head:
                let (comps, start) = run.headComponents(layer: l)
                let pass = try run.propagate(comps, from: start)
                let a = run.attribution(of: pass, names: comps.names, target: p.target, alternative: p.alternative)
                depass += a.scores[1...c.nHead]
                for h in 0..<c.nHead {
                    // The norm baseline: the head's component as it leaves the model.
                    let head = pass.final.component(h + 1)
                    norm.append(Double(VectorOps.sumSquares(head.data + (t - 1) * c.dModel, c.dModel, centre: 0)).squareRoot())
                    var s = 0.0
                    for r in 0..<t { for j in (h * c.dHead)..<((h + 1) * c.dHead) {
                        let idx = r * c.attentionWidth + j
                        s += Double(acts.z.data[idx] - means.z[l][j]) * Double(grads.z[l].data[idx])
                    } }
                    atp.append(s)
                }
            case .neuron:
                for range in DecomposedForward.neuronChunks(0..<c.dMLP, size: 128) {
                    let (comps, sp) = run.neuronComponents(layer: l, neurons: range)
                    let a = try run.attribute(comps, from: sp, target: p.target, alternative: p.alternative)
                    depass += a.scores[0..<range.count]
                }
                let w = model.weights.blocks[l].W_out
                for i in 0..<c.dMLP {
                    let m = acts.mlpPost.data[(t - 1) * c.dMLP + i]
                    norm.append(Double(abs(m)) * Double(VectorOps.sumSquares(w.data + i * c.dModel, c.dModel, centre: 0)).squareRoot())
                    var s = 0.0
                    for r in 0..<t {
                        let idx = r * c.dMLP + i
                        s += Double(acts.mlpPost.data[idx] - means.post[l][i]) * Double(grads.post[l].data[idx])
                    }
                    atp.append(s)
                }
            case .token:
                break
            }
        }
        if unit == .token {
            let (comps, start) = run.tokenComponents()
            let pass = try run.propagate(comps, from: start)
            let a = run.attribution(of: pass, names: comps.names, target: p.target, alternative: p.alternative)
            depass = Array(a.scores[0..<t])
            for pos in 0..<t {
                // The norm baseline: the token's component as it leaves the model, at its position.
                norm.append(Double(VectorOps.sumSquares(pass.final.component(pos).data + pos * c.dModel, c.dModel, centre: 0)).squareRoot())
                // Attribution patching on the embedding: (e − ē)·∂/∂e at the token's position.
                var s = 0.0
                for j in 0..<c.dModel {
                    s += Double(run.state.embed.data[pos * c.dModel + j] - grads.meanEmbedding[j]) * Double(grads.embed.data[pos * c.dModel + j])
                }
                atp.append(s)
            }
        }
        return ["depass": depass, "norm": norm, "atp": atp]
    }

    struct Gradients { let z: [Tensor]; let post: [Tensor]; let embed: Tensor; let meanEmbedding: [Float] }

    /// ∂(ℓ_target − ℓ_alt at the last position)/∂(z, MLP activations, token embeddings).
    func gradients(_ tokens: [Int32], target: Int32, alternative: Int32) throws -> Gradients {
        let c = model.config, t = tokens.count
        var z: [Tensor] = [], post: [Tensor] = []
        var embed = Tensor(zeros: [t, c.dModel])
        let hooks = Hooks()
        for l in 0..<c.nLayer {
            let zl = Tensor(zeros: [t, c.attentionWidth]), pl = Tensor(zeros: [t, c.dMLP])
            z.append(zl); post.append(pl)
            hooks.add(.z(l)) { zl.copy(from: $0.activation) }
            hooks.add(.mlpPost(l)) { pl.copy(from: $0.activation) }
        }
        hooks.add(.embed) { embed = $0.activation.copy() }
        try LossGradient.logitDifference(model: model, tokens: tokens, target: target, alternative: alternative, hooks: hooks)
        var mean = [Float](repeating: 0, count: c.dModel)
        for v in 0..<c.vocab { for j in 0..<c.dModel { mean[j] += model.weights.W_E.data[v * c.dModel + j] / Float(c.vocab) } }
        return Gradients(z: z, post: post, embed: embed, meanEmbedding: mean)
    }

    /// Accuracy after removing the top k units by each method, over the prompts of `pairs`.
    public func curves(_ unit: FaithfulnessUnit, pairs: [PromptPair], ks: [Int],
                       means: (z: [[Float]], post: [[Float]])) throws -> [FaithfulnessCurve] {
        let c = model.config
        let prompts = pairs.flatMap(\.prompts)
        let methods = ["depass", "norm", "atp"]
        let keys = unit == .token ? methods.flatMap { ["\($0)-disrupt", "\($0)-recover"] } : methods
        var hits = Dictionary(uniqueKeysWithValues: keys.map { ($0, [Int](repeating: 0, count: ks.count)) })
        for p in prompts {
            let s = try scores(unit, p, means: means)
            for m in methods {
                let order = s[m]!.indices.sorted { s[m]![$0] > s[m]![$1] }
                if unit == .token {
                    let tokens = Array(p.tokens.suffix(c.nCtx))
                    for (variant, keepTop) in [("disrupt", false), ("recover", true)] {
                        for (i, k) in ks.enumerated() {
                            let top = Set(order.prefix(k))
                            let hooks = tokenAblation(tokens.count, remove: { keepTop ? !top.contains($0) : top.contains($0) })
                            if try correct(p, hooks: hooks) { hits["\(m)-\(variant)"]![i] += 1 }
                        }
                    }
                } else {
                    let perLayer = unit == .head ? c.nHead : c.dMLP
                    for (i, k) in ks.enumerated() {
                        let units = order.prefix(k).map { ($0 / perLayer, $0 % perLayer) }
                        let ok = try correct(p, hooks: ablation(unit, units, means: means))
                        hits[m]![i] += ok ? 1 : 0
                    }
                }
            }
        }
        return hits.keys.sorted().map { key in
            FaithfulnessCurve(method: key, ks: ks, accuracy: hits[key]!.map { Double($0) / Double(prompts.count) })
        }
    }

    /// Replaces the token embedding at removed positions by the mean token embedding.
    func tokenAblation(_ t: Int, remove: @escaping (Int) -> Bool) -> Hooks {
        let c = model.config, hooks = Hooks()
        var mean = [Float](repeating: 0, count: c.dModel)
        for v in 0..<c.vocab { for j in 0..<c.dModel { mean[j] += model.weights.W_E.data[v * c.dModel + j] / Float(c.vocab) } }
        hooks.add(.embed) { ctx in
            for pos in 0..<t where remove(pos) {
                (ctx.activation.data + pos * c.dModel).update(from: mean, count: c.dModel)
            }
        }
        return hooks
    }
}
