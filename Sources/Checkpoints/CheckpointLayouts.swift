// Checkpoint import and export in three key layouts:
//  - `sparsebridge`: our parameter names with dots (`blocks.0.attn.W_Q`), [in, out] weights,
//    and the config, tokenizer and provenance in the `__metadata__` (safetensors);
//  - `hf-gpt2`: Hugging Face GPT-2 (`h.0.attn.c_attn.weight` …, optionally prefixed
//    `transformer.`). Its Conv1D weights are already [in, out]; c_attn holds Q, K, V side
//    by side; `lm_head.weight` (nn.Linear) is [vocab, d_model] and is transposed;
//  - `circuit-sparsity`: OpenAI's circuit_sparsity GPT (`beeg_config.json` + a state_dict
//    in `final_model.pt` or safetensors), import only; CircuitSparsityLayout.swift.

import Foundation
import Tensors
import Model
import Support
import Text

public enum CheckpointLayout: String, CaseIterable, Sendable {
    case sparsebridge
    case hfGPT2 = "hf-gpt2"
    case circuitSparsity = "circuit-sparsity"
}

/// Named tensors in a checkpoint file (safetensors or PyTorch), read as Float32.
public protocol TensorArchive {
    var path: String { get }
    var tensorNames: [String] { get }
    func shape(of name: String) -> [Int]?
    func tensor(_ name: String) throws -> Tensor
}

extension SafetensorsFile: TensorArchive {
    public var tensorNames: [String] { entries.map(\.name) }
    public func shape(of name: String) -> [Int]? { entry(name)?.shape }
}

public enum Checkpoint {
    // MARK: export

    public static func export(_ loaded: LoadedModel, layout: CheckpointLayout, to path: String) throws {
        let model = loaded.model, c = model.config, w = model.weights
        var metadata = ["format": ModelFile.format, "config": c.jsonString(),
                        "tokenizer": loaded.tokenizer.json.jsonString, "provenance": loaded.provenance.jsonString]
        // Tokenizer files (BPE encoder.json, vocab.bpe) are UTF-8 text: kept verbatim as metadata strings.
        for (name, bytes) in loaded.tokenizer.files {
            metadata[tokenizerFileKey + name] = String(decoding: bytes, as: UTF8.self)
        }
        switch layout {
        case .sparsebridge:
            let tensors = w.parameters.map { ($0.name.replacingOccurrences(of: "/", with: "."), $0.tensor) }
            try SafetensorsFile.write(tensors, metadata: metadata, to: path)
        case .circuitSparsity:
            throw CheckpointError.badInput("the circuit-sparsity layout is read only; export to sparsebridge or hf-gpt2")
        case .hfGPT2:
            try requireGPT2Compatible(c)
            metadata["layout"] = CheckpointLayout.hfGPT2.rawValue
            var tensors: [(String, Tensor)] = [("wte.weight", w.W_E), ("wpe.weight", w.W_pos!)]
            for (i, b) in w.blocks.enumerated() {
                let p = "h.\(i)."
                tensors += [(p + "ln_1.weight", b.ln1Gain), (p + "ln_1.bias", b.ln1Bias!),
                            (p + "attn.c_attn.weight", concatColumns([b.W_Q, b.W_K, b.W_V])),
                            (p + "attn.c_attn.bias", concatColumns([b.b_Q!, b.b_K!, b.b_V!])),
                            (p + "attn.c_proj.weight", b.W_O), (p + "attn.c_proj.bias", b.b_O!),
                            (p + "ln_2.weight", b.ln2Gain), (p + "ln_2.bias", b.ln2Bias!),
                            (p + "mlp.c_fc.weight", b.W_in), (p + "mlp.c_fc.bias", b.b_in!),
                            (p + "mlp.c_proj.weight", b.W_out), (p + "mlp.c_proj.bias", b.b_out!)]
            }
            tensors += [("ln_f.weight", w.lnFinalGain), ("ln_f.bias", w.lnFinalBias!)]
            if let W_U = w.W_U { tensors.append(("lm_head.weight", transpose(W_U))) }
            if let b_U = w.b_U { tensors.append(("lm_head.bias", b_U)) }
            try SafetensorsFile.write(tensors, metadata: metadata, to: path)
        }
    }

    /// GPT-2's state_dict names for our tensors, shared by the hf-gpt2 and circuit-sparsity
    /// layouts: inside a block (after `h.L.`; Q, K, V are slices of `attn.c_attn`, cut by the
    /// callers), and outside (after the optional `transformer.`).
    static let gpt2BlockNames = [
        "ln1/w": "ln_1.weight", "ln1/b": "ln_1.bias", "ln2/w": "ln_2.weight", "ln2/b": "ln_2.bias",
        "attn/W_O": "attn.c_proj.weight", "attn/b_O": "attn.c_proj.bias", "mlp/W_in": "mlp.c_fc.weight",
        "mlp/b_in": "mlp.c_fc.bias", "mlp/W_out": "mlp.c_proj.weight", "mlp/b_out": "mlp.c_proj.bias"]
    static let gpt2ModelNames = ["embed/W_E": "wte.weight", "pos_embed/W_pos": "wpe.weight",
                                 "ln_final/w": "ln_f.weight", "ln_final/b": "ln_f.bias"]

    /// Metadata key prefix for a tokenizer's files in safetensors exports.
    static let tokenizerFileKey = "tokenizer_file:"

    static func requireGPT2Compatible(_ c: ModelConfig) throws {
        var problems: [String] = []
        if c.norm != .layer { problems.append("norm must be layer") }
        if !c.bias { problems.append("biases are required") }
        if c.positional != .learned { problems.append("positional must be learned") }
        if c.attentionSink { problems.append("no attention sink") }
        if c.bigramTable { problems.append("no bigram table") }
        if c.afrac < 1 { problems.append("no AbsTopK (afrac must be 1)") }
        if c.attentionWidth != c.dModel { problems.append("n_head·d_head must equal d_model") }
        if !problems.isEmpty {
            throw CheckpointError.badInput("the hf-gpt2 layout cannot hold this model: " + problems.joined(separator: "; "))
        }
    }

    // MARK: import

    /// Reads a checkpoint. A directory, a PyTorch `.pt`, or any file with a `beeg_config.json`
    /// beside it is a circuit_sparsity model; otherwise a safetensors file whose layout is
    /// detected from the tensor names unless given. For `hf-gpt2` without our metadata, the
    /// head count etc. come from a Hugging Face `config.json` (given, or beside the file).
    /// `bpeDirectory` holds `encoder.json` + `vocab.bpe` for a circuit_sparsity model
    /// (default: the model's own folder, when they are there).
    public static func load(_ path: String, layout requested: CheckpointLayout? = nil,
                            hfConfigPath: String? = nil, bpeDirectory: String? = nil) throws -> LoadedModel {
        if requested == .circuitSparsity || (requested == nil && CircuitSparsityLayout.recognises(path)) {
            return try CircuitSparsityLayout.load(path, bpeDirectory: bpeDirectory)
        }
        let file = try SafetensorsFile(path: path)
        let isGPT2 = file.entries.contains { $0.name.hasSuffix("attn.c_attn.weight") }
        let layout = requested ?? (isGPT2 ? .hfGPT2 : .sparsebridge)
        let provenance = file.metadata["provenance"].flatMap { try? JSONValue.parse($0) }
            ?? .object(["imported_from": .string(path), "layout": .string(layout.rawValue)])
        let tokenizer: Tokenizer?
        if let t = file.metadata["tokenizer"] {
            guard let json = try? JSONValue.parse(t) else { throw CheckpointError.badFile(path: path, "tokenizer metadata is not JSON") }
            tokenizer = try Tokenizers.from(json: json, source: path) { name in
                guard let text = file.metadata[tokenizerFileKey + name] else {
                    throw CheckpointError.badFile(path: path, "tokenizer file \(name) is missing from the metadata")
                }
                return Array(text.utf8)
            }
        } else { tokenizer = nil }

        switch layout {
        case .circuitSparsity:  // normally taken above, before the file is opened as safetensors
            return try CircuitSparsityLayout.load(path, bpeDirectory: bpeDirectory)
        case .sparsebridge:
            guard let configJSON = file.metadata["config"] else {
                throw CheckpointError.badFile(path: path,
                                              "no config in the safetensors metadata (not a sparsebridge-layout file; try "
                                                      + "\(parameter: "layout") hf-gpt2)")
            }
            let config = try ModelConfig.decode(json: configJSON, source: path)
            let weights = try TransformerWeights(config: config) { name, shape, _ in
                try checkedTensor(file, name.replacingOccurrences(of: "/", with: "."), shape: shape)
            }
            return LoadedModel(model: Transformer(weights: weights), tokenizer: tokenizer ?? CharTokenizer(),
                               provenance: provenance, path: path)
        case .hfGPT2:
            let config = try gpt2Config(file, hfConfigPath: hfConfigPath)
            let prefix = file.entry("transformer.wte.weight") != nil ? "transformer." : ""
            func get(_ name: String, _ shape: [Int]) throws -> Tensor { try checkedTensor(file, prefix + name, shape: shape) }
            let d = config.dModel, a = config.attentionWidth
            var qkv: [Int: (Tensor, Tensor)] = [:]
            let weights = try TransformerWeights(config: config) { name, shape, _ in
                let parts = name.split(separator: "/").map(String.init)
                if parts[0] == "blocks" {
                    let i = Int(parts[1])!, p = "h.\(i)."
                    if qkv[i] == nil {
                        qkv[i] = (try get(p + "attn.c_attn.weight", [d, 3 * a]), try get(p + "attn.c_attn.bias", [3 * a]))
                    }
                    let (W, b) = qkv[i]!
                    let leaf = parts[2...].joined(separator: "/")
                    if let key = gpt2BlockNames[leaf] { return try get(p + key, shape) }
                    switch leaf {
                    case "attn/W_Q": return columns(W, 0, a)
                    case "attn/W_K": return columns(W, a, a)
                    case "attn/W_V": return columns(W, 2 * a, a)
                    case "attn/b_Q": return columns(b, 0, a)
                    case "attn/b_K": return columns(b, a, a)
                    case "attn/b_V": return columns(b, 2 * a, a)
                    default: break
                    }
                }
                if let key = gpt2ModelNames[name] { return try get(key, shape) }
                switch name {
                case "unembed/W_U":
                    let lm = try checkedTensor(file, "lm_head.weight", shape: [config.vocab, d])
                    return transpose(lm)
                case "unembed/b_U":
                    if file.entry("lm_head.bias") != nil { return try checkedTensor(file, "lm_head.bias", shape: shape) }
                    return Tensor(zeros: shape)
                default:
                    throw CheckpointError.badFile(path: path, "the hf-gpt2 layout has no tensor for \(name)")
                }
            }
            return LoadedModel(model: Transformer(weights: weights),
                               tokenizer: tokenizer ?? IDsOnlyTokenizer(vocabSize: config.vocab),
                               provenance: provenance, path: path)
        }
    }

    /// The GPT-2 config: from our metadata when present, else from a Hugging Face config.json.
    static func gpt2Config(_ file: SafetensorsFile, hfConfigPath: String?) throws -> ModelConfig {
        if let json = file.metadata["config"] { return try ModelConfig.decode(json: json, source: file.path) }
        let prefix = file.entry("transformer.wte.weight") != nil ? "transformer." : ""
        guard let wte = file.entry(prefix + "wte.weight"), wte.shape.count == 2,
              let wpe = file.entry(prefix + "wpe.weight"), wpe.shape.count == 2,
              let fc = file.entry(prefix + "h.0.mlp.c_fc.weight"), fc.shape.count == 2 else {
            throw CheckpointError.badFile(path: file.path, "missing wte/wpe/h.0 tensors for the hf-gpt2 layout")
        }
        let nLayer = Set(file.entries.compactMap { e -> Int? in
            let parts = e.name.dropFirst(prefix.count).split(separator: ".")
            return parts.count > 1 && parts[0] == "h" ? Int(parts[1]) : nil
        }).count
        let configPath = hfConfigPath ?? URL(fileURLWithPath: file.path).deletingLastPathComponent().appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: configPath),
              let hf = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError.badFile(path: configPath,
                                          "a Hugging Face config.json (with n_head) is needed to import this GPT-2 checkpoint; "
                                                  + "pass \(parameter: "hf_config")")
        }
        guard let nHead = (hf["n_head"] ?? hf["num_attention_heads"]) as? Int else {
            throw CheckpointError.badFile(path: configPath, "config.json has no n_head")
        }
        let act: ActivationKind
        switch hf["activation_function"] as? String ?? "gelu_new" {
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": act = .geluTanh
        case "gelu": act = .gelu
        case "relu": act = .relu
        case let other: throw CheckpointError.badFile(path: configPath, "unsupported activation_function \(other)")
        }
        let d = wte.shape[1]
        guard d % nHead == 0 else { throw CheckpointError.badFile(path: configPath, "n_embd \(d) is not divisible by n_head \(nHead)") }
        let config = ModelConfig(nLayer: nLayer, dModel: d, nHead: nHead, dHead: d / nHead, dMLP: fc.shape[1],
                                 nCtx: wpe.shape[0], vocab: wte.shape[0], norm: .layer, activation: act,
                                 tiedUnembed: file.entry("lm_head.weight") == nil, bias: true,
                                 normEps: hf["layer_norm_epsilon"] as? Double ?? 1e-5)
        try config.validate()
        return config
    }

    static func checkedTensor(_ file: TensorArchive, _ name: String, shape: [Int]) throws -> Tensor {
        guard let found = file.shape(of: name) else { throw CheckpointError.badFile(path: file.path, "missing tensor \(name)") }
        guard found == shape else {
            throw CheckpointError.badFile(path: file.path, "tensor \(name) has shape \(found), the config needs \(shape)")
        }
        let t = try file.tensor(name)
        if let bad = (0..<t.count).first(where: { !t.data[$0].isFinite }) {
            throw CheckpointError.badFile(path: file.path, "tensor \(name) holds a non-finite value at element \(bad)")
        }
        return t
    }
}

/// Columns [start, start + width) of a matrix (or elements of a vector), copied.
func columns(_ t: Tensor, _ start: Int, _ width: Int) -> Tensor {
    if t.rank == 1 { return Tensor(shape: [width], values: Array(t.buffer[start..<(start + width)])) }
    let rows = t.shape[0], cols = t.shape[1]
    let out = Tensor(zeros: [rows, width])
    for r in 0..<rows { (out.data + r * width).update(from: t.data + r * cols + start, count: width) }
    return out
}

/// Matrices (or vectors) side by side.
func concatColumns(_ parts: [Tensor]) -> Tensor {
    if parts[0].rank == 1 { return Tensor(shape: [parts.reduce(0) { $0 + $1.count }], values: parts.flatMap { $0.toArray() }) }
    let rows = parts[0].shape[0], total = parts.reduce(0) { $0 + $1.shape[1] }
    let out = Tensor(zeros: [rows, total])
    var start = 0
    for p in parts {
        for r in 0..<rows { (out.data + r * total + start).update(from: p.data + r * p.shape[1], count: p.shape[1]) }
        start += p.shape[1]
    }
    return out
}

func transpose(_ t: Tensor) -> Tensor {
    let r = t.shape[0], c = t.shape[1]
    let out = Tensor(zeros: [c, r])
    for i in 0..<r { for j in 0..<c { out.data[j * r + i] = t.data[i * c + j] } }
    return out
}
