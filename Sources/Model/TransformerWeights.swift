// Every weight tensor of the model, under readable names that are also the dataset paths
// in a model file (`blocks/0/attn/W_Q`). Linear maps are stored [in, out] and applied as
// x · W + b, so a row of W_O or W_out is what one head channel or one neuron writes.

import Tensors

public final class BlockWeights {
    public let ln1Gain: Tensor          // [d_model]
    public let ln1Bias: Tensor?         // [d_model]  LayerNorm with bias only
    public let W_Q, W_K, W_V: Tensor    // [d_model, n_head·d_head]
    public let b_Q, b_K, b_V: Tensor?   // [n_head·d_head]
    public let W_O: Tensor              // [n_head·d_head, d_model]
    public let b_O: Tensor?             // [d_model]
    public let sink: Tensor?            // [n_head]  attention-sink logits
    public let ln2Gain: Tensor
    public let ln2Bias: Tensor?
    public let W_in: Tensor             // [d_model, d_mlp]
    public let b_in: Tensor?            // [d_mlp]
    public let W_out: Tensor            // [d_mlp, d_model]
    public let b_out: Tensor?           // [d_model]

    init(layer: Int, config c: ModelConfig, make: (String, [Int], ParameterRole) throws -> Tensor) throws {
        let p = "blocks/\(layer)/"
        let normBias = c.bias && c.norm == .layer
        let a = c.attentionWidth
        ln1Gain = try make(p + "ln1/w", [c.dModel], .gain)
        ln1Bias = normBias ? try make(p + "ln1/b", [c.dModel], .bias) : nil
        W_Q = try make(p + "attn/W_Q", [c.dModel, a], .weight)
        W_K = try make(p + "attn/W_K", [c.dModel, a], .weight)
        W_V = try make(p + "attn/W_V", [c.dModel, a], .weight)
        b_Q = c.bias ? try make(p + "attn/b_Q", [a], .bias) : nil
        b_K = c.bias ? try make(p + "attn/b_K", [a], .bias) : nil
        b_V = c.bias ? try make(p + "attn/b_V", [a], .bias) : nil
        W_O = try make(p + "attn/W_O", [a, c.dModel], .outputWeight)
        b_O = c.bias ? try make(p + "attn/b_O", [c.dModel], .bias) : nil
        sink = c.attentionSink ? try make(p + "attn/sink", [c.nHead], .sink) : nil
        ln2Gain = try make(p + "ln2/w", [c.dModel], .gain)
        ln2Bias = normBias ? try make(p + "ln2/b", [c.dModel], .bias) : nil
        W_in = try make(p + "mlp/W_in", [c.dModel, c.dMLP], .weight)
        b_in = c.bias ? try make(p + "mlp/b_in", [c.dMLP], .bias) : nil
        W_out = try make(p + "mlp/W_out", [c.dMLP, c.dModel], .outputWeight)
        b_out = c.bias ? try make(p + "mlp/b_out", [c.dModel], .bias) : nil
    }
}

/// What a parameter is, for initialisation and for the sparse-training rules
/// (only `.weight`, `.outputWeight` and `.embedding` tensors are sparsified).
public enum ParameterRole: Sendable {
    case embedding, weight, outputWeight, bias, gain, sink, bigram
}

public final class TransformerWeights {
    public let config: ModelConfig
    public let W_E: Tensor              // [vocab, d_model]
    public let W_pos: Tensor?           // [n_ctx, d_model]
    public let blocks: [BlockWeights]
    public let lnFinalGain: Tensor      // [d_model]
    public let lnFinalBias: Tensor?
    public let W_U: Tensor?             // [d_model, vocab]; nil when tied to W_Eᵀ
    public let b_U: Tensor?             // [vocab]
    public let bigram: Tensor?          // [vocab, vocab]  row = current token
    /// Every tensor with its name and role, in a fixed order (file order, optimizer order).
    public private(set) var parameters: [(name: String, tensor: Tensor, role: ParameterRole)] = []

    /// Builds the weights, asking `make(name, shape, role)` for each tensor in turn.
    public init(config c: ModelConfig, make: (String, [Int], ParameterRole) throws -> Tensor) throws {
        config = c
        var list: [(String, Tensor, ParameterRole)] = []
        func record(_ name: String, _ shape: [Int], _ role: ParameterRole) throws -> Tensor {
            let t = try make(name, shape, role)
            guard t.shape == shape else {
                throw ModelError.badInput("tensor \(name) has shape \(t.shape), the config needs \(shape)")
            }
            list.append((name, t, role))
            return t
        }
        W_E = try record("embed/W_E", [c.vocab, c.dModel], .embedding)
        W_pos = c.positional == .learned ? try record("pos_embed/W_pos", [c.nCtx, c.dModel], .embedding) : nil
        blocks = try (0..<c.nLayer).map { try BlockWeights(layer: $0, config: c, make: record) }
        lnFinalGain = try record("ln_final/w", [c.dModel], .gain)
        lnFinalBias = c.bias && c.norm == .layer ? try record("ln_final/b", [c.dModel], .bias) : nil
        W_U = c.tiedUnembed ? nil : try record("unembed/W_U", [c.dModel, c.vocab], .weight)
        b_U = c.bias ? try record("unembed/b_U", [c.vocab], .bias) : nil
        bigram = c.bigramTable ? try record("bigram/table", [c.vocab, c.vocab], .bigram) : nil
        parameters = list.map { (name: $0.0, tensor: $0.1, role: $0.2) }
    }

    /// GPT-2 initialisation from a seed: N(0, 0.02²) weights, output projections scaled by
    /// 1/√(2·n_layer), unit gains, zero biases, sinks and bigram table.
    public convenience init(config c: ModelConfig, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let outStd = Float(0.02 / (2.0 * Double(c.nLayer)).squareRoot())
        try self.init(config: c) { _, shape, role in
            switch role {
            case .embedding, .weight: return Tensor.randomNormal(shape, std: 0.02, rng: &rng)
            case .outputWeight: return Tensor.randomNormal(shape, std: outStd, rng: &rng)
            case .gain: return Tensor(shape: shape, repeating: 1)
            case .bias, .sink, .bigram: return Tensor(zeros: shape)
            }
        }
    }

    /// Zero tensors of the same layout (gradients, optimizer moments).
    public convenience init(zerosLike other: TransformerWeights) throws {
        try self.init(config: other.config) { _, shape, _ in Tensor(zeros: shape) }
    }

    public func tensor(named name: String) -> Tensor? {
        parameters.first { $0.name == name }?.tensor
    }

    /// Whether a parameter is a matrix the forward pass multiplies by (x · W).
    public static func isMatmulWeight(_ role: ParameterRole) -> Bool { role == .weight || role == .outputWeight }

    /// Gives each weight matrix whose kept fraction pays for it a sparse form, so that the
    /// forward pass (and DePass) multiply by it with the sparse kernel; dense matrices stay
    /// on BLAS. Returns the names of the matrices that took the sparse path.
    @discardableResult
    public func prepareSparseKernels() -> [String] {
        parameters.filter { Self.isMatmulWeight($0.role) && $0.tensor.prepareSparseForm() }.map(\.name)
    }

    /// Every matrix back on BLAS: call before changing weight values (training), since a
    /// sparse form is a copy.
    public func dropSparseKernels() {
        for p in parameters { p.tensor.dropSparseForm() }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

    public var nonzeroCount: Int {
        parameters.reduce(0) { acc, p in
            var n = 0
            for i in 0..<p.tensor.count where p.tensor.data[i] != 0 { n += 1 }
            return acc + n
        }
    }
}
