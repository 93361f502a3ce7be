// Task evaluation: for every prompt of every pair, the logits at the last position give
// accuracy (target beats alternative), P(target) under the full softmax, and the contrast
// loss −log σ(ℓ_target − ℓ_alternative) (binary cross-entropy between the two tokens; the
// two-sided pair loss of the sparse-circuits paper is the sum over a pair's two prompts,
// so ours is half of theirs per pair).

import Foundation
import Tensors
import Model

public struct TaskResult: Sendable {
    public let task: String
    public let prompts: Int
    public let accuracy: Double
    public let meanProbability: Double
    public let contrastLoss: Double
}

public enum TaskEvaluation {
    /// Runs a batch of `batch` prompts of `seqLen` tokens and returns logits [B·T, vocab]:
    /// a plain model, or a hybrid (spliced, steered) pass.
    public typealias Runner = (_ tokens: [Int32], _ batch: Int, _ seqLen: Int) throws -> Tensor

    /// Last-position logits for each prompt; prompts of equal length run as one batch.
    public static func lastLogits(model: Transformer, prompts: [[Int32]]) throws -> [[Float]] {
        try lastLogits(nCtx: model.config.nCtx, vocab: model.config.vocab, prompts: prompts) { tokens, b, t in
            try model.forward(tokens: tokens, batch: b, seqLen: t).logits
        }
    }

    public static func lastLogits(nCtx n: Int, vocab v: Int, prompts: [[Int32]], run: Runner) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: prompts.count)
        // The model sees at most n_ctx tokens: longer prompts keep their end.
        let clipped = prompts.map { Array($0.suffix(n)) }
        let byLength = Dictionary(grouping: clipped.indices, by: { clipped[$0].count })
        for (length, indices) in byLength.sorted(by: { $0.key < $1.key }) {
            for chunk in stride(from: 0, to: indices.count, by: 32).map({ Array(indices[$0..<min($0 + 32, indices.count)]) }) {
                let tokens = chunk.flatMap { clipped[$0] }
                let logits = try run(tokens, chunk.count, length)
                for (b, i) in chunk.enumerated() {
                    let row = logits.data + ((b + 1) * length - 1) * v
                    out[i] = Array(UnsafeBufferPointer(start: row, count: v))
                }
            }
        }
        return out
    }

    public static func evaluate(model: Transformer, task: BinaryTask, pairs: [PromptPair]) throws -> TaskResult {
        try evaluate(task: task, pairs: pairs, logits: try lastLogits(model: model, prompts: pairs.flatMap(\.prompts).map(\.tokens)))
    }

    /// Scores from last-position logits given in prompt order (both prompts of each pair).
    public static func evaluate(task: BinaryTask, pairs: [PromptPair], logits: [[Float]]) throws -> TaskResult {
        let prompts = pairs.flatMap(\.prompts)
        var correct = 0, probability = 0.0, loss = 0.0
        for (p, l) in zip(prompts, logits) {
            let lt = Double(l[Int(p.target)]), la = Double(l[Int(p.alternative)])
            if lt > la { correct += 1 }
            let m = Double(l.max()!)
            let z = l.reduce(0.0) { $0 + exp(Double($1) - m) }
            probability += exp(lt - m) / z
            loss += softplus(la - lt)  // −log σ(lt − la)
        }
        let n = Double(prompts.count)
        return TaskResult(task: task.name, prompts: prompts.count, accuracy: Double(correct) / n,
                          meanProbability: probability / n, contrastLoss: loss / n)
    }

    /// log(1 + eˣ), without overflow.
    static func softplus(_ x: Double) -> Double { x > 30 ? x : log1p(exp(x)) }
}
