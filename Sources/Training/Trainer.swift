// The training loop: next-token cross-entropy on batches from a token stream, backward,
// gradient rescaling to RMS 1, AdamW, then the weight-sparse projection when the recipe
// asks for one. Deterministic for a given recipe and thread count; checkpoints hold
// weights, Adam moments and the step, and a resumed run equals an uninterrupted one.

import Foundation
import Tensors
import Model
import Text

public struct StepReport: Sendable {
    public let step: Int
    public let loss: Double
    public let learningRate: Double
    public let keptFraction: Double
    public let gradientRMS: Double
}

public final class Trainer {
    public let recipe: Recipe
    public let model: Transformer
    public let optimizer: AdamW
    let gradients: TransformerWeights
    let backward: BackwardPass
    var corpus: any TokenStream
    let heldout: [Int32]
    public private(set) var step = 0
    /// Token sequences consumed from the corpus (the resume point).
    public private(set) var sequencesConsumed = 0
    /// (step, training loss) at every step so far.
    public private(set) var lossLog: [Double] = []

    /// A new run from the recipe's seed.
    public convenience init(recipe: Recipe, corpus: any TokenStream, heldout: any TokenStream) throws {
        try recipe.validate()
        let model = try Transformer(config: recipe.model, seed: recipe.seed)
        try self.init(recipe: recipe, model: model, corpus: corpus, heldout: heldout)
    }

    init(recipe: Recipe, model: Transformer, corpus: any TokenStream, heldout held: any TokenStream) throws {
        self.recipe = recipe
        self.model = model
        self.corpus = corpus
        optimizer = try AdamW(like: model.weights, beta1: recipe.beta1, beta2: recipe.beta2, eps: recipe.adamEps)
        gradients = try TransformerWeights(zerosLike: model.weights)
        backward = BackwardPass(config: recipe.model, batch: recipe.batch, seqLen: recipe.seqLen)
        var h = held
        var tokens: [Int32] = []
        for _ in 0..<recipe.heldoutSequences {
            guard let s = try h.next(recipe.seqLen + 1) else { throw TrainingError.badRecipe("the held-out corpus is too short") }
            tokens += s
        }
        heldout = tokens
    }

    public var tokensSeen: Int { sequencesConsumed * recipe.seqLen }

    /// Current kept fraction of the weight matrices (1 without sparsity).
    public var keptFraction: Double { recipe.sparsity?.fraction(step: step, steps: recipe.steps) ?? 1 }

    /// One optimizer step on the next batch.
    @discardableResult
    public func trainStep() throws -> StepReport {
        let r = recipe, t = r.seqLen
        var tokens: [Int32] = []
        tokens.reserveCapacity(r.batch * (t + 1))
        for _ in 0..<r.batch {
            guard let s = try corpus.next(t + 1) else { throw TrainingError.badRecipe("the corpus ran out") }
            tokens += s
        }
        sequencesConsumed += r.batch
        let (inputs, targets) = CrossEntropy.split(tokens, batch: r.batch, seqLen: t)
        let state = try model.forward(tokens: inputs, batch: r.batch, seqLen: t, keepActivations: true)
        let dLogits = Tensor(zeros: state.logits.shape)
        let (loss, _) = CrossEntropy.loss(logits: state.logits, targets: targets, gradient: dLogits)
        guard loss.isFinite else { throw TrainingError.badRecipe("the loss became \(loss) at step \(step); lower lr") }
        for p in gradients.parameters { p.tensor.fill(0) }
        try backward.run(model: model, state: state, dLogits: dLogits, grads: gradients)
        let rms = AdamW.normalizeRMS(gradients)
        let lr = r.learningRate(step: step)
        optimizer.update(model.weights, gradients: gradients, lr: lr, weightDecay: r.weightDecay)
        step += 1
        let fraction = keptFraction
        if let s = r.sparsity, fraction < 1 {
            SparseProjection.apply(model.weights, fraction: fraction, minPerNeuron: s.minPerNeuron)
        }
        lossLog.append(loss)
        return StepReport(step: step, loss: loss, learningRate: lr, keptFraction: fraction, gradientRMS: rms)
    }

    /// Mean next-token loss (nats per token) on the held-out sequences.
    public func heldoutLoss() throws -> Double {
        let t = recipe.seqLen, per = t + 1, n = heldout.count / per
        var total = 0.0, count = 0
        for start in stride(from: 0, to: n, by: recipe.batch) {
            let b = min(recipe.batch, n - start)
            let (inputs, targets) = CrossEntropy.split(Array(heldout[(start * per)..<((start + b) * per)]), batch: b, seqLen: t)
            let s = try model.forward(tokens: inputs, batch: b, seqLen: t)
            let (loss, c) = CrossEntropy.loss(logits: s.logits, targets: targets)
            total += loss * Double(c)
            count += c
        }
        return total / Double(max(count, 1))
    }

    /// Restores step, corpus position, weights and moments (used by TrainingCheckpoint).
    func restore(step: Int, sequencesConsumed consumed: Int, lossLog log: [Double]) throws {
        self.step = step
        optimizer.step = step
        lossLog = log
        for _ in 0..<consumed {
            guard try corpus.next(recipe.seqLen + 1) != nil else { throw TrainingError.badRecipe("the corpus ran out while resuming") }
        }
        sequencesConsumed = consumed
    }
}
