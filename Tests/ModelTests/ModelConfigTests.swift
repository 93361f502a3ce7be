// ModelConfig JSON, hook-point names and the character tokenizer.

import Foundation
import Testing
import Tensors
import Model
import Text

@Suite("ModelConfig")
struct ModelConfigTests {
    static func decode(_ json: String) throws -> ModelConfig {
        try ModelConfig.decode(json: json, source: "test.json")
    }

    static let minimal = #"{"n_layer": 2, "d_model": 16, "n_head": 4, "d_mlp": 64, "n_ctx": 32}"#

    @Test("omitted fields take their documented defaults")
    func defaults() throws {
        let c = try Self.decode(Self.minimal)
        #expect(c.nLayer == 2 && c.dModel == 16 && c.nHead == 4 && c.dMLP == 64 && c.nCtx == 32)
        #expect(c.dHead == 4)
        #expect(c.attentionWidth == 16)
        #expect(c.vocab == 128)
        #expect(c.norm == .layer)
        #expect(c.activation == .gelu)
        #expect(c.positional == .learned)
        #expect(c.attentionSink == false && c.bigramTable == false && c.tiedUnembed == false)
        #expect(c.afrac == 1)
        #expect(c.afracLocations == AbsTopKLocation.nodeLocations)
        #expect(c.bias == true)
        #expect(c.normEps == 1e-5)
        // The memberwise initialiser agrees.
        #expect(c == ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 64, nCtx: 32))
    }

    @Test("every field is read from its snake_case key")
    func allFields() throws {
        let json = #"""
        {"n_layer": 3, "d_model": 24, "n_head": 2, "d_head": 5, "d_mlp": 40, "n_ctx": 64, "vocab": 300,
         "norm": "rms", "activation": "gelu_tanh", "positional": "none", "attention_sink": true,
         "bigram_table": true, "afrac": 0.25, "afrac_locations": ["attn_q", "mlp_neuron"],
         "tied_unembed": true, "bias": false, "norm_eps": 1e-6}
        """#
        let c = try Self.decode(json)
        #expect(c == ModelConfig(nLayer: 3, dModel: 24, nHead: 2, dHead: 5, dMLP: 40, nCtx: 64, vocab: 300,
                                 norm: .rms, activation: .geluTanh, positional: .none, attentionSink: true,
                                 bigramTable: true, afrac: 0.25, afracLocations: [.attnQ, .mlpNeuron],
                                 tiedUnembed: true, bias: false, normEps: 1e-6))
        #expect(c.attentionWidth == 10)
        #expect(c.absTopK(.attnQ, width: 10) == 2)
        #expect(c.absTopK(.attnK, width: 10) == nil)  // not a chosen location
        #expect(ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 8, nCtx: 4).absTopK(.attnQ, width: 8) == nil)
    }

    @Test("an unknown field is an error naming it")
    func unknownField() {
        let json = #"{"n_layer": 2, "d_model": 16, "n_head": 4, "d_mlp": 64, "n_ctx": 32, "n_layers": 3}"#
        let error = #expect(throws: ModelError.self) { _ = try Self.decode(json) }
        #expect(error == .badFile(path: "test.json", "bad config: unknown config field \"n_layers\""))
        // Decoding directly gives the config error itself.
        let direct = #expect(throws: ModelError.self) { _ = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)) }
        #expect(direct == .badConfig("unknown config field \"n_layers\""))
    }

    @Test("d_model not divisible by n_head needs d_head")
    func indivisible() throws {
        let json = #"{"n_layer": 1, "d_model": 10, "n_head": 3, "d_mlp": 8, "n_ctx": 8}"#
        let error = #expect(throws: ModelError.self) { _ = try Self.decode(json) }
        #expect(error?.description.contains("d_head") == true)
        #expect(error?.description.contains("test.json") == true)
        let withHead = try Self.decode(#"{"n_layer": 1, "d_model": 10, "n_head": 3, "d_head": 4, "d_mlp": 8, "n_ctx": 8}"#)
        #expect(withHead.dHead == 4 && withHead.attentionWidth == 12)
    }

    @Test("missing fields, wrong types and bad JSON are one-line errors")
    func malformed() {
        let missing = #expect(throws: ModelError.self) { _ = try Self.decode(#"{"n_layer": 2, "d_model": 16, "n_head": 4, "n_ctx": 32}"#) }
        #expect(missing?.description.contains("d_mlp") == true)
        let wrongType = #expect(throws: ModelError.self) {
            _ = try Self.decode(#"{"n_layer": "two", "d_model": 16, "n_head": 4, "d_mlp": 8, "n_ctx": 32}"#)
        }
        #expect(wrongType?.description.contains("n_layer") == true)
        let badEnum = #expect(throws: ModelError.self) {
            _ = try Self.decode(#"{"n_layer": 2, "d_model": 16, "n_head": 4, "d_mlp": 8, "n_ctx": 32, "norm": "batch"}"#)
        }
        #expect(badEnum?.description.contains("norm") == true)
        #expect(throws: ModelError.self) { _ = try Self.decode("{not json") }
    }

    @Test("validate rejects zero and negative sizes, naming the field",
          arguments: ["n_layer", "d_model", "n_head", "d_head", "d_mlp", "n_ctx", "vocab"], [0, -3])
    func nonPositive(field: String, value: Int) {
        var c = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 32, nCtx: 8)
        switch field {
        case "n_layer": c.nLayer = value
        case "d_model": c.dModel = value
        case "n_head": c.nHead = value
        case "d_head": c.dHead = value
        case "d_mlp": c.dMLP = value
        case "n_ctx": c.nCtx = value
        default: c.vocab = value
        }
        let error = #expect(throws: ModelError.self) { try c.validate() }
        #expect(error == .badConfig("\(field) must be positive, got \(value)"))
    }

    @Test("afrac must lie in (0, 1]")
    func afracRange() throws {
        var c = ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 8, nCtx: 4)
        for bad in [0, -0.5, 1.0000001, 2, Double.nan] {
            c.afrac = bad
            let error = #expect(throws: ModelError.self) { try c.validate() }
            #expect(error?.description.contains("afrac") == true)
        }
        for good in [1, 0.5, 0.01, 1e-9] {
            c.afrac = good
            #expect(throws: Never.self) { try c.validate() }
        }
        c.afrac = 1
        c.normEps = 0
        #expect(throws: ModelError.self) { try c.validate() }
    }

    @Test("encode then decode gives the same config")
    func roundTrip() throws {
        let configs = [TestConfigs.gpt2, TestConfigs.sparse, TestConfigs.mixed,
                       ModelConfig(nLayer: 4, dModel: 32, nHead: 4, dHead: 5, dMLP: 64, nCtx: 512, vocab: 1000,
                                   afrac: 0.125, afracLocations: [.attnOut, .residPostMLP], normEps: 3e-7)]
        for c in configs {
            #expect(try Self.decode(c.jsonString()) == c)
            #expect(try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c)) == c)
        }
        // Keys are snake_case and sorted, so the string is stable.
        let json = TestConfigs.gpt2.jsonString()
        #expect(json.contains("\"n_layer\":2") && json.contains("\"d_head\":4") && json.contains("\"activation\":\"gelu_tanh\""))
        #expect(json == TestConfigs.gpt2.jsonString())
    }
}

@Suite("HookPoint names")
struct HookPointTests {
    static let config = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 32, nCtx: 8)

    @Test("TransformerLens names and circuit_sparsity aliases")
    func parse() throws {
        let c = Self.config
        let cases: [(String, HookPoint)] = [
            ("hook_embed", .embed), ("hook_pos_embed", .posEmbed),
            ("blocks.0.hook_resid_pre", .residPre(0)), ("0.resid_in", .residPre(0)), ("1.resid_in", .residPre(1)),
            ("blocks.1.ln1.hook_normalized", .ln1Normalized(1)), ("1.attn.act_in", .ln1Normalized(1)),
            ("blocks.0.attn.hook_q", .q(0)), ("0.attn.q", .q(0)), ("0.attn.k", .k(0)), ("1.attn.v", .v(1)),
            ("blocks.1.attn.hook_pattern", .pattern(1)),
            ("blocks.0.attn.hook_z", .z(0)), ("0.attn.y", .z(0)),
            ("blocks.0.hook_attn_out", .attnOut(0)), ("0.attn.resid_delta", .attnOut(0)),
            ("blocks.1.hook_resid_mid", .residMid(1)), ("1.resid_mid", .residMid(1)),
            ("blocks.0.ln2.hook_normalized", .ln2Normalized(0)), ("0.mlp.act_in", .ln2Normalized(0)),
            ("blocks.0.mlp.hook_pre", .mlpPre(0)),
            ("blocks.0.mlp.hook_post", .mlpPost(0)), ("0.mlp.post_act", .mlpPost(0)),
            ("blocks.1.hook_mlp_out", .mlpOut(1)), ("1.mlp.resid_delta", .mlpOut(1)),
            ("blocks.1.hook_resid_post", .residPost(1)), ("final_resid", .residPost(1)),
            ("blocks.0.hook_resid_post", .residPost(0)),
            ("ln_final.hook_normalized", .lnFinalNormalized), ("logits", .logits),
            ("  blocks.0.hook_resid_pre ", .residPre(0)),
        ]
        for (name, point) in cases {
            #expect(try HookPoint.parse(name, config: c) == point, "\(name)")
        }
        // Every point parses back from its own name and alias.
        for point in HookPoint.all(config: c) {
            #expect(try HookPoint.parse(point.name, config: c) == point)
            if let alias = point.alias(config: c) { #expect(try HookPoint.parse(alias, config: c) == point) }
        }
        // final_resid is the last layer's resid_post only.
        #expect(HookPoint.residPost(0).alias(config: c) == nil)
    }

    @Test("an unknown name lists the nearest valid names")
    func unknown() {
        let error = #expect(throws: ModelError.self) { _ = try HookPoint.parse("blocks.0.hook_resid_pr", config: Self.config) }
        guard case .unknownHook(let name, let suggestions)? = error else {
            Issue.record("expected unknownHook, got \(String(describing: error))")
            return
        }
        #expect(name == "blocks.0.hook_resid_pr")
        #expect(suggestions.first == "blocks.0.hook_resid_pre")
        #expect(suggestions.count == 3)
        #expect(error?.description.contains("blocks.0.hook_resid_pre") == true)
        // Layers past n_layer do not exist.
        #expect(throws: ModelError.self) { _ = try HookPoint.parse("blocks.2.hook_resid_pre", config: Self.config) }
        let alias = #expect(throws: ModelError.self) { _ = try HookPoint.parse("0.mlp.post_ac", config: Self.config) }
        if case .unknownHook(_, let s)? = alias { #expect(s.first == "0.mlp.post_act") }
        // positional = none has no hook_pos_embed.
        var noPos = Self.config
        noPos.positional = .none
        #expect(throws: ModelError.self) { _ = try HookPoint.parse("hook_pos_embed", config: noPos) }
    }

    @Test("parseList: resid gives the bridge sites; lists dedupe")
    func parseList() throws {
        for nLayer in [1, 2, 5] {
            let c = ModelConfig(nLayer: nLayer, dModel: 8, nHead: 2, dMLP: 8, nCtx: 4)
            let sites = try HookPoint.parseList("resid", config: c)
            #expect(sites.count == 2 * nLayer + 1)
            #expect(sites == (0..<nLayer).flatMap { [HookPoint.residPre($0), .residMid($0)] } + [.residPost(nLayer - 1)])
            #expect(try HookPoint.parseList("resid,0.resid_in,hook_embed", config: c) == sites + [.embed])
            #expect(try HookPoint.parseList("all", config: c).count == 2 + 14 * nLayer + 2)
        }
        let list = try HookPoint.parseList("0.resid_in,blocks.1.attn.hook_q,blocks.0.hook_resid_pre,final_resid", config: Self.config)
        #expect(list == [.residPre(0), .q(1), .residPost(1)])
        #expect(throws: ModelError.self) { _ = try HookPoint.parseList("0.resid_in,nonsense", config: Self.config) }
    }

    @Test("execution order, shapes and row widths")
    func orderAndShapes() {
        let c = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dHead: 3, dMLP: 32, nCtx: 8, vocab: 50)
        let all = HookPoint.all(config: c)
        #expect(all.count == Set(all).count)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.order < $1.order })
        #expect(HookPoint.q(0).shape(config: c, seqLen: 5) == [5, 4, 3])
        #expect(HookPoint.pattern(1).shape(config: c, seqLen: 5) == [4, 5, 5])
        #expect(HookPoint.mlpPost(0).shape(config: c, seqLen: 5) == [5, 32])
        #expect(HookPoint.residMid(1).shape(config: c, seqLen: 5) == [5, 16])
        #expect(HookPoint.logits.shape(config: c, seqLen: 5) == [5, 50])
        #expect(HookPoint.pattern(0).rowWidth(config: c, seqLen: 5) == 20)
        #expect(HookPoint.z(0).rowWidth(config: c, seqLen: 5) == 12)
        #expect(HookPoint.residPre(1).layer == 1 && HookPoint.embed.layer == nil)
    }
}
