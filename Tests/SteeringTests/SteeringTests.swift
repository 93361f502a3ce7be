import Bridges
import DePass
import Steering
import Tasks
import Tensors
import Testing
import Model

@Suite("Steering")
struct SteeringTests {
    func setup() throws -> (Steerer, Transformer, PromptPair) {
        let config = ModelConfig(nLayer: 2, dModel: 16, nHead: 2, dMLP: 32, nCtx: 256, attentionSink: true)
        let dense = try Transformer(config: config, seed: 1), sparse = try Transformer(config: config, seed: 2)
        var rng = SeededRandom(seed: 3)
        let map = { BridgeMap(weight: Tensor.randomNormal([16, 16], std: 0.3, rng: &rng), bias: Tensor(zeros: [16])) }
        let site = BridgeSite(hook: "blocks.1.hook_resid_pre", encoder: map(), decoder: map(),
                              meanDense: Tensor(zeros: [16]), meanSparse: Tensor(zeros: [16]))
        let bridge = Bridge(denseConfig: config, sparseConfig: config, denseModel: "d", sparseModel: "s",
                            denseSHA256: "", sparseSHA256: "", provenance: .null, sites: [site])
        let steerer = try Steerer(bridge: bridge, dense: dense, sparse: sparse, site: site.hook, source: .sparse,
                                  rescale: .none, bridgePath: "b")
        let pair = steerer.clip(TaskSuite.singleDoubleQuote.pairs(count: 1, seed: 4)[0])
        return (steerer, dense, pair)
    }

    @Test("α = 0 is the unsteered run, bit for bit")
    func alphaZeroIsUnsteered() throws {
        let (steerer, dense, pair) = try setup()
        let delta = try steerer.delta(pair, channel: 3)
        #expect(delta.contains { $0 != 0 })  // the pair does differ at this channel
        let steered = try steerer.steeredLastLogits(pair.presented.tokens, delta: delta, direction: steerer.direction(channel: 3), alpha: 0)
        let plain = try dense.logits(tokens: pair.presented.tokens)
        let t = pair.presented.tokens.count, v = dense.config.vocab
        let expected = Array(plain.buffer[((t - 1) * v)..<(t * v)])
        #expect(steered.map(\.bitPattern) == expected.map(\.bitPattern))
        let moved = try steerer.steeredLastLogits(pair.presented.tokens, delta: delta, direction: steerer.direction(channel: 3), alpha: 1)
        #expect(moved != expected)
    }

    @Test("DePass of a steered run is exact and its routes add up to the steering component")
    func attributionExact() throws {
        let (steerer, _, pair) = try setup()
        let a = try steerer.attribute(pairs: [pair], channel: 3, alpha: 1)
        #expect(a.worstRelativeError < 1e-4)
        let routes = a.meanRoutes.reduce(0) { $0 + $1.score }
        #expect(abs(routes - a.meanSteeringScore) < 1e-4 * max(1, abs(a.meanSteeringScore)))
    }

    @Test("the predicted effect of a channel's edit is the derivative of the steered logit difference at α = 0")
    func predictedEffectIsTheDerivative() throws {
        let (steerer, _, pair) = try setup()
        let scores = try steerer.rankChannels(pairs: [pair], by: .effect)
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0.predictedEffect <= $1.predictedEffect })
        let tgt = Int(pair.presented.target), alt = Int(pair.presented.alternative)
        for score in [scores.first!, scores.last!] {
            let c = score.channel, delta = try steerer.delta(pair, channel: c), v = steerer.direction(channel: c)
            func diff(_ a: Float) throws -> Double {
                let l = try steerer.steeredLastLogits(pair.presented.tokens, delta: delta, direction: v, alpha: a)
                return Double(l[tgt]) - Double(l[alt])
            }
            let h: Float = 1e-2
            let central = (try diff(h) - diff(-h)) / (2 * Double(h))
            #expect(abs(central - score.predictedEffect) < 2e-3 * max(1, abs(central)),
                    "channel \(c): \(central) vs \(score.predictedEffect)")
        }
        let bySeparation = try steerer.rankChannels(pairs: [pair], by: .separation)
        #expect(zip(bySeparation, bySeparation.dropFirst()).allSatisfy { $0.separation >= $1.separation })
    }
}
