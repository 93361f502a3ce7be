// The forward pass of weight-sparse models with the sparse kernel against the same models
// on BLAS: random models at several kept fractions, LayerNorm and RMSNorm.

import Foundation
import Testing
import Tensors
import Model
import Text

/// Larger than TestConfigs so that even 1/64 leaves each matrix a few dozen nonzeros.
let sparseKernelConfigs = [
    NamedConfig(name: "layer", config: ModelConfig(nLayer: 2, dModel: 64, nHead: 4, dMLP: 256, nCtx: 24,
                                                   activation: .gelu)),
    NamedConfig(name: "rms", config: ModelConfig(nLayer: 2, dModel: 64, nHead: 4, dHead: 12, dMLP: 192, nCtx: 24,
                                                 norm: .rms, activation: .relu, positional: .none, attentionSink: true,
                                                 bigramTable: true, tiedUnembed: true, bias: false)),
]

/// A random model whose weight matrices keep about `fraction` of their entries.
func weightSparseModel(_ config: ModelConfig, fraction: Double, seed: UInt64) throws -> Transformer {
    let model = try randomModel(config, seed: seed)
    var rng = SeededRandom(seed: seed &+ 7)
    for p in model.weights.parameters where TransformerWeights.isMatmulWeight(p.role) {
        for i in 0..<p.tensor.count where Double(rng.nextInt(1 << 20)) >= fraction * Double(1 << 20) { p.tensor[i] = 0 }
    }
    return model
}

@Suite("Sparse kernels in the forward pass")
struct SparseKernelTests {
    @Test("logits through the sparse kernel equal the dense path's within 1e-5 relative",
          arguments: sparseKernelConfigs, [1.0 / 4, 1.0 / 16, 1.0 / 64])
    func sameLogits(_ named: NamedConfig, fraction: Double) throws {
        let c = named.config
        let model = try weightSparseModel(c, fraction: fraction, seed: 31)
        let tokens = randomTokens(3 * c.nCtx, vocab: c.vocab, seed: 32)
        let dense = try model.forward(tokens: tokens, batch: 3, seqLen: c.nCtx).logits.copy()
        let matrices = model.weights.parameters.filter { TransformerWeights.isMatmulWeight($0.role) }
        // The automatic choice: the sparse kernel exactly where the kept fraction is at most the threshold.
        let chosen = Set(model.weights.prepareSparseKernels())
        let expected = matrices.filter { SparseMatrix(dense: $0.tensor).density <= SparseMatrix.densityThreshold }
        #expect(chosen == Set(expected.map(\.name)))
        // Then every matrix on the sparse kernel, whatever the threshold, for the comparison.
        for p in matrices { #expect(p.tensor.prepareSparseForm(force: true)) }
        let viaKernel = try model.forward(tokens: tokens, batch: 3, seqLen: c.nCtx).logits
        #expect(dense.maxAbs > 0.1)
        #expect(viaKernel.maxAbsDifference(dense) <= 1e-5 * dense.maxAbs)
    }

    @Test("the fused sparse MLP gives the same logits, bit for bit, as the unfused sparse path",
          arguments: sparseKernelConfigs)
    func fusedMLP(_ named: NamedConfig) throws {
        let c = named.config
        let model = try weightSparseModel(c, fraction: 1.0 / 16, seed: 61)
        for p in model.weights.parameters where TransformerWeights.isMatmulWeight(p.role) {
            #expect(p.tensor.prepareSparseForm(force: true))
        }
        let tokens = randomTokens(2 * c.nCtx, vocab: c.vocab, seed: 62)
        let fused = try model.forward(tokens: tokens, batch: 2, seqLen: c.nCtx).logits.copy()
        // A hook on the neurons (that changes nothing) makes every block take the unfused steps.
        let hooks = Hooks()
        for l in 0..<c.nLayer { hooks.add(.mlpPost(l)) { _ in } }
        let unfused = try model.forward(tokens: tokens, batch: 2, seqLen: c.nCtx, hooks: hooks).logits
        #expect(fused.maxAbs > 0.1)
        #expect(unfused.maxAbsDifference(fused) == 0)
    }

    @Test("a dense model keeps BLAS for every matrix, so its logits are bit for bit unchanged")
    func denseStaysDense() throws {
        let c = sparseKernelConfigs[0].config
        let model = try randomModel(c, seed: 41)
        let tokens = randomTokens(c.nCtx, vocab: c.vocab, seed: 42)
        let before = try model.logits(tokens: tokens)
        #expect(model.weights.prepareSparseKernels().isEmpty)
        #expect(try model.logits(tokens: tokens).maxAbsDifference(before) == 0)
    }

    @Test("a model file loads with sparse forms on exactly the matrices below the threshold")
    func loadTimeChoice() throws {
        let c = sparseKernelConfigs[1].config
        let model = try weightSparseModel(c, fraction: 1.0 / 16, seed: 51)
        // One matrix left dense: it must stay on BLAS.
        let denseName = "blocks/1/mlp/W_in"
        let denseW = try #require(model.weights.tensor(named: denseName))
        var rng = SeededRandom(seed: 52)
        for i in 0..<denseW.count { denseW[i] = 0.1 * rng.nextNormal() }
        let dir = TemporaryDirectory("sparse-kernels")
        let path = dir.file("model.h5")
        try ModelFile.save(model, tokenizer: CharTokenizer(), provenance: .null, to: path)
        let loaded = try ModelFile.load(path).model
        for p in loaded.weights.parameters {
            let expected = TransformerWeights.isMatmulWeight(p.role) && p.name != denseName
            #expect((p.tensor.sparseForm != nil) == expected, "\(p.name)")
        }
        let tokens = randomTokens(c.nCtx, vocab: c.vocab, seed: 53)
        let viaKernel = try loaded.logits(tokens: tokens)
        loaded.weights.dropSparseKernels()
        let viaBLAS = try loaded.logits(tokens: tokens)
        #expect(viaKernel.maxAbsDifference(viaBLAS) <= 1e-5 * viaBLAS.maxAbs)
    }
}
