// Small random models the Model, Checkpoints and Text tests share: three configurations
// that between them reach every option, random O(1) weights, and a saved-and-loaded model.

import Foundation
@_exported import TestHelpers
import Model
import Support
import Tensors
import Text

/// The small configurations the tests run on.
public enum TestConfigs {
    /// GPT-2-like: LayerNorm with bias, learned positions, untied unembedding.
    public static let gpt2 = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 32, nCtx: 12, activation: .geluTanh)
    /// circuit_sparsity-like: RMSNorm, no biases, no positions, sink, bigram table, tied, d_head ≠ d_model / n_head.
    public static let sparse = ModelConfig(nLayer: 2, dModel: 16, nHead: 3, dHead: 6, dMLP: 24, nCtx: 12, norm: .rms,
                                    activation: .relu, positional: .none, attentionSink: true, bigramTable: true,
                                    tiedUnembed: true, bias: false)
    /// Three layers, exact GELU, LayerNorm without bias, with a sink.
    public static let mixed = ModelConfig(nLayer: 3, dModel: 12, nHead: 2, dMLP: 20, nCtx: 10, vocab: 50,
                                   activation: .gelu, attentionSink: true, bias: false)
}

/// A model whose every parameter is random and O(1) (GPT-2 initialisation leaves biases and
/// sinks at zero and the logits nearly flat, which would make comparisons weak).
public func randomModel(_ config: ModelConfig, seed: UInt64) throws -> Transformer {
    let model = try Transformer(config: config, seed: seed)
    var rng = SeededRandom(seed: seed &+ 1000)
    for p in model.weights.parameters {
        let fanIn = Float(p.tensor.rank == 2 ? p.tensor.shape[0] : 1)
        for i in 0..<p.tensor.count {
            let g = rng.nextNormal()
            switch p.role {
            case .embedding: p.tensor[i] = g
            case .weight: p.tensor[i] = g / fanIn.squareRoot()
            case .outputWeight: p.tensor[i] = 0.5 * g / fanIn.squareRoot()
            case .gain: p.tensor[i] = 1 + 0.2 * g
            case .bias: p.tensor[i] = 0.1 * g
            case .sink: p.tensor[i] = g
            case .bigram: p.tensor[i] = 0.5 * g
            }
        }
    }
    return model
}

public func randomTokens(_ count: Int, vocab: Int, seed: UInt64) -> [Int32] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { _ in Int32(rng.nextInt(vocab)) }
}

public struct NamedConfig: CustomStringConvertible, Sendable {
    public let name: String
    public let config: ModelConfig
    public init(name: String, config: ModelConfig) {
        self.name = name
        self.config = config
    }
    public var description: String { name }
}

public let namedConfigs = [NamedConfig(name: "gpt2", config: TestConfigs.gpt2),
                    NamedConfig(name: "sparse", config: TestConfigs.sparse),
                    NamedConfig(name: "mixed", config: TestConfigs.mixed)]

/// Saves a random model and loads it back (the only public way to get a LoadedModel).
public func savedModel(_ config: ModelConfig, seed: UInt64, in dir: TemporaryDirectory, name: String = "model.h5",
                provenance: JSONValue = .object(["recipe": .string("test"),
                                                 "seed": .number(7)])) throws -> (path: String, loaded: LoadedModel,
                                                                                  original: Transformer) {
    let model = try randomModel(config, seed: seed)
    let path = dir.file(name)
    let tokenizer: Tokenizer = config.vocab >= 128 ? CharTokenizer() : IDsOnlyTokenizer(vocabSize: config.vocab)
    try ModelFile.save(model, tokenizer: tokenizer, provenance: provenance, to: path)
    return (path, try ModelFile.load(path), model)
}
