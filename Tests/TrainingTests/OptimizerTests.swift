import Foundation
import Testing
import Tensors
import Training
import Model

@Suite("AdamW and gradient scaling")
struct OptimizerTests {
    @Test("two AdamW steps match a Double reference; decay on matrices only")
    func adamMatchesReference() throws {
        let config = ModelConfig(nLayer: 1, dModel: 4, nHead: 1, dMLP: 8, nCtx: 4, vocab: 6)
        let weights = try TransformerWeights(config: config, seed: 3)
        let grads = try TransformerWeights(zerosLike: weights)
        var rng = SeededRandom(seed: 9)
        let adam = try AdamW(like: weights, beta1: 0.9, beta2: 0.95, eps: 1e-8)
        var reference = weights.parameters.map { $0.tensor.toArray().map(Double.init) }
        var m = reference.map { $0.map { _ in 0.0 } }, v = m
        let lr = 0.01, wd = 0.1
        for step in 1...2 {
            for p in grads.parameters { for i in 0..<p.tensor.count { p.tensor.data[i] = rng.nextNormal() } }
            adam.update(weights, gradients: grads, lr: lr, weightDecay: wd)
            for (k, p) in weights.parameters.enumerated() {
                let decays = p.role == .weight || p.role == .outputWeight || p.role == .embedding
                for i in 0..<p.tensor.count {
                    let g = Double(grads.parameters[k].tensor.data[i])
                    m[k][i] = 0.9 * m[k][i] + 0.1 * g
                    v[k][i] = 0.95 * v[k][i] + 0.05 * g * g
                    let mh = m[k][i] / (1 - pow(0.9, Double(step))), vh = v[k][i] / (1 - pow(0.95, Double(step)))
                    reference[k][i] = reference[k][i] * (decays ? 1 - lr * wd : 1) - lr * mh / (vh.squareRoot() + 1e-8)
                }
            }
        }
        for (k, p) in weights.parameters.enumerated() {
            for i in 0..<p.tensor.count { #expect(abs(Double(p.tensor.data[i]) - reference[k][i]) < 1e-5) }
        }
    }

    @Test("normalizeRMS scales all gradients together to RMS 1")
    func rms() throws {
        let config = ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 16, nCtx: 4, vocab: 10)
        let grads = try TransformerWeights(zerosLike: try TransformerWeights(config: config, seed: 1))
        var rng = SeededRandom(seed: 2)
        var sum = 0.0, n = 0
        for p in grads.parameters {
            for i in 0..<p.tensor.count { p.tensor.data[i] = 3 * rng.nextNormal(); sum += Double(p.tensor.data[i] * p.tensor.data[i]) }
            n += p.tensor.count
        }
        let before = AdamW.normalizeRMS(grads)
        #expect(abs(before - (sum / Double(n)).squareRoot()) < 1e-3)
        var after = 0.0
        for p in grads.parameters { for i in 0..<p.tensor.count { after += Double(p.tensor.data[i] * p.tensor.data[i]) } }
        #expect(abs((after / Double(n)).squareRoot() - 1) < 1e-4)
    }

    @Test("cross-entropy and its gradient match the softmax formula")
    func crossEntropy() {
        var rng = SeededRandom(seed: 5)
        let logits = Tensor.randomNormal([3, 7], std: 2, rng: &rng)
        let grad = Tensor(zeros: [3, 7])
        let targets: [Int32] = [2, -1, 6]
        let (loss, count) = CrossEntropy.loss(logits: logits, targets: targets, gradient: grad)
        #expect(count == 2)
        var expected = 0.0
        for (r, t) in [(0, 2), (2, 6)] {
            let row = (0..<7).map { Double(logits.data[r * 7 + $0]) }
            let z = row.map { exp($0) }.reduce(0, +)
            expected += -log(exp(row[t]) / z)
            for j in 0..<7 {
                let g = (exp(row[j]) / z - (j == t ? 1 : 0)) / 2
                #expect(abs(Double(grad.data[r * 7 + j]) - g) < 1e-6)
            }
        }
        #expect(abs(loss - expected / 2) < 1e-5)
        for j in 0..<7 { #expect(grad.data[7 + j] == 0) }
    }
}
