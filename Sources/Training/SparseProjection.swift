// The weight-sparse projection, run after every optimizer step: each weight matrix keeps
// its k = ⌊fraction · size⌋ largest-|w| entries (over the whole tensor, not per row),
// and every neuron / channel keeps at least `minPerNeuron` of its own largest entries
// among them. Gradients and Adam moments stay dense, so a zeroed weight can come back.
// Norm gains, biases, sink logits and the bigram table are not projected.

import Tensors
import Model

public enum SparseProjection {
    /// Whether a parameter is a projected weight matrix.
    public static func isProjected(_ role: ParameterRole) -> Bool {
        role == .weight || role == .outputWeight || role == .embedding
    }

    /// The axis whose entries are the neurons / channels of a matrix: 0 when each row is one
    /// (W_O, W_out: what one channel writes; W_E, W_pos: one token or position),
    /// 1 when each column is one (W_Q, W_K, W_V, W_in: what one channel reads; W_U: one logit).
    public static func neuronAxis(name: String, role: ParameterRole) -> Int {
        (role == .outputWeight || role == .embedding) ? 0 : 1
    }

    /// Kept count for a tensor: ⌊fraction · size⌋, raised to the per-neuron minimum if needed.
    public static func keptCount(rows: Int, cols: Int, fraction: Double, minPerNeuron: Int, axis: Int) -> Int {
        let neurons = axis == 0 ? rows : cols, perNeuron = axis == 0 ? cols : rows
        let floor = neurons * min(minPerNeuron, perNeuron)
        return min(rows * cols, max(Int((fraction * Double(rows * cols)).rounded(.down)), floor))
    }

    /// Projects every weight matrix in place. Returns the kept counts by parameter name.
    @discardableResult
    public static func apply(_ weights: TransformerWeights, fraction: Double, minPerNeuron: Int) -> [String: Int] {
        weights.dropSparseKernels()  // the values change: a compressed copy would go stale
        let targets = weights.parameters.filter { isProjected($0.role) && $0.tensor.rank == 2 }
        var kept = [Int](repeating: 0, count: targets.count)
        kept.withUnsafeMutableBufferPointer { keptCounts in
            Parallel.forChunks(targets.count) { _, range in
                for i in range {
                    let p = targets[i]
                    keptCounts[i] = project(p.tensor, fraction: fraction, minPerNeuron: minPerNeuron,
                                            axis: neuronAxis(name: p.name, role: p.role))
                }
            }
        }
        return Dictionary(uniqueKeysWithValues: zip(targets.map(\.name), kept))
    }

    /// Projects one [rows, cols] tensor; returns how many entries it kept.
    public static func project(_ w: Tensor, fraction: Double, minPerNeuron: Int, axis: Int) -> Int {
        let rows = w.shape[0], cols = w.shape[1], count = rows * cols
        let k = keptCount(rows: rows, cols: cols, fraction: fraction, minPerNeuron: minPerNeuron, axis: axis)
        if k >= count { return count }
        // Scores: |w|, with each neuron's own top entries forced in (score +∞).
        var score = [Float](repeating: 0, count: count)
        for i in 0..<count { score[i] = abs(w.data[i]) }
        let neurons = axis == 0 ? rows : cols, perNeuron = axis == 0 ? cols : rows
        let minimum = min(minPerNeuron, perNeuron)
        if minimum > 0 {
            var column = [(Float, Int)](repeating: (0, 0), count: perNeuron)
            for n in 0..<neurons {
                for j in 0..<perNeuron {
                    let index = axis == 0 ? n * cols + j : j * cols + n
                    column[j] = (score[index], index)
                }
                // Largest first; ties to the lower index.
                column.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                for j in 0..<minimum { score[column[j].1] = .infinity }
            }
        }
        var scratch = score
        let threshold = Kernels.kthLargest(&scratch, k)
        var above = 0
        for s in score where s > threshold { above += 1 }
        var tiesLeft = k - above
        for i in 0..<count {
            if score[i] > threshold { continue }
            if score[i] == threshold && tiesLeft > 0 { tiesLeft -= 1; continue }
            w.data[i] = 0
        }
        return k
    }
}
