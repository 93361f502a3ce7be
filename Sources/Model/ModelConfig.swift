// The model's shape and options, exactly as stored in a model file's `config` attribute
// (JSON, snake_case keys). One architecture serves dense and weight-sparse models.

import Foundation
import Tensors

public enum Positional: String, Codable, Sendable { case learned, none }

/// Activation sites where AbsTopK can apply (circuit_sparsity's `afrac_loctypes`).
public enum AbsTopKLocation: String, Codable, Sendable, CaseIterable {
    case attnIn = "attn_in", attnQ = "attn_q", attnK = "attn_k", attnV = "attn_v", attnOut = "attn_out"
    case mlpIn = "mlp_in", mlpNeuron = "mlp_neuron", mlpOut = "mlp_out"
    case residPostAttn = "resid_post_attn", residPostMLP = "resid_post_mlp"

    /// The circuit node locations: every site but the residual stream itself.
    public static let nodeLocations: [AbsTopKLocation] =
        [.attnIn, .attnQ, .attnK, .attnV, .attnOut, .mlpIn, .mlpNeuron, .mlpOut]
}

public struct ModelConfig: Codable, Equatable, Sendable {
    public var nLayer: Int
    public var dModel: Int
    public var nHead: Int
    /// Width of one head; may differ from dModel / nHead.
    public var dHead: Int
    public var dMLP: Int
    public var nCtx: Int
    public var vocab: Int
    public var norm: NormKind = .layer
    public var activation: ActivationKind = .gelu
    public var positional: Positional = .learned
    /// Per-head learnable sink logit with zero key and value (takes a share of attention).
    public var attentionSink: Bool = false
    /// A [vocab, vocab] table added to the logits, indexed by the current token.
    public var bigramTable: Bool = false
    /// AbsTopK keep fraction at the node locations (1 = off).
    public var afrac: Double = 1
    /// Where AbsTopK applies when afrac < 1 (circuit_sparsity's location names).
    public var afracLocations: [AbsTopKLocation] = AbsTopKLocation.nodeLocations
    /// Unembedding is the transposed token embedding.
    public var tiedUnembed: Bool = false
    /// Biases on every linear map and on LayerNorm.
    public var bias: Bool = true
    public var normEps: Double = 1e-5

    enum CodingKeys: String, CodingKey, CaseIterable {
        case nLayer = "n_layer", dModel = "d_model", nHead = "n_head", dHead = "d_head", dMLP = "d_mlp"
        case nCtx = "n_ctx", vocab, norm, activation, positional
        case attentionSink = "attention_sink", bigramTable = "bigram_table", afrac, afracLocations = "afrac_locations"
        case tiedUnembed = "tied_unembed", bias, normEps = "norm_eps"
    }

    public init(nLayer: Int, dModel: Int, nHead: Int, dHead: Int? = nil, dMLP: Int, nCtx: Int, vocab: Int = 128,
                norm: NormKind = .layer, activation: ActivationKind = .gelu, positional: Positional = .learned,
                attentionSink: Bool = false, bigramTable: Bool = false, afrac: Double = 1,
                afracLocations: [AbsTopKLocation] = AbsTopKLocation.nodeLocations, tiedUnembed: Bool = false, bias: Bool = true, normEps: Double = 1e-5) {
        self.nLayer = nLayer; self.dModel = dModel; self.nHead = nHead
        self.dHead = dHead ?? (nHead > 0 ? dModel / nHead : 0)
        self.dMLP = dMLP; self.nCtx = nCtx; self.vocab = vocab
        self.norm = norm; self.activation = activation; self.positional = positional
        self.attentionSink = attentionSink; self.bigramTable = bigramTable; self.afrac = afrac
        self.afracLocations = afracLocations
        self.tiedUnembed = tiedUnembed; self.bias = bias; self.normEps = normEps
    }

    public init(from decoder: Decoder) throws {
        // Unknown keys are refused: a misspelt option must not silently fall back to a default.
        if let unknown = try unknownKey(in: decoder, known: CodingKeys.allCases.map(\.rawValue)) {
            throw ModelError.badConfig("unknown config field \"\(unknown)\"")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nLayer = try c.decode(Int.self, forKey: .nLayer)
        dModel = try c.decode(Int.self, forKey: .dModel)
        nHead = try c.decode(Int.self, forKey: .nHead)
        dMLP = try c.decode(Int.self, forKey: .dMLP)
        nCtx = try c.decode(Int.self, forKey: .nCtx)
        vocab = try c.decodeIfPresent(Int.self, forKey: .vocab) ?? 128
        if let dh = try c.decodeIfPresent(Int.self, forKey: .dHead) {
            dHead = dh
        } else {
            guard nHead > 0, dModel % nHead == 0 else {
                throw ModelError.badConfig("d_head is not given and d_model \(dModel) is not divisible by n_head \(nHead)")
            }
            dHead = dModel / nHead
        }
        norm = try c.decodeIfPresent(NormKind.self, forKey: .norm) ?? .layer
        activation = try c.decodeIfPresent(ActivationKind.self, forKey: .activation) ?? .gelu
        positional = try c.decodeIfPresent(Positional.self, forKey: .positional) ?? .learned
        attentionSink = try c.decodeIfPresent(Bool.self, forKey: .attentionSink) ?? false
        bigramTable = try c.decodeIfPresent(Bool.self, forKey: .bigramTable) ?? false
        afrac = try c.decodeIfPresent(Double.self, forKey: .afrac) ?? 1
        afracLocations = try c.decodeIfPresent([AbsTopKLocation].self, forKey: .afracLocations) ?? AbsTopKLocation.nodeLocations
        tiedUnembed = try c.decodeIfPresent(Bool.self, forKey: .tiedUnembed) ?? false
        bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
        normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? 1e-5
    }

    /// Throws `ModelError.badConfig` naming the first inconsistent field.
    public func validate() throws {
        for (name, value) in [("n_layer", nLayer), ("d_model", dModel), ("n_head", nHead), ("d_head", dHead),
                              ("d_mlp", dMLP), ("n_ctx", nCtx), ("vocab", vocab)] where value <= 0 {
            throw ModelError.badConfig("\(name) must be positive, got \(value)")
        }
        if nLayer > 1024 || dModel > 65536 || dMLP > 262_144 || nCtx > 1 << 20 || vocab > 1 << 22 || nHead > 4096 {
            throw ModelError.badConfig("sizes are implausibly large (n_layer \(nLayer), d_model \(dModel), d_mlp \(dMLP), n_ctx "
                    + "\(nCtx), vocab \(vocab))")
        }
        if !(afrac > 0 && afrac <= 1) { throw ModelError.badConfig("afrac must be in (0, 1], got \(afrac)") }
        if !(normEps > 0 && normEps < 1) { throw ModelError.badConfig("norm_eps must be in (0, 1), got \(normEps)") }
    }

    public var attentionWidth: Int { nHead * dHead }

    /// AbsTopK's kept count at `location` for a row of `width`, or nil where it does not apply.
    public func absTopK(_ location: AbsTopKLocation, width: Int) -> Int? {
        guard afrac < 1, afracLocations.contains(location) else { return nil }
        return Kernels.absTopKCount(width: width, fraction: afrac)
    }

    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(json: String, source: String) throws -> ModelConfig {
        do {
            let config = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
            try config.validate()
            return config
        } catch let error as ModelError {
            throw error.in(source)
        } catch {
            throw ModelError.badConfig("\(source): \(describeDecodingError(error))")
        }
    }
}

/// The first key of the JSON object being decoded that is not in `known`, if any.
public func unknownKey(in decoder: Decoder, known: [String]) throws -> String? {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    let names = Set(known)
    return try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).first { !names.contains($0) }
}

/// A one-line explanation of a JSONDecoder failure.
public func describeDecodingError(_ error: Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ ctx: DecodingError.Context) -> String {
        ctx.codingPath.map(\.stringValue).joined(separator: ".")
    }
    switch e {
    case .keyNotFound(let key, _): return "missing field \"\(key.stringValue)\""
    case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
        return "field \"\(path(ctx))\" has the wrong type"
    case .dataCorrupted(let ctx):
        let p = path(ctx)
        return p.isEmpty ? "not valid JSON" : "field \"\(p)\" has an invalid value"
    @unknown default: return "\(error)"
    }
}
