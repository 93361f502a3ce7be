// Next-token cross-entropy and its gradient with respect to the logits (here, not in Training:
// splicing measures it too, and needs no trainer).

import Foundation
import Tensors

public enum CrossEntropy {
    /// Mean cross-entropy (nats) over the rows whose target is ≥ 0 (−1 = no target).
    /// With `gradient`, writes d loss / d logits = (softmax − onehot) / count there
    /// (zero rows where there is no target).
    public static func loss(logits: Tensor, targets: [Int32], gradient: Tensor? = nil) -> (loss: Double, count: Int) {
        let (rows, vocab) = logits.matrixShape
        precondition(targets.count == rows, "\(targets.count) targets for \(rows) rows")
        let count = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        guard count > 0 else { gradient?.fill(0); return (0, 0) }
        let scale = 1 / Float(count)
        var partial = [Double](repeating: 0, count: Parallel.threads)
        partial.withUnsafeMutableBufferPointer { partialSums in
            Parallel.forChunks(rows, minimumPerThread: 64) { worker, range in
                var scratch = [Float](repeating: 0, count: vocab)
                var sum = 0.0
                for r in range {
                    let target = Int(targets[r])
                    let out = gradient.map { $0.data + r * vocab }
                    if target < 0 {
                        out?.update(repeating: 0, count: vocab)
                        continue
                    }
                    scratch.withUnsafeMutableBufferPointer { p in
                        p.baseAddress!.update(from: logits.data + r * vocab, count: vocab)
                        let m = VectorOps.max(p.baseAddress!, vocab)
                        let z = VectorOps.expShiftedSum(p.baseAddress!, vocab, shift: m)
                        // −log softmax[target] = log Σ exp(l − m) − (l_target − m)
                        sum += Double(log(z)) - Double(logits.data[r * vocab + target] - m)
                        if let out {
                            let inv = scale / z
                            for j in 0..<vocab { out[j] = p[j] * inv }
                            out[target] -= scale
                        }
                    }
                }
                partialSums[worker] += sum
            }
        }
        return (partial.reduce(0, +) / Double(count), count)
    }

    /// Targets for sequences of T + 1 tokens: inputs are the first T of each, targets the next token.
    public static func split(_ tokens: [Int32], batch: Int, seqLen t: Int) -> (inputs: [Int32], targets: [Int32]) {
        var inputs: [Int32] = [], targets: [Int32] = []
        inputs.reserveCapacity(batch * t)
        targets.reserveCapacity(batch * t)
        for b in 0..<batch {
            let s = b * (t + 1)
            inputs += tokens[s..<(s + t)]
            targets += tokens[(s + 1)..<(s + t + 1)]
        }
        return (inputs, targets)
    }
}
