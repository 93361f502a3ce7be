import Circuits
import Foundation
import Tasks
import Tensors
import Testing
import Model
import Text

/// The pruner against a circuit we know: a bracket-counting circuit planted in random sparse weights.
@Suite("Planted bracket circuit")
struct PlantedCircuitTests {
    static let target = 0.15

    /// A random model with trained-like magnitudes (not GPT-2's tiny initialisation), a
    /// quarter of each matrix kept, its entries then shuffled, and the circuit planted.
    static func planted() throws -> PlantedCircuit {
        let c = ModelConfig(nLayer: 2, dModel: 32, nHead: 4, dMLP: 64, nCtx: 256, norm: .layer, bias: true)
        let base = try Transformer(config: c, seed: 11)
        var rng = SeededRandom(seed: 12)
        for p in base.weights.parameters {
            for i in 0..<p.tensor.count {
                switch p.role {
                case .weight, .outputWeight, .embedding: p.tensor.data[i] = rng.nextUniform() < 0.25 ? 0.4 * rng.nextNormal() : 0
                case .bias: p.tensor.data[i] = 0.1 * rng.nextNormal()
                default: break
                }
            }
        }
        let model = try PlantedCircuit.shuffled(base.weights, seed: 13)
        var corpus = SyntheticCorpus(seed: 5)
        return try PlantedCircuit.plantBrackets(in: model, open: 91, close: 93, newline: 10, corpus: &corpus, flipLength: 300, seed: 14)
    }

    static func mask(open ids: [String], _ c: ModelConfig) -> NodeMask {
        var mask = NodeMask.all(c, open: false)
        for loc in NodeLocation.all(c) {
            for j in 0..<loc.width(c) where ids.contains(CircuitGraph.id(loc, j)) { mask.open[loc]![j] = true }
        }
        return mask
    }

    func pruner(_ p: PlantedCircuit, ablation: AblationKind, steps: Int) throws -> Pruner {
        var corpus = SyntheticCorpus(seed: 5)
        let values = ablation == .mean ? try AblationValues.means(model: p.model, corpus: &corpus, sequences: 8, seqLen: 128)
                                       : AblationValues.zeros(p.model.config)
        var options = PruneOptions()
        options.steps = steps
        options.targetLoss = Self.target
        return Pruner(model: p.model, ablation: values, options: options)
    }

    static let task = try! TaskSuite.named("bracket_counting")
    static let sizing = task.pairs(count: 128, seed: 501).flatMap(\.prompts)

    @Test("the planted model does the task, its circuit alone does, and every planted node is needed",
          arguments: AblationKind.allCases)
    func plantedCircuitIsMinimal(ablation: AblationKind) throws {
        let p = try Self.planted()
        let c = p.model.config, nodes = p.nodes
        let pr = try pruner(p, ablation: ablation, steps: 1)
        let full = try pr.evaluate(NodeMask.all(c, open: true), prompts: Self.sizing)
        #expect(full.accuracy >= 0.9 && full.loss < Self.target, "full planted model: \(full)")
        let alone = try pr.evaluate(Self.mask(open: nodes, c), prompts: Self.sizing)
        #expect(pr.meetsTarget(alone), "planted nodes alone: \(alone)")
        for node in nodes {
            let without = try pr.evaluate(Self.mask(open: nodes.filter { $0 != node }, c), prompts: Self.sizing)
            #expect(without.loss > Self.target, "\(node) is not needed: loss \(without.loss) without it")
        }
    }

    @Test("the pruner recovers the planted circuit with at most a few extra nodes", arguments: AblationKind.allCases)
    func prunerRecoversIt(ablation: AblationKind) throws {
        let p = try Self.planted()
        let pr = try pruner(p, ablation: ablation, steps: 150)
        try pr.optimize(batches: { step in Self.task.pairs(count: 32, seed: 2_000_000 + UInt64(step)).flatMap(\.prompts) })
        guard let (mask, _) = try pr.circuit(validation: Self.sizing) else {
            Issue.record("no circuit reached the target")
            return
        }
        func ids(_ m: NodeMask) -> Set<String> { Set(CircuitGraph(model: p.model, mask: m).nodes.map { CircuitGraph.id($0.location, $0.index) }) }
        let planted = Set(p.nodes), found = ids(mask)
        #expect(planted.isSubset(of: found), "missing: \(planted.subtracting(found).sorted())")
        let refined = ids(try pr.refine(mask, prompts: Self.sizing).mask)
        print("planted check, \(ablation) ablation: \(found.count) nodes after the search, \(refined.count) after refining")
        #expect(planted.isSubset(of: refined), "missing after refining: \(planted.subtracting(refined).sorted())")
        #expect(refined.count <= planted.count + 3, "extra: \(refined.subtracting(planted).sorted())")
    }
}
