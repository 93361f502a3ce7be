import Testing
import Tensors
import Training
import Model

@Suite("Weight-sparse projection")
struct SparseProjectionTests {
    func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> Tensor {
        var rng = SeededRandom(seed: seed)
        return Tensor.randomNormal([rows, cols], std: 1, rng: &rng)
    }

    /// Indices of each neuron's `m` largest |w| (ties to the lower index), computed independently.
    func forced(_ w: [Float], rows: Int, cols: Int, axis: Int, m: Int) -> Set<Int> {
        var out = Set<Int>()
        let neurons = axis == 0 ? rows : cols, per = axis == 0 ? cols : rows
        for n in 0..<neurons {
            let idx = (0..<per).map { axis == 0 ? n * cols + $0 : $0 * cols + n }
            out.formUnion(idx.sorted { abs(w[$0]) > abs(w[$1]) || (abs(w[$0]) == abs(w[$1]) && $0 < $1) }.prefix(m))
        }
        return out
    }

    @Test("keeps exactly k entries, the per-neuron minimum, and otherwise the largest", arguments: [0, 1])
    func keepsPromisedCounts(axis: Int) {
        let rows = 40, cols = 30
        let w = randomMatrix(rows, cols, seed: 7)
        let before = w.toArray()
        let k = SparseProjection.project(w, fraction: 0.25, minPerNeuron: 4, axis: axis)
        #expect(k == 300)
        let after = w.toArray()
        let kept = Set((0..<after.count).filter { after[$0] != 0 })
        #expect(kept.count == 300)
        // Kept entries keep their values.
        for i in kept { #expect(after[i] == before[i]) }
        // Every neuron keeps at least 4.
        let neurons = axis == 0 ? rows : cols, per = axis == 0 ? cols : rows
        for n in 0..<neurons {
            let count = (0..<per).filter { kept.contains(axis == 0 ? n * cols + $0 : $0 * cols + n) }.count
            #expect(count >= 4)
        }
        // The forced entries are in, and every other kept entry outranks every dropped one.
        let force = forced(before, rows: rows, cols: cols, axis: axis, m: 4)
        #expect(force.isSubset(of: kept))
        let freeKept = kept.subtracting(force).map { abs(before[$0]) }
        let dropped = (0..<before.count).filter { !kept.contains($0) }.map { abs(before[$0]) }
        #expect(freeKept.min()! >= dropped.max()!)
    }

    @Test("the per-neuron minimum raises k when the fraction is tiny")
    func minimumRaisesK() {
        #expect(SparseProjection.keptCount(rows: 64, cols: 32, fraction: 0.001, minPerNeuron: 4, axis: 1) == 128)
        #expect(SparseProjection.keptCount(rows: 64, cols: 32, fraction: 0.5, minPerNeuron: 4, axis: 1) == 1024)
        let w = randomMatrix(64, 32, seed: 3)
        _ = SparseProjection.project(w, fraction: 0.001, minPerNeuron: 4, axis: 1)
        for c in 0..<32 { #expect((0..<64).filter { w.data[$0 * 32 + c] != 0 }.count == 4) }
    }

    @Test("applies to weight matrices and embeddings only, at the same fraction")
    func appliesToMatricesOnly() throws {
        let config = ModelConfig(nLayer: 1, dModel: 32, nHead: 2, dMLP: 64, nCtx: 8, attentionSink: true, bigramTable: true)
        let weights = try TransformerWeights(config: config, seed: 1)
        for p in weights.parameters where p.role == .bias || p.role == .sink || p.role == .bigram {
            for i in 0..<p.tensor.count { p.tensor.data[i] = 0.5 }
        }
        let counts = SparseProjection.apply(weights, fraction: 1.0 / 16, minPerNeuron: 4)
        for p in weights.parameters {
            let nonzero = p.tensor.toArray().filter { $0 != 0 }.count
            if SparseProjection.isProjected(p.role) {
                let axis = SparseProjection.neuronAxis(name: p.name, role: p.role)
                let expected = SparseProjection.keptCount(rows: p.tensor.shape[0], cols: p.tensor.shape[1],
                                                          fraction: 1.0 / 16, minPerNeuron: 4, axis: axis)
                #expect(counts[p.name] == expected)
                #expect(nonzero == expected, "\(p.name)")
            } else {
                #expect(nonzero == p.tensor.count, "\(p.name) must stay dense")
            }
        }
    }

    @Test("annealing schedule and sharkfin learning rate")
    func schedule() throws {
        let s = SparsityRecipe(targetFraction: 1.0 / 16, annealStart: 0.1, annealEnd: 0.5)
        #expect(s.fraction(step: 0, steps: 100) == 1)
        #expect(s.fraction(step: 10, steps: 100) == 1)
        #expect(abs(s.fraction(step: 30, steps: 100) - (1 + (1.0 / 16 - 1) * 0.5)) < 1e-12)
        #expect(s.fraction(step: 50, steps: 100) == 1.0 / 16)
        #expect(s.fraction(step: 99, steps: 100) == 1.0 / 16)
        let json = """
        {"model": {"n_layer": 1, "d_model": 8, "n_head": 2, "d_mlp": 16, "n_ctx": 8}, "seed": 1, "steps": 100,
         "batch": 2, "seq_len": 8, "lr": 0.01, "warmup_steps": 10, "final_lr_fraction": 0.1,
         "sparsity": {"target_fraction": 0.0625, "anneal_start": 0.1, "anneal_end": 0.5}}
        """
        let recipe = try JSONDecoder().decode(Recipe.self, from: Data(json.utf8))
        // Warmup: linear to lr at step 9; the sharkfin factor is sqrt(target / current) = 0.25 while dense.
        #expect(abs(recipe.learningRate(step: 4) - 0.01 * 0.5 * 0.25) < 1e-12)
        // After annealing the factor is 1; linear decay from lr to 0.1·lr over steps 10…100.
        #expect(abs(recipe.learningRate(step: 55) - 0.01 * (1 - 0.9 * 0.5)) < 1e-12)
        #expect(abs(recipe.learningRate(step: 30) - 0.01 * (1 - 0.9 * 20.0 / 90) * (0.0625 / (1 + (0.0625 - 1) * 0.5)).squareRoot()) < 1e-12)
    }
}

import Foundation
