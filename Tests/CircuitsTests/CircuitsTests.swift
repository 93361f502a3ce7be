import Circuits
import Foundation
import Tasks
import Tensors
import Testing
import Model
import Text

/// A stream of one repeated short text (for ablation means).
struct RepeatingText: TokenStream {
    let text: [Int32]
    var position = 0
    var description: String { "repeat" }
    mutating func next(_ length: Int) throws -> [Int32]? {
        defer { position += length }
        return (0..<length).map { text[(position + $0) % text.count] }
    }
}

@Suite("Circuits")
struct CircuitsTests {
    /// One layer, RMSNorm, no biases. The answer (X after A, Y after B) is planted on one path:
    /// residual channel 0 of the token embedding → the final norm's channel 0 → the unembedding.
    func plantedModel() throws -> Transformer {
        let c = ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 16, nCtx: 16, norm: .rms, bias: false)
        let m = try Transformer(config: c, seed: 3)
        var rng = SeededRandom(seed: 4)
        let w = m.weights
        for p in w.parameters where p.role == .weight || p.role == .outputWeight {
            for i in 0..<p.tensor.count { p.tensor.data[i] = 0.05 * rng.nextNormal() }
        }
        for v in 0..<c.vocab {
            w.W_E.data[v * 8] = 0
            for j in 1..<8 { w.W_E.data[v * 8 + j] = rng.nextNormal() }
        }
        w.W_E.data[65 * 8] = 3    // A
        w.W_E.data[66 * 8] = -3   // B
        let W_U = w.W_U!
        for j in 0..<8 { W_U.data[j * c.vocab + 88] = 0; W_U.data[j * c.vocab + 89] = 0 }
        W_U.data[0 * c.vocab + 88] = 4    // X
        W_U.data[0 * c.vocab + 89] = -4   // Y
        return m
    }

    func prompts() -> [TaskPrompt] {
        ["zq", "ab", "mm", "pq"].flatMap { prefix in
            let base = prefix.utf8.map { Int32($0) }
            return [TaskPrompt(tokens: base + [65], target: 88, alternative: 89),
                    TaskPrompt(tokens: base + [66], target: 89, alternative: 88)]
        }
    }

    /// The planted model and a pruner on it, ablating to means over text without A or B.
    func plantedPruner(steps: Int, targetLoss: Double) throws -> (Transformer, Pruner) {
        let model = try plantedModel()
        var text = RepeatingText(text: "hello world, no a or b here".utf8.map { Int32($0) })
        let means = try AblationValues.means(model: model, corpus: &text, sequences: 4, seqLen: 16)
        var options = PruneOptions()
        options.steps = steps
        options.learningRate = 0.05
        options.targetLoss = targetLoss
        return (model, Pruner(model: model, ablation: means, options: options))
    }

    @Test("pruning finds the planted one-path solution")
    func findsPlantedPath() throws {
        let (model, pruner) = try plantedPruner(steps: 150, targetLoss: 0.05)
        let ps = prompts()
        #expect(try pruner.evaluate(NodeMask.all(model.config, open: true), prompts: ps).accuracy == 1)
        try pruner.optimize(prompts: ps)
        guard let found = try pruner.bisect(prompts: ps) else {
            Issue.record("no circuit reached the target loss")
            return
        }
        let mask = pruner.topK(found.k)
        let finalIn = NodeLocation(kind: "final_in", layer: -1)
        #expect(mask.open[finalIn]![0], "the planted channel must be in the circuit")
        #expect(found.k <= 3, "the circuit should be the planted path, found \(found.k) nodes")
        #expect(try pruner.evaluate(mask, prompts: ps).accuracy == 1)
        #expect(try pruner.evaluate(mask.inverted(), prompts: ps).accuracy <= 0.5)
    }

    @Test("the ranking puts the final hard mask first, and sizing keeps the confidence margin")
    func rankingAndMargin() throws {
        let (model, pruner) = try plantedPruner(steps: 40, targetLoss: 0.3)
        let means = pruner.ablation
        let ps = prompts()
        // Fresh batches: each step sees a different half of the prompts.
        try pruner.optimize(batches: { step in Array(ps[(step % 2) * 4..<(step % 2) * 4 + 4]) })
        let hard = pruner.hardMask
        #expect(pruner.topK(hard.openCount).open == hard.open)

        // The standard error against an independent computation from the logits.
        let score = try pruner.evaluate(hard, prompts: ps)
        let hooks = hard.hooks(model.config, ablation: means)
        var losses: [Double] = []
        for p in ps {
            let logits = try model.forward(tokens: p.tokens, batch: 1, seqLen: p.tokens.count, hooks: hooks).logits
            let row = (p.tokens.count - 1) * model.config.vocab
            let margin = Double(logits.data[row + Int(p.target)] - logits.data[row + Int(p.alternative)])
            losses.append(log1p(exp(-margin)))
        }
        let mean = losses.reduce(0, +) / Double(losses.count)
        let sd = (losses.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(losses.count - 1)).squareRoot()
        #expect(abs(score.loss - mean) < 1e-9)
        #expect(abs(score.standardError - sd / Double(losses.count).squareRoot()) < 1e-9)

        // What the bisection picks with a margin keeps the margin.
        guard let careful = try pruner.bisect(prompts: ps, confidence: 3) else {
            Issue.record("no circuit reached the target loss")
            return
        }
        let s = try pruner.evaluate(pruner.topK(careful.k), prompts: ps)
        #expect(s.loss + 3 * s.standardError <= pruner.options.targetLoss)
    }

    @Test("closed nodes take the corpus mean, or zero", arguments: AblationKind.allCases)
    func ablationValues(kind: AblationKind) throws {
        let model = try plantedModel()
        let text = "x = [1, 2]\ny = 'ab'\n".utf8.map { Int32($0) }
        var stream = RepeatingText(text: text)
        let values = kind == .mean ? try AblationValues.means(model: model, corpus: &stream, sequences: 3, seqLen: 16)
                                   : AblationValues.zeros(model.config)
        // Independent means: capture the activations and average them here.
        let loc = NodeLocation(kind: "mlp_neuron", layer: 0)
        if kind == .mean {
            var sum = [Double](repeating: 0, count: 16)
            var replay = RepeatingText(text: text)
            for _ in 0..<3 {
                let hooks = Hooks()
                hooks.add(.mlpPost(0)) { ctx in for r in 0..<16 { for j in 0..<16 { sum[j] += Double(ctx.activation.data[r * 16 + j]) } } }
                try model.forward(tokens: try replay.next(16)!, batch: 1, seqLen: 16, hooks: hooks)
            }
            for j in 0..<16 { #expect(abs(Double(values.values[loc]![j]) - sum[j] / 48) < 1e-6) }
        }
        var mask = NodeMask.all(model.config, open: true)
        mask.open[loc]![3] = false
        mask.open[loc]![7] = false
        let hooks = mask.hooks(model.config, ablation: values)
        var seen: Tensor?
        hooks.add(.mlpPost(0)) { seen = $0.activation.copy() }
        try model.forward(tokens: Array(text.prefix(12)), batch: 1, seqLen: 12, hooks: hooks)
        for r in 0..<12 {
            #expect(seen!.data[r * 16 + 3] == values.values[loc]![3])
            #expect(seen!.data[r * 16 + 7] == values.values[loc]![7])
            if kind == .zero { #expect(seen!.data[r * 16 + 3] == 0) }
        }
    }
}

@Suite("Dilution predictor")
struct DilutionPredictorTests {
    @Test("a signal decaying as 1/length predicts the analytic flip length")
    func oneOverLength() {
        // s(L) = 12 / L + 0.5 crosses 0.8 at L = 12 / 0.3 = 40.
        let lengths = stride(from: 4.0, through: 80, by: 4).map { $0 }
        let signal = lengths.map { 12 / $0 + 0.5 }
        let fit = DilutionPredictor.fit(lengths: lengths, signal: signal)
        #expect(abs(fit.a - 12) < 1e-9 && abs(fit.b - 0.5) < 1e-9)
        let flip = DilutionPredictor.flipLength(a: fit.a, b: fit.b, threshold: 0.8)
        #expect(flip != nil && abs(flip! - 40) < 1e-9)
        // A threshold the signal never reaches: no flip.
        #expect(DilutionPredictor.flipLength(a: fit.a, b: fit.b, threshold: 0.4) == nil)
    }

    @Test("the crossing of a measured signal is interpolated between the lengths around it")
    func crossing() {
        let lengths: [Double] = [10, 20, 30, 40]
        let signal = [1.0, 0.8, 0.4, 0.2]
        // 0.5 lies a quarter of the way from 0.4 back to 0.8: between 20 and 30, at 27.5.
        #expect(abs(DilutionPredictor.crossing(lengths: lengths, signal: signal, threshold: 0.5)! - 27.5) < 1e-12)
        #expect(DilutionPredictor.crossing(lengths: lengths, signal: signal, threshold: 0.1) == nil)
        #expect(DilutionPredictor.crossing(lengths: lengths, signal: signal, threshold: 1.5) == 10)
    }
}
