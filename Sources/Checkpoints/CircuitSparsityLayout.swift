// The `circuit-sparsity` checkpoint layout: models released with Gao et al. 2025
// (openai/circuit_sparsity, `circuit_sparsity/inference/gpt.py`). A model folder holds
// `beeg_config.json` (GPTConfig's fields) and `final_model.pt` (the state_dict, zeros stored
// explicitly); the same state_dict may come as safetensors. Tokenizer files `encoder.json` +
// `vocab.bpe` are taken from the folder when present.
//
// The GPT uses nn.Linear, whose weight is [out, in]; ours are [in, out], so every matrix is
// transposed on import (unlike Hugging Face GPT-2, whose Conv1D is already [in, out]):
//   transformer.wte.weight            [vocab, d]        → embed/W_E (as is)
//   transformer.wpe.weight            [block_size, d]   → pos_embed/W_pos; all zero → positional none
//   transformer.h.L.ln_1.weight/.bias [d]               → blocks/L/ln1/w, b (ln_2 → ln2)
//   transformer.h.L.attn.c_attn.weight [3·H·dh, d]      → transposed, columns Q | K | V → W_Q, W_K, W_V
//   transformer.h.L.attn.c_attn.bias   [3·H·dh]         → b_Q | b_K | b_V
//   transformer.h.L.attn.c_proj.weight [d, H·dh]        → W_O (transposed); .bias → b_O
//   transformer.h.L.attn.attn_imp.sink_logit [H] or [1] → blocks/L/attn/sink (a shared one repeated)
//   transformer.h.L.mlp.c_fc.weight   [d_mlp, d]        → W_in (transposed); .bias → b_in
//   transformer.h.L.mlp.c_proj.weight [d, d_mlp]        → W_out (transposed); .bias → b_out
//   transformer.ln_f.weight/.bias                       → ln_final/w, b
//   lm_head.weight [vocab, d]                           → unembed/W_U (transposed); tied: must equal wte
//   final_logits_bias [vocab] (absent = zeros)          → unembed/b_U
//   bigram_table [vocab, vocab]                         → bigram/table
// `transformer.h.L.attn.bias` (the causal mask buffer of non-flash attention) is skipped; any
// other unknown tensor is an error. Our one `bias` switch covers Linear biases, LayerNorm
// biases and b_U, so a model with only some of them gets zeros for the rest (exact).

import Foundation
import Tensors
import Model
import Support
import Text

public enum CircuitSparsityLayout {
    public static let configName = "beeg_config.json"

    /// GPTConfig fields that change nothing at inference (training and kernel switches).
    static let inertFields: Set<String> = ["dropout", "debug_nans", "grad_checkpointing", "flash", "enable_sparse_kernels",
                                           "learnable_bigram_table", "dropout_cat_pos_emb", "sinusoidal_cat_pos_emb", "tokenizer_name"]
    static let mappedFields: Set<String> = ["block_size", "vocab_size", "n_layer", "n_head", "d_head", "d_model", "d_mlp", "n_mlp",
                                            "bias", "ln_bias", "rms_norm", "residual_activation_type", "activation_type", "afrac",
                                            "afrac_loctypes", "tied_unembed", "enable_bigram_table", "d_pos_emb", "sink", "use_tied_aux_matrix"]

    /// A folder with beeg_config.json, a `.pt`, or a file with beeg_config.json beside it.
    public static func recognises(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return false }
        let folder = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        return path.hasSuffix(".pt") || FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(configName))
    }

    public static func load(_ path: String, bpeDirectory: String? = nil) throws -> LoadedModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError.badFile(path: path, "no such file or folder")
        }
        let folder = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        func inFolder(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let weightsPath = isDir.boolValue ? try weightsFile(inFolder: path) : path
        let archive: TensorArchive = weightsPath.hasSuffix(".safetensors") ? try SafetensorsFile(path: weightsPath) : try TorchCheckpoint(path: weightsPath)
        let configPath = inFolder(configName)
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw CheckpointError.badFile(path: configPath,
                                          "missing: a circuit_sparsity model needs its beeg_config.json beside the weights")
        }
        let (config, biases, tokenizerName) = try modelConfig(configData, configPath: configPath, archive: archive)
        let weights = try TransformerWeights(config: config) { name, shape, _ in
            try tensor(name, shape: shape, config: config, biases: biases, archive: archive)
        }
        try checkTied(config, archive)
        let consumed = Set(expectedNames(config: config))
        if let extra = archive.tensorNames.first(where: { !consumed.contains($0) && !isCausalMask($0) }) {
            throw CheckpointError.badFile(path: archive.path,
                                          "unexpected tensor \(extra) (not part of the circuit_sparsity GPT this reader maps)")
        }

        var tokenizer: Tokenizer = IDsOnlyTokenizer(vocabSize: config.vocab)
        let bpeFolder = bpeDirectory ?? folder
        let encoder = (bpeFolder as NSString).appendingPathComponent("encoder.json"), merges = (bpeFolder as NSString).appendingPathComponent("vocab.bpe")
        if bpeDirectory != nil || (FileManager.default.fileExists(atPath: encoder) && FileManager.default.fileExists(atPath: merges)) {
            tokenizer = try bpeTokenizer(name: tokenizerName, encoderPath: encoder, mergesPath: merges)
            guard tokenizer.vocabSize <= config.vocab else {
                throw CheckpointError.badFile(path: encoder,
                                              "tokenizer vocabulary \(tokenizer.vocabSize) exceeds the model's vocab_size \(config.vocab)")
            }
        }
        let provenance: JSONValue = .object(["imported_from": .string(path), "layout": .string(CheckpointLayout.circuitSparsity.rawValue),
                                             "beeg_config": (try? JSONValue.parse(String(decoding: configData, as: UTF8.self))) ?? .null])
        return LoadedModel(model: Transformer(weights: weights), tokenizer: tokenizer, provenance: provenance, path: path)
    }

    /// The weights file of a model folder: final_model.pt, else final_model.safetensors.
    public static func weightsFile(inFolder folder: String) throws -> String {
        let candidates = ["final_model.pt", "final_model.safetensors"].map { (folder as NSString).appendingPathComponent($0) }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw CheckpointError.badFile(path: folder, "holds neither final_model.pt nor final_model.safetensors")
        }
        return found
    }

    /// The BPE tokenizer from data-gym files; `tinypython_2k` gets its own pattern and <|endoftext|> = 2047.
    static func bpeTokenizer(name: String, encoderPath: String, mergesPath: String) throws -> BPETokenizer {
        guard let encoder = FileManager.default.contents(atPath: encoderPath) else { throw CheckpointError.badFile(path: encoderPath, "cannot read file") }
        guard let merges = FileManager.default.contents(atPath: mergesPath) else { throw CheckpointError.badFile(path: mergesPath, "cannot read file") }
        let tinypython = name == "tinypython_2k"
        return try BPETokenizer(name: name, encoderJSON: [UInt8](encoder), vocabBPE: [UInt8](merges),
                                pattern: tinypython ? BPETokenizer.tinypythonPattern : BPETokenizer.gpt2Pattern,
                                specialTokens: tinypython ? ["<|endoftext|>": 2047] : [:], source: encoderPath)
    }

    // MARK: config

    /// beeg_config.json → our config (GPTConfig's defaults for absent fields) and the tokenizer name.
    static func modelConfig(_ data: Data, configPath: String, archive: TensorArchive) throws -> (ModelConfig, Biases, String) {
        func bad(_ m: String) -> CheckpointError { .badFile(path: configPath, ParameterMessage(m)) }
        guard let parsed = try? JSONValue.parse(String(decoding: data, as: UTF8.self)), case .object(let json) = parsed else {
            throw bad("not a JSON object")
        }
        if let unknown = json.keys.sorted().first(where: { !mappedFields.contains($0) && !inertFields.contains($0) }) {
            throw bad("unknown config field \"\(unknown)\" (not a circuit_sparsity GPTConfig field this reader supports)")
        }
        func present(_ key: String) -> Bool { json[key] != nil && json[key] != .null }
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard present(key) else { return fallback }
            guard case .number(let n)? = json[key], n == n.rounded(), abs(n) < 1e15 else { throw bad("\(key) must be an integer") }
            return Int(n)
        }
        func bool(_ key: String, _ fallback: Bool) throws -> Bool {
            guard present(key) else { return fallback }
            guard case .bool(let b)? = json[key] else { throw bad("\(key) must be true or false") }
            return b
        }
        func string(_ key: String, _ fallback: String) throws -> String {
            guard present(key) else { return fallback }
            guard case .string(let v)? = json[key] else { throw bad("\(key) must be a string") }
            return v
        }
        // Settings this reader cannot reproduce are refused, never ignored.
        if present("d_pos_emb") { throw bad("d_pos_emb (concatenated positional embeddings) is not supported") }
        if try string("residual_activation_type", "identity") != "identity" {
            throw bad("residual_activation_type \"relu\" is not supported")
        }
        if try bool("use_tied_aux_matrix", false) { throw bad("use_tied_aux_matrix is not supported") }

        let dModel = try int("d_model", 768), nHead = try int("n_head", 12)
        guard nHead > 0, dModel % nHead == 0 else { throw bad("d_model \(dModel) is not divisible by n_head \(nHead)") }
        let dMLP = present("n_mlp") ? try int("n_mlp", 4 * dModel) : try int("d_mlp", 4 * dModel)
        let rms = try bool("rms_norm", false)
        let activation: ActivationKind
        switch try string("activation_type", "gelu") {
        case "gelu": activation = .gelu   // nn.GELU(): the exact erf form
        case "relu": activation = .relu
        case let other: throw bad("activation_type \"\(other)\" is not supported")
        }
        var afrac = 1.0
        if present("afrac") {
            guard case .number(let f)? = json["afrac"] else { throw bad("afrac must be a number or null") }
            afrac = f
        }
        var locations: [AbsTopKLocation] = []
        for name in try string("afrac_loctypes", "attn_in,attn_out,mlp_in,mlp_out").split(separator: ",") {
            guard let l = AbsTopKLocation(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw bad("afrac_loctypes names an unknown location \"\(name)\"")
            }
            locations.append(l)
        }
        let vocab = try int("vocab_size", 50304)
        // Which bias tensors exist decides our one bias switch (see the header).
        let logitBias = try archive.shape(of: "final_logits_bias") != nil && archive.tensor("final_logits_bias").toArray().contains { $0 != 0 }
        let linearBias = try bool("bias", true), lnBias = try bool("ln_bias", true)
        let normBias = !rms && lnBias
        let wpe = try archive.shape(of: "transformer.wpe.weight") != nil ? archive.tensor("transformer.wpe.weight").toArray() : []
        let config = ModelConfig(nLayer: try int("n_layer", 12), dModel: dModel, nHead: nHead, dHead: try int("d_head", dModel / nHead),
                                 dMLP: dMLP, nCtx: try int("block_size", 1024), vocab: vocab, norm: rms ? .rms : .layer,
                                 activation: activation, positional: wpe.contains { $0 != 0 } ? .learned : .none,
                                 attentionSink: try bool("sink", false), bigramTable: try bool("enable_bigram_table", false),
                                 afrac: afrac, afracLocations: afrac < 1 ? locations : AbsTopKLocation.nodeLocations,
                                 tiedUnembed: try bool("tied_unembed", true), bias: linearBias || normBias || logitBias,
                                 // nn.RMSNorm's default ε is float32's machine epsilon; their LayerNorm uses 1e-5.
                                 normEps: rms ? Double(Float.ulpOfOne) : 1e-5)
        do { try config.validate() } catch ModelError.badConfig(let m) {
            throw CheckpointError.badFile(path: configPath, "bad config: \(m)")
        }
        // circuit_sparsity keeps int(afrac · width) entries, which may be zero; ours keeps at least one.
        if afrac < 1 {
            for (location, width) in locations.map({ ($0, $0.width(config)) }) where Int(afrac * Double(width)) < 1 {
                throw bad("afrac \(afrac) keeps no entries of the \(width)-wide \(location.rawValue); not supported")
            }
        }
        return (config, Biases(linear: linearBias, norm: normBias), try string("tokenizer_name", "tinypython_2k"))
    }

    // MARK: tensors

    /// Which bias tensors the GPT has: Linear biases (`bias`) and LayerNorm biases (`ln_bias`, not with RMSNorm).
    struct Biases { let linear, norm: Bool }

    /// Our tensor `name` from the state_dict (see the table in the header).
    static func tensor(_ name: String, shape: [Int], config c: ModelConfig, biases: Biases, archive: TensorArchive) throws -> Tensor {
        func get(_ key: String, _ shape: [Int]) throws -> Tensor { try Checkpoint.checkedTensor(archive, key, shape: shape) }
        /// A bias the GPT has must be in the file; one it lacks reads as zeros, exactly what it adds there.
        func bias(_ key: String, _ shape: [Int], present: Bool) throws -> Tensor {
            present ? try get(key, shape) : Tensor(zeros: shape)
        }
        func linear(_ key: String, _ shape: [Int]) throws -> Tensor { try bias(key, shape, present: biases.linear) }
        func norm(_ key: String, _ shape: [Int]) throws -> Tensor { try bias(key, shape, present: biases.norm) }
        let d = c.dModel, a = c.attentionWidth
        let parts = name.split(separator: "/").map(String.init)
        if parts[0] == "blocks" {
            let p = "transformer.h.\(parts[1]).", leaf = parts[2...].joined(separator: "/")
            let qkv = ["attn/W_Q": 0, "attn/W_K": 1, "attn/W_V": 2, "attn/b_Q": 0, "attn/b_K": 1, "attn/b_V": 2]
            if let which = qkv[leaf] {
                if leaf.contains("/W_") { return columns(transpose(try get(p + "attn.c_attn.weight", [3 * a, d])), which * a, a) }
                return columns(try linear(p + "attn.c_attn.bias", [3 * a]), which * a, a)
            }
            if let key = Checkpoint.gpt2BlockNames[leaf] {
                // Our names say the kind: W_… a matrix (nn.Linear, [out, in] there), ln…/b a
                // LayerNorm bias, ln…/w a gain, b_… a Linear bias.
                if leaf.contains("/W_") { return transpose(try get(p + key, [shape[1], shape[0]])) }
                if leaf.hasPrefix("ln") { return leaf.hasSuffix("/b") ? try norm(p + key, shape) : try get(p + key, shape) }
                return try linear(p + key, shape)
            }
            if leaf == "attn/sink" {
                let key = p + "attn.attn_imp.sink_logit"
                if archive.shape(of: key) == [1] { return Tensor(shape: shape, repeating: try archive.tensor(key)[0]) }
                return try get(key, shape)
            }
        }
        if let key = Checkpoint.gpt2ModelNames[name] {
            return name == "ln_final/b" ? try norm("transformer." + key, shape) : try get("transformer." + key, shape)
        }
        switch name {
        case "unembed/W_U": return transpose(try get("lm_head.weight", [c.vocab, d]))
        case "unembed/b_U": return try bias("final_logits_bias", shape, present: archive.shape(of: "final_logits_bias") != nil)
        case "bigram/table": return try get("bigram_table", shape)
        default: throw CheckpointError.badFile(path: archive.path, "the circuit-sparsity layout has no tensor for \(name)")
        }
    }

    /// Every state_dict name the config accounts for (optional ones included).
    static func expectedNames(config c: ModelConfig) -> [String] {
        var names = Checkpoint.gpt2ModelNames.values.map { "transformer." + $0 } + ["lm_head.weight", "final_logits_bias"]
        if c.bigramTable { names.append("bigram_table") }
        for l in 0..<c.nLayer {
            let p = "transformer.h.\(l)."
            names += (Checkpoint.gpt2BlockNames.values + ["attn.c_attn.weight", "attn.c_attn.bias"]).map { p + $0 }
            if c.attentionSink { names.append(p + "attn.attn_imp.sink_logit") }
        }
        return names
    }

    static func isCausalMask(_ name: String) -> Bool {
        name.hasPrefix("transformer.h.") && name.hasSuffix(".attn.bias")
    }

    /// With tied_unembed the GPT reads logits through wte; a differing lm_head would mean a broken file.
    static func checkTied(_ c: ModelConfig, _ archive: TensorArchive) throws {
        guard c.tiedUnembed, archive.shape(of: "lm_head.weight") != nil else { return }
        let lm = try Checkpoint.checkedTensor(archive, "lm_head.weight", shape: [c.vocab, c.dModel])
        guard lm.toArray() == (try archive.tensor("transformer.wte.weight")).toArray() else {
            throw CheckpointError.badFile(path: archive.path, "tied_unembed is set but lm_head.weight differs from transformer.wte.weight")
        }
    }
}

extension AbsTopKLocation {
    /// The activation width at this location.
    func width(_ c: ModelConfig) -> Int {
        switch self {
        case .attnQ, .attnK, .attnV: return c.attentionWidth
        case .mlpNeuron: return c.dMLP
        default: return c.dModel
        }
    }
}
