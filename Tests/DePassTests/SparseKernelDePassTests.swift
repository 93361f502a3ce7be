// DePass on a weight-sparse model: the per-component passes through the sparse kernel give
// the same component logits as through BLAS, and stay exact.

import Testing
import DePass
import Tensors
import Model

@Suite("DePass with sparse kernels")
struct SparseKernelDePassTests {
    @Test("token-level component logits agree with the BLAS path within 1e-5 relative",
          arguments: [NormKind.layer, .rms], [MLPRule.softmax, .ratio])
    func sameComponents(norm: NormKind, rule: MLPRule) throws {
        let c = ModelConfig(nLayer: 2, dModel: 64, nHead: 4, dMLP: 256, nCtx: 16, norm: norm, activation: .gelu)
        let model = try Transformer(config: c, seed: 3)
        var rng = SeededRandom(seed: 4)
        for p in model.weights.parameters {
            for i in 0..<p.tensor.count {
                // Matrices keep 1/16 of their entries, as the shipped sparse model does.
                if TransformerWeights.isMatmulWeight(p.role) && rng.nextInt(16) != 0 { p.tensor[i] = 0; continue }
                p.tensor[i] = p.role == .gain ? 1 + 0.2 * rng.nextNormal() : rng.nextNormal() / 4
            }
        }
        let tokens = (0..<c.nCtx).map { _ in Int32(32 + rng.nextInt(95)) }

        func componentLogits() throws -> Tensor {
            let run = try DecomposedForward(model: model, tokens: tokens, rule: rule)
            let (comps, start) = run.tokenComponents()
            let pass = try run.propagate(comps, from: start)
            for check in pass.checks { #expect(check.relative < 1e-4, "\(check.site)") }
            return pass.logits
        }
        let viaBLAS = try componentLogits()
        #expect(model.weights.prepareSparseKernels().count == 6 * c.nLayer + 1)
        let viaKernel = try componentLogits()
        #expect(viaBLAS.maxAbs > 0.1)
        #expect(viaKernel.maxAbsDifference(viaBLAS) <= 1e-5 * viaBLAS.maxAbs)
    }
}
