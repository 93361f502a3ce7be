// Hook points: named places in the forward pass where activations can be read or

import Foundation
// rewritten. Names follow TransformerLens; circuit_sparsity's names are accepted aliases.

public enum HookPoint: Hashable, Sendable, CustomStringConvertible {
    case embed, posEmbed
    case residPre(Int), ln1Normalized(Int)
    case q(Int), k(Int), v(Int), pattern(Int), z(Int), attnOut(Int), residMid(Int)
    case ln2Normalized(Int), mlpPre(Int), mlpPost(Int), mlpOut(Int), residPost(Int)
    case lnFinalNormalized
    /// The model's output logits (not a TransformerLens hook; readable and writable the same way).
    case logits

    /// The TransformerLens name.
    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .posEmbed: return "hook_pos_embed"
        case .residPre(let l): return "blocks.\(l).hook_resid_pre"
        case .ln1Normalized(let l): return "blocks.\(l).ln1.hook_normalized"
        case .q(let l): return "blocks.\(l).attn.hook_q"
        case .k(let l): return "blocks.\(l).attn.hook_k"
        case .v(let l): return "blocks.\(l).attn.hook_v"
        case .pattern(let l): return "blocks.\(l).attn.hook_pattern"
        case .z(let l): return "blocks.\(l).attn.hook_z"
        case .attnOut(let l): return "blocks.\(l).hook_attn_out"
        case .residMid(let l): return "blocks.\(l).hook_resid_mid"
        case .ln2Normalized(let l): return "blocks.\(l).ln2.hook_normalized"
        case .mlpPre(let l): return "blocks.\(l).mlp.hook_pre"
        case .mlpPost(let l): return "blocks.\(l).mlp.hook_post"
        case .mlpOut(let l): return "blocks.\(l).hook_mlp_out"
        case .residPost(let l): return "blocks.\(l).hook_resid_post"
        case .lnFinalNormalized: return "ln_final.hook_normalized"
        case .logits: return "logits"
        }
    }

    public var description: String { name }

    public var layer: Int? {
        switch self {
        case .embed, .posEmbed, .lnFinalNormalized, .logits: return nil
        case .residPre(let l), .ln1Normalized(let l), .q(let l), .k(let l), .v(let l), .pattern(let l), .z(let l),
             .attnOut(let l), .residMid(let l), .ln2Normalized(let l), .mlpPre(let l), .mlpPost(let l),
             .mlpOut(let l), .residPost(let l):
            return l
        }
    }

    /// Position in execution order; the forward pass can stop after the largest one hooked.
    public var order: Int {
        let perLayer = 14
        switch self {
        case .embed: return 0
        case .posEmbed: return 1
        case .lnFinalNormalized: return Int.max - 2
        case .logits: return Int.max - 1
        case .residPre(let l): return 2 + l * perLayer
        case .ln1Normalized(let l): return 3 + l * perLayer
        case .q(let l): return 4 + l * perLayer
        case .k(let l): return 5 + l * perLayer
        case .v(let l): return 6 + l * perLayer
        case .pattern(let l): return 7 + l * perLayer
        case .z(let l): return 8 + l * perLayer
        case .attnOut(let l): return 9 + l * perLayer
        case .residMid(let l): return 10 + l * perLayer
        case .ln2Normalized(let l): return 11 + l * perLayer
        case .mlpPre(let l): return 12 + l * perLayer
        case .mlpPost(let l): return 13 + l * perLayer
        case .mlpOut(let l): return 14 + l * perLayer
        case .residPost(let l): return 15 + l * perLayer
        }
    }

    /// The shape of one sequence's activation at this hook, [T, …].
    public func shape(config c: ModelConfig, seqLen t: Int) -> [Int] {
        switch self {
        case .q, .k, .v, .z: return [t, c.nHead, c.dHead]
        case .pattern: return [c.nHead, t, t]
        case .mlpPre, .mlpPost: return [t, c.dMLP]
        case .logits: return [t, c.vocab]
        default: return [t, c.dModel]
        }
    }

    /// Width of one token's row when the activation is stored as [tokens, width]
    /// (attention patterns are stored per query token: [n_head · T]).
    public func rowWidth(config c: ModelConfig, seqLen t: Int) -> Int {
        switch self {
        case .q, .k, .v, .z: return c.nHead * c.dHead
        case .pattern: return c.nHead * t
        case .mlpPre, .mlpPost: return c.dMLP
        case .logits: return c.vocab
        default: return c.dModel
        }
    }

    /// Every hook point of a model with this config, in execution order.
    public static func all(config c: ModelConfig) -> [HookPoint] {
        var points: [HookPoint] = [.embed]
        if c.positional == .learned { points.append(.posEmbed) }
        for l in 0..<c.nLayer {
            points += [.residPre(l), .ln1Normalized(l), .q(l), .k(l), .v(l), .pattern(l), .z(l), .attnOut(l),
                       .residMid(l), .ln2Normalized(l), .mlpPre(l), .mlpPost(l), .mlpOut(l), .residPost(l)]
        }
        points += [.lnFinalNormalized, .logits]
        return points
    }

    /// The residual-stream sites where bridges attach: before each attention and MLP block,
    /// and after the last block.
    public static func bridgeSites(config c: ModelConfig) -> [HookPoint] {
        (0..<c.nLayer).flatMap { [HookPoint.residPre($0), .residMid($0)] } + [.residPost(c.nLayer - 1)]
    }

    /// circuit_sparsity's name for this point, where it has one.
    public func alias(config c: ModelConfig) -> String? {
        switch self {
        case .residPre(let l): return "\(l).resid_in"
        case .ln1Normalized(let l): return "\(l).attn.act_in"
        case .q(let l): return "\(l).attn.q"
        case .k(let l): return "\(l).attn.k"
        case .v(let l): return "\(l).attn.v"
        case .z(let l): return "\(l).attn.y"
        case .attnOut(let l): return "\(l).attn.resid_delta"
        case .residMid(let l): return "\(l).resid_mid"
        case .ln2Normalized(let l): return "\(l).mlp.act_in"
        case .mlpPost(let l): return "\(l).mlp.post_act"
        case .mlpOut(let l): return "\(l).mlp.resid_delta"
        case .residPost(let l) where l == c.nLayer - 1: return "final_resid"
        default: return nil
        }
    }

    /// Parses a TransformerLens name or a circuit_sparsity alias. Unknown names throw an error
    /// that lists the nearest valid names.
    public static func parse(_ text: String, config c: ModelConfig) throws -> HookPoint {
        let name = text.trimmingCharacters(in: .whitespaces)
        for point in all(config: c) where point.name == name || point.alias(config: c) == name {
            return point
        }
        var candidates: [(name: String, distance: Int)] = []
        for point in all(config: c) {
            candidates.append((point.name, editDistance(point.name, name)))
            if let alias = point.alias(config: c) { candidates.append((alias, editDistance(alias, name))) }
        }
        candidates.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.name < $1.name) }
        throw ModelError.unknownHook(name, suggestions: candidates.prefix(3).map { $0.name })
    }

    /// Parses a comma-separated list of names; the item "all" means every hook point and
    /// "resid" the bridge sites. Duplicates are dropped, order is kept.
    public static func parseList(_ text: String, config c: ModelConfig) throws -> [HookPoint] {
        var seen = Set<HookPoint>(), out: [HookPoint] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let points: [HookPoint]
            switch item {
            case "all": points = all(config: c)
            case "resid": points = bridgeSites(config: c)
            default: points = [try parse(item, config: c)]
            }
            for p in points where seen.insert(p).inserted { out.append(p) }
        }
        return out
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...max(1, b.count) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        if b.isEmpty { current[0] = i }
        swap(&previous, &current)
    }
    return previous[b.count]
}
