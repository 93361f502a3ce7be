// A bracket-counting circuit planted by hand in a model whose other weights are random: the
// check that the pruner finds a circuit we know, before a large circuit is blamed on the model
// (issue 23; docs/analysis.md says why brackets rather than quotes). The known circuit, 11 nodes,
// is the paper's averaging mechanism:
//
//   embedding    `[` → +E, `]` → −E on channel `flag`
//   layer 0 MLP  mlp_in:flag (less mlp_in:ref) → neuron `open` (fires on +flag) and neuron `close` (on −flag)
//                → mlp_out:net (open writes +W, close −W)
//   last layer   one head with zero query and key, so it averages uniformly over the
//                context: value ← attn_in:net, so the head reads (open − close brackets)/T
//                (less attn_in:ref, an empty channel: see below), and writes it to attn_out:depth
//   unembedding  final_in:depth (less final_in:ref) → `]`, against a bias that favours newline
//
// Depth 2 (one unclosed `[` when the inner list has closed) answers `]` while the average
// beats the bias, that is up to a prompt length set by construction (`flipLength`): the
// mechanism dilutes exactly as the paper's does. The same 11 nodes are the circuit under mean
// and zero ablation (the zero query and key are unchanged by either).
//
// The planted channels are private: every random weight that reads or writes them is zeroed,
// so the rest of the model reaches the answer only through the norms' scale. At brackets the
// planted channels are ten times the random stream, so the norms there are set by them alone.
// Everything else is random: each tensor of a reference model with its entries shuffled (same
// shapes, density and value distribution, no learned structure).

import Foundation
import Model
import Support
import Tensors
import Text

public struct PlantedCircuit {
    public let model: Transformer
    /// Node ids (`3.attn_in:17`, as in circuit files) of the planted circuit.
    public let nodes: [String]
    /// The planted channels, head and neurons, for the model file's provenance.
    public let description: JSONValue

    /// Every tensor of `reference` with its entries shuffled by a seeded permutation.
    public static func shuffled(_ reference: TransformerWeights, seed: UInt64) throws -> Transformer {
        var rng = SeededRandom(seed: seed)
        let weights = try TransformerWeights(config: reference.config) { name, shape, _ in
            let source = reference.tensor(named: name)!
            let t = Tensor(zeros: shape)
            var values = (0..<source.count).map { source.data[$0] }
            values.shuffle(using: &rng)
            for i in values.indices { t.data[i] = values[i] }
            return t
        }
        return Transformer(weights: weights)
    }

    /// Plants the circuit in `model` (changed in place) and returns it with its node ids.
    /// `open`, `close` and `newline` are the tokens `[`, `]` and newline; `corpus` is text for
    /// measuring the random model's scale, from which the planted magnitudes are set.
    /// `flipLength` is the prompt length in tokens at which depth 2 stops being told apart:
    /// the mechanism's dilution, by construction.
    public static func plantBrackets(in model: Transformer, open: Int32, close: Int32, newline: Int32,
                                     corpus: inout some TokenStream, flipLength: Double, seed: UInt64) throws -> PlantedCircuit {
        let c = model.config, w = model.weights, d = c.dModel
        guard c.nLayer >= 2, c.bias, !c.tiedUnembed, d >= 8, c.dMLP >= 2, c.dHead >= 1 else {
            throw CircuitError.mismatch("a planted circuit needs at least 2 layers, biases, an untied unembedding and d_model ≥ 8")
        }
        var rng = SeededRandom(seed: seed)
        func distinct(_ n: Int, below bound: Int) -> [Int] {
            var picked: [Int] = []
            while picked.count < n { let x = Int(rng.next() % UInt64(bound)); if !picked.contains(x) { picked.append(x) } }
            return picked
        }
        let ch = distinct(4, below: d)
        let (flag, net, ref, depth) = (ch[0], ch[1], ch[2], ch[3])
        let neurons = distinct(2, below: c.dMLP)
        let (opens, closes) = (neurons[0], neurons[1])
        let last = c.nLayer - 1
        let head = Int(rng.next() % UInt64(c.nHead))
        let valueDim = head * c.dHead
        let headDims = Array((head * c.dHead)..<((head + 1) * c.dHead))
        let a = c.attentionWidth
        let answers = [Int(close), Int(newline)]

        // 1. Make the channels, head and neurons private: no random weight reads or writes them.
        func zeroColumns(_ t: Tensor?, _ cols: [Int]) {
            guard let t else { return }
            let n = t.shape[1]
            for r in 0..<t.shape[0] { for j in cols { t.data[r * n + j] = 0 } }
        }
        func zeroRows(_ t: Tensor?, _ rows: [Int]) {
            guard let t else { return }
            let n = t.count / t.shape[0]
            for r in rows { for j in 0..<n { t.data[r * n + j] = 0 } }
        }
        func setVector(_ t: Tensor?, _ idx: [Int], _ v: Float) { if let t { for i in idx { t.data[i] = v } } }
        w.dropSparseKernels()
        zeroColumns(w.W_E, ch); zeroColumns(w.W_pos, ch)
        for b in w.blocks {
            for gain in [b.ln1Gain, b.ln2Gain] { setVector(gain, ch, 1) }
            for bias in [b.ln1Bias, b.ln2Bias] { setVector(bias, ch, 0) }
            zeroRows(b.W_Q, ch); zeroRows(b.W_K, ch); zeroRows(b.W_V, ch); zeroRows(b.W_in, ch)
            zeroColumns(b.W_O, ch); zeroColumns(b.W_out, ch)
            setVector(b.b_O, ch, 0); setVector(b.b_out, ch, 0)
        }
        let planted = w.blocks[last], first = w.blocks[0]
        // The head's query and key are zero: it attends uniformly to every position so far.
        zeroColumns(planted.W_Q, headDims); zeroColumns(planted.W_K, headDims); zeroColumns(planted.W_V, headDims)
        setVector(planted.b_Q, headDims, 0); setVector(planted.b_K, headDims, 0); setVector(planted.b_V, headDims, 0)
        zeroRows(planted.W_O, headDims)
        if let sink = planted.sink { sink.data[head] = -30 }
        zeroColumns(first.W_in, neurons); setVector(first.b_in, neurons, 0); zeroRows(first.W_out, neurons)
        setVector(w.lnFinalGain, ch, 1); setVector(w.lnFinalBias, ch, 0)
        zeroRows(w.W_U, ch); zeroColumns(w.W_U, answers); setVector(w.b_U, answers, 0)
        if let bigram = w.bigram { zeroColumns(bigram, answers) }

        // 2. The random model's scale: the norm of the centred residual at the embedding and at
        //    the last block's input.
        let norms = try residualNorms(model, corpus: &corpus, at: [.residPre(0), .residPre(last)])
        let (r0, rL) = (norms[0], norms[1])

        // 3. Plant. At brackets the planted channels are ten times the random stream, so the
        //    norms there are set by them alone: each bracket reads as exactly ±1 in the head's
        //    value, and a balanced context cancels exactly.
        let E = 10 * r0, W = 10 * max(rL, r0)
        w.W_E.data[Int(open) * d + flag] = E
        w.W_E.data[Int(close) * d + flag] = -E
        // Neurons: the normalised flag is ±√(d−1) at brackets; pre-activation ±4 − 3, so at a
        // bracket one fires (gelu(1) ≈ 0.841) and the other is ≈ 0. They read `flag` less the
        // empty `ref` (below), which is exactly 0 away from brackets: there both sit at gelu(−3)
        // and their opposite writes cancel exactly.
        let readFlag = 4 / Float(d - 1).squareRoot(), fired: Float = 0.8413
        first.W_in.data[flag * c.dMLP + opens] = readFlag
        first.W_in.data[ref * c.dMLP + opens] = -readFlag
        first.W_in.data[flag * c.dMLP + closes] = -readFlag
        first.W_in.data[ref * c.dMLP + closes] = readFlag
        setVector(first.b_in, neurons, -3)
        first.W_out.data[opens * d + net] = W / fired
        first.W_out.data[closes * d + net] = -W / fired
        // At a bracket the stream is ±E on `flag` and ±W on `net`: the normalised `net` is
        // ±s with s ≈ √d·W/√(E² + W²); the value reads it as ±1. The norm also shifts every
        // channel by −mean/σ of the random stream, token by token: the empty channel `ref`
        // carries exactly that shift, and the value subtracts it.
        let s = Float(d).squareRoot() * W / (E * E + W * W).squareRoot()
        planted.W_V.data[net * a + valueDim] = 1 / s
        planted.W_V.data[ref * a + valueDim] = -1 / s
        // The head writes (open − close brackets)/T on `depth`, times O; the last token is a
        // `]`, where the final norm's scale is again set by E and W: depth reads as O·√d/√(E²+W²)
        // per open bracket per token. The logit difference `]` − newline is U·that − β.
        let O = (E * E + W * W).squareRoot() / Float(d).squareRoot()
        planted.W_O.data[valueDim * d + depth] = O
        let beta: Float = 5
        // The final norm shifts `depth` by −mean/σ too (at a `]` the mean is −(E + W)/d, not
        // small): reading `depth` less the empty `ref` removes it exactly.
        w.W_U!.data[depth * c.vocab + Int(close)] = beta * Float(flipLength)
        w.W_U!.data[ref * c.vocab + Int(close)] = -beta * Float(flipLength)
        w.b_U!.data[Int(close)] = -beta
        w.prepareSparseKernels()

        func id(_ kind: String, _ layer: Int, _ i: Int) -> String { CircuitGraph.id(NodeLocation(kind: kind, layer: layer), i) }
        let nodes = [id("mlp_in", 0, flag), id("mlp_in", 0, ref), id("mlp_neuron", 0, opens), id("mlp_neuron", 0, closes), id("mlp_out", 0, net),
                     id("attn_in", last, net), id("attn_in", last, ref), id("attn_v", last, valueDim), id("attn_out", last, depth), id("final_in", -1, depth),
                     id("final_in", -1, ref)]
        let record = JSONValue.object([
            "task": .string("bracket_counting"), "seed": .number(Double(seed)), "flip_length_tokens": .number(flipLength),
            "channels": .object(["flag": .number(Double(flag)), "net": .number(Double(net)), "ref": .number(Double(ref)),
                                 "depth": .number(Double(depth))]),
            "neurons": .object(["open": .number(Double(opens)), "close": .number(Double(closes))]),
            "head": .object(["layer": .number(Double(last)), "head": .number(Double(head))]),
            "nodes": .array(nodes.map { .string($0) })])
        return PlantedCircuit(model: model, nodes: nodes, description: record)
    }

    /// The norm of the centred residual stream at each hook (root mean square over tokens of
    /// its Euclidean norm), on 4 sequences of corpus text.
    static func residualNorms(_ model: Transformer, corpus: inout some TokenStream, at points: [HookPoint]) throws -> [Float] {
        let c = model.config, length = min(128, c.nCtx), d = c.dModel
        var sums = [Double](repeating: 0, count: points.count), rows = 0
        let hooks = Hooks()
        for (i, p) in points.enumerated() {
            hooks.add(p) { ctx in
                let x = ctx.activation
                for r in 0..<(x.count / d) {
                    var mean = 0.0, sq = 0.0
                    for j in 0..<d { mean += Double(x.data[r * d + j]) }
                    mean /= Double(d)
                    for j in 0..<d { let e = Double(x.data[r * d + j]) - mean; sq += e * e }
                    sums[i] += sq
                }
            }
        }
        for _ in 0..<4 {
            guard let tokens = try corpus.next(length) else { break }
            try model.forward(tokens: tokens, batch: 1, seqLen: length, hooks: hooks)
            rows += length
        }
        return sums.map { Float(($0 / Double(max(rows, 1))).squareRoot()) }
    }
}
