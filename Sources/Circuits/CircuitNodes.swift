// Circuit nodes: the channels at which a circuit can be cut. Per layer: the attention
// block's input after its norm (attn_in), its query, key and value channels, its output
// (attn_out, the block's write), the MLP input (mlp_in), the MLP neurons (mlp_neuron) and
// the MLP output (mlp_out); at the end, the final norm's output (final_in). A node is one
// channel of one location; a pruned node is replaced by its mean over the corpus (or zero).

import Foundation
import Tasks
import Tensors
import Model
import Text

public struct NodeLocation: Hashable, Sendable, Codable {
    public let kind: String   // attn_in, attn_q, attn_k, attn_v, attn_out, mlp_in, mlp_neuron, mlp_out, final_in
    public let layer: Int     // −1 for final_in

    public init(kind: String, layer: Int) {
        self.kind = kind
        self.layer = layer
    }

    public func hook() -> HookPoint {
        switch kind {
        case "attn_in": return .ln1Normalized(layer)
        case "attn_q": return .q(layer)
        case "attn_k": return .k(layer)
        case "attn_v": return .v(layer)
        case "attn_out": return .attnOut(layer)
        case "mlp_in": return .ln2Normalized(layer)
        case "mlp_neuron": return .mlpPost(layer)
        case "mlp_out": return .mlpOut(layer)
        default: return .lnFinalNormalized
        }
    }

    public var name: String { layer >= 0 ? "\(layer).\(kind)" : kind }

    /// Every location of a model, in execution order.
    public static func all(_ c: ModelConfig) -> [NodeLocation] {
        (0..<c.nLayer).flatMap { l in
            ["attn_in", "attn_q", "attn_k", "attn_v", "attn_out", "mlp_in", "mlp_neuron",
             "mlp_out"].map { NodeLocation(kind: $0, layer: l) }
        } + [NodeLocation(kind: "final_in", layer: -1)]
    }

    public func width(_ c: ModelConfig) -> Int {
        switch kind {
        case "attn_q", "attn_k", "attn_v": return c.attentionWidth
        case "mlp_neuron": return c.dMLP
        default: return c.dModel
        }
    }
}

public enum AblationKind: String, Sendable, CaseIterable { case mean, zero }

/// Per-location values a pruned node takes: corpus means (mean ablation) or zeros.
public struct AblationValues: Sendable {
    public let values: [NodeLocation: [Float]]

    public static func zeros(_ c: ModelConfig) -> AblationValues {
        AblationValues(values: Dictionary(uniqueKeysWithValues: NodeLocation.all(c).map { ($0,
                                                                                           [Float](repeating: 0, count: $0.width(c))) }))
    }

    /// Means over `sequences` sequences of `seqLen` tokens of corpus text.
    public static func means(model: Transformer, corpus: inout some TokenStream, sequences: Int, seqLen: Int) throws -> AblationValues {
        let c = model.config, locations = NodeLocation.all(c)
        var sums = Dictionary(uniqueKeysWithValues: locations.map { ($0, [Double](repeating: 0, count: $0.width(c))) })
        var rows = 0
        let hooks = Hooks()
        for loc in locations {
            hooks.add(loc.hook()) { ctx in
                let w = loc.width(c), n = ctx.activation.count / w
                var s = sums[loc]!
                for r in 0..<n { for j in 0..<w { s[j] += Double(ctx.activation.data[r * w + j]) } }
                sums[loc] = s
            }
        }
        for _ in 0..<sequences {
            guard let tokens = try corpus.next(seqLen) else { break }
            try model.forward(tokens: tokens, batch: 1, seqLen: seqLen, hooks: hooks)
            rows += seqLen
        }
        return AblationValues(values: sums.mapValues { $0.map { Float($0 / Double(max(rows, 1))) } })
    }
}

/// A 0/1 mask per node.
public struct NodeMask: Sendable {
    public var open: [NodeLocation: [Bool]]

    public static func all(_ c: ModelConfig, open: Bool) -> NodeMask {
        NodeMask(open: Dictionary(uniqueKeysWithValues: NodeLocation.all(c).map { ($0, [Bool](repeating: open, count: $0.width(c))) }))
    }

    public var openCount: Int { open.values.reduce(0) { $0 + $1.filter { $0 }.count } }
    public var total: Int { open.values.reduce(0) { $0 + $1.count } }

    public func inverted() -> NodeMask { NodeMask(open: open.mapValues { $0.map { !$0 } }) }

    /// Forward hooks: every closed node takes its ablation value.
    public func hooks(_ c: ModelConfig, ablation: AblationValues) -> Hooks {
        let hooks = Hooks()
        for (loc, flags) in open where flags.contains(false) {
            let values = ablation.values[loc]!
            let closed = flags.indices.filter { !flags[$0] }
            hooks.add(loc.hook()) { ctx in
                let w = loc.width(c), n = ctx.activation.count / w
                for r in 0..<n { for j in closed { ctx.activation.data[r * w + j] = values[j] } }
            }
        }
        return hooks
    }
}
