// The DePass API is pure: propagating leaves the given components as they were (so one set
// serves many passes), and one pass gives both the scores and one component's routes.

import Testing
import DePass
import Tensors
import Model

@Suite("Pure DePass")
struct PureDePassTests {
    static func run() throws -> DecomposedForward {
        let c = ModelConfig(nLayer: 2, dModel: 16, nHead: 2, dMLP: 32, nCtx: 12, norm: .layer, activation: .gelu)
        let model = try Transformer(config: c, seed: 5)
        var rng = SeededRandom(seed: 6)
        for p in model.weights.parameters {
            for i in 0..<p.tensor.count { p.tensor[i] = p.role == .gain ? 1 + 0.2 * rng.nextNormal() : rng.nextNormal() / 4 }
        }
        return try DecomposedForward(model: model, tokens: (0..<12).map { _ in Int32(32 + rng.nextInt(95)) })
    }

    @Test("propagate leaves its input components unchanged, and gives the same result twice")
    func inputsUnchanged() throws {
        let run = try Self.run()
        let (comps, start) = run.headComponents(layer: 0)
        let before = comps.data.toArray()
        let first = try run.propagate(comps, from: start)
        #expect(comps.data.toArray() == before)
        let second = try run.propagate(comps, from: start)
        #expect(first.logits.toArray() == second.logits.toArray())
        #expect(first.final.data.toArray() == second.final.data.toArray())
        #expect(first.worstRelativeError < 1e-4)
    }

    @Test("one pass records scores and routes; the routes sum to the routed component's score")
    func scoresAndRoutes() throws {
        let run = try Self.run()
        let (comps, start) = run.headComponents(layer: 0)
        let plain = try run.attribute(comps, from: start, target: 40, alternative: 41)
        let routed = try run.attribute(comps, from: start, target: 40, alternative: 41, routesOf: 1)
        #expect(plain.routes == nil)
        #expect(plain.scores == routed.scores)
        let routes = try #require(routed.routes)
        #expect(routes.first?.name == "direct")
        let sum = routes.reduce(0) { $0 + $1.score }
        #expect(abs(sum - routed.scores[1]) <= 1e-3 * max(1, abs(routed.scores[1])))
    }
}
