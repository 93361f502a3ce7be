// The forward pass: against a Float64 reference, and its invariants (batching, causality,
// hooks that read, replace and add, early stopping, attention patterns, AbsTopK).

import Foundation
import Testing
import Tensors
import Model

@Suite("Forward pass")
struct ForwardTests {
    @Test("logits match a Float64 reference implementation", arguments: namedConfigs)
    func matchesReference(_ named: NamedConfig) throws {
        let c = named.config
        let model = try randomModel(c, seed: 11)
        let t = c.nCtx
        let tokens = randomTokens(2 * t, vocab: c.vocab, seed: 12)
        let state = try model.forward(tokens: tokens, batch: 2, seqLen: t)
        for b in 0..<2 {
            let seq = Array(tokens[(b * t)..<((b + 1) * t)])
            let expected = Reference.logits(model.weights, tokens: seq)
            let got = rowsOf(state.logits, width: c.vocab, (b * t)..<((b + 1) * t))
            let scale = expected.joined().map(abs).max()!
            #expect(scale > 1, "logits too flat for a meaningful comparison")
            #expect(maxAbsDiff(got, expected) < 2e-5 * (1 + scale), "sequence \(b)")
        }
    }

    @Test("a batch gives the same logits as each sequence alone", arguments: namedConfigs)
    func batchIndependence(_ named: NamedConfig) throws {
        let c = named.config
        let model = try randomModel(c, seed: 21)
        let t = 9
        let tokens = randomTokens(3 * t, vocab: c.vocab, seed: 22)
        let batched = try model.forward(tokens: tokens, batch: 3, seqLen: t).logits.copy()
        for b in 0..<3 {
            let alone = try model.logits(tokens: Array(tokens[(b * t)..<((b + 1) * t)]))
            #expect(alone.shape == [t, c.vocab])
            let diff = maxAbsDiff(rowsOf(batched, width: c.vocab, (b * t)..<((b + 1) * t)),
                                  rowsOf(alone, width: c.vocab, 0..<t))
            #expect(diff < 1e-5, "sequence \(b)")
        }
    }

    @Test("changing the last token leaves earlier positions' logits unchanged", arguments: namedConfigs)
    func causality(_ named: NamedConfig) throws {
        let c = named.config
        let model = try randomModel(c, seed: 31)
        let t = c.nCtx
        var tokens = randomTokens(t, vocab: c.vocab, seed: 32)
        let before = try model.logits(tokens: tokens)
        tokens[t - 1] = (tokens[t - 1] + 1) % Int32(c.vocab)
        let after = try model.logits(tokens: tokens)
        #expect(maxAbsDiff(rowsOf(before, width: c.vocab, 0..<(t - 1)), rowsOf(after, width: c.vocab, 0..<(t - 1))) < 1e-6)
        #expect(maxAbsDiff(rowsOf(before, width: c.vocab, (t - 1)..<t), rowsOf(after, width: c.vocab, (t - 1)..<t)) > 1e-3)
        // Changing the first token changes every position.
        tokens[0] = (tokens[0] + 1) % Int32(c.vocab)
        let first = try model.logits(tokens: tokens)
        for i in 0..<t {
            #expect(maxAbsDiff(rowsOf(after, width: c.vocab, i..<(i + 1)), rowsOf(first, width: c.vocab, i..<(i + 1))) > 1e-6)
        }
    }

    @Test("hooks see [B, T, …] activations equal to the reference residual stream")
    func captureShapes() throws {
        let c = TestConfigs.gpt2
        let model = try randomModel(c, seed: 41)
        let t = 7
        let tokens = randomTokens(2 * t, vocab: c.vocab, seed: 42)
        let hooks = Hooks()
        var seen: [HookPoint: [Int]] = [:]
        var final: Tensor?
        for point in HookPoint.all(config: c) {
            hooks.add(point) { ctx in
                seen[point] = ctx.activation.shape
                #expect(ctx.batch == 2 && ctx.seqLen == t && ctx.point == point)
                #expect(Array(ctx.tokens) == tokens)
                if point == .residPost(c.nLayer - 1) { final = ctx.activation.copy() }
            }
        }
        try model.forward(tokens: tokens, batch: 2, seqLen: t, hooks: hooks)
        #expect(seen.count == HookPoint.all(config: c).count)
        for point in HookPoint.all(config: c) {
            #expect(seen[point] == [2] + point.shape(config: c, seqLen: t), "\(point)")
        }
        let captured = try #require(final)
        for b in 0..<2 {
            let expected = Reference.finalResidual(model.weights, tokens: Array(tokens[(b * t)..<((b + 1) * t)]))
            let got = rowsOf(captured.reshaped([2 * t, c.dModel]), width: c.dModel, (b * t)..<((b + 1) * t))
            #expect(maxAbsDiff(got, expected) < 1e-4)
        }
    }

    @Test("replacing resid_pre with itself changes nothing; with another run's, gives that run's logits")
    func replaceHooks() throws {
        let c = TestConfigs.gpt2
        let model = try randomModel(c, seed: 51)
        let t = 10
        let a = randomTokens(t, vocab: c.vocab, seed: 52), b = randomTokens(t, vocab: c.vocab, seed: 53)
        let logitsA = try model.logits(tokens: a), logitsB = try model.logits(tokens: b)

        let identity = Hooks()
        identity.add(.residPre(0)) { ctx in
            let snapshot = ctx.activation.copy()
            ctx.activation.copy(from: snapshot)
        }
        let same = try model.forward(tokens: a, batch: 1, seqLen: t, hooks: identity).logits.copy()
        #expect(same.maxAbsDifference(logitsA) == 0)

        // Capture A's stream entering block 1, splice it into a run on B.
        let capture = Hooks()
        var residA: Tensor?
        capture.add(.residPre(1)) { ctx in residA = ctx.activation.copy() }
        try model.forward(tokens: a, batch: 1, seqLen: t, hooks: capture)
        let splice = Hooks()
        splice.replace(.residPre(1), with: try #require(residA))
        let spliced = try model.forward(tokens: b, batch: 1, seqLen: t, hooks: splice).logits.copy()
        #expect(spliced.maxAbsDifference(logitsA) < 1e-5)
        #expect(spliced.maxAbsDifference(logitsB) > 1e-2)
    }

    @Test("adding a delta to the last resid_post changes the logits as the final norm and unembedding say")
    func addDelta() throws {
        for c in [TestConfigs.gpt2, TestConfigs.sparse] {
            let model = try randomModel(c, seed: 61)
            let t = 8
            let tokens = randomTokens(t, vocab: c.vocab, seed: 62)
            let last = HookPoint.residPost(c.nLayer - 1)
            var resid: Tensor?
            let capture = Hooks()
            capture.add(last) { ctx in resid = ctx.activation.copy() }
            let plain = try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: capture).logits.copy()
            let h = rowsOf(try #require(resid).reshaped([t, c.dModel]), width: c.dModel, 0..<t)

            var rng = SeededRandom(seed: 63)
            let delta = Tensor.randomNormal([c.dModel], std: 2, rng: &rng)
            let hooks = Hooks()
            hooks.addDelta(last, delta)
            let shifted = try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks).logits.copy()
            let moved = h.map { row in row.indices.map { row[$0] + Double(delta[$0]) } }
            let expected = Reference.unembed(model.weights, resid: moved, tokens: tokens)
            #expect(maxAbsDiff(rowsOf(shifted, width: c.vocab, 0..<t), expected) < 1e-4)
            // And the unhooked logits are the reference applied to the unmoved stream.
            #expect(maxAbsDiff(rowsOf(plain, width: c.vocab, 0..<t), Reference.unembed(model.weights, resid: h, tokens: tokens)) < 1e-4)
            #expect(shifted.maxAbsDifference(plain) > 1e-2)

            // A full-shape delta adds per token.
            let full = Tensor.randomNormal([1, t, c.dModel], std: 1, rng: &rng)
            let perToken = Hooks()
            perToken.addDelta(last, full)
            let shifted2 = try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: perToken).logits.copy()
            let moved2 = h.enumerated().map { i, row in row.indices.map { row[$0] + Double(full[i * c.dModel + $0]) } }
            #expect(maxAbsDiff(rowsOf(shifted2, width: c.vocab, 0..<t), Reference.unembed(model.weights, resid: moved2,
                                                                                          tokens: tokens)) < 1e-4)
        }
    }

    @Test("stopEarly stops after the last hooked point: later buffers are not touched")
    func stopEarly() throws {
        let c = TestConfigs.gpt2
        let model = try randomModel(c, seed: 71)
        let t = 6
        let a = randomTokens(t, vocab: c.vocab, seed: 72), b = randomTokens(t, vocab: c.vocab, seed: 73)
        // A full pass on A fills every buffer of the (reused) state.
        let stateA = try model.forward(tokens: a, batch: 1, seqLen: t)
        let logitsA = stateA.logits.copy(), lnFinalA = stateA.lnFinalOut.copy()
        let mlpPostA = stateA.layer(0).mlpPost.copy()

        // The reference value of resid_mid(0) on B, from a full pass.
        var fullMid: Tensor?
        let probe = Hooks()
        probe.add(.residMid(0)) { ctx in fullMid = ctx.activation.copy() }
        let logitsB = try model.forward(tokens: b, batch: 1, seqLen: t, hooks: probe).logits.copy()
        #expect(logitsB.maxAbsDifference(logitsA) > 1e-3)

        // Restore the state to A, then run B stopping at resid_mid(0).
        try model.forward(tokens: a, batch: 1, seqLen: t)
        var calls: [HookPoint] = []
        var earlyMid: Tensor?
        let hooks = Hooks()
        hooks.add(.embed) { _ in calls.append(.embed) }
        hooks.add(.residMid(0)) { ctx in calls.append(.residMid(0)); earlyMid = ctx.activation.copy() }
        #expect(hooks.lastOrder == HookPoint.residMid(0).order)
        let stopped = try model.forward(tokens: b, batch: 1, seqLen: t, hooks: hooks, stopEarly: true)
        #expect(calls == [.embed, .residMid(0)])
        #expect(try #require(earlyMid).maxAbsDifference(try #require(fullMid)) == 0)
        // Everything after the stop point still holds A's values.
        #expect(stopped.logits.maxAbsDifference(logitsA) == 0)
        #expect(stopped.lnFinalOut.maxAbsDifference(lnFinalA) == 0)
        #expect(stopped.layer(0).mlpPost.maxAbsDifference(mlpPostA) == 0)

        // Without stopEarly the same hooks run to the end.
        let complete = try model.forward(tokens: b, batch: 1, seqLen: t, hooks: hooks)
        #expect(complete.logits.maxAbsDifference(logitsB) == 0)
    }

    @Test("an error thrown by a hook ends the pass and reaches the caller")
    func hookErrors() throws {
        struct Stop: Error {}
        let model = try randomModel(TestConfigs.gpt2, seed: 81)
        let hooks = Hooks()
        var later = false
        hooks.add(.residPre(1)) { _ in throw Stop() }
        hooks.add(.residPost(1)) { _ in later = true }
        #expect(throws: Stop.self) { try model.forward(tokens: [1, 2, 3], batch: 1, seqLen: 3, hooks: hooks) }
        #expect(!later)
    }

    @Test("bad inputs are refused with a message")
    func badInputs() throws {
        let model = try randomModel(TestConfigs.gpt2, seed: 82)
        let outOfVocab = #expect(throws: ModelError.self) { try model.forward(tokens: [1, 128, 3], batch: 1, seqLen: 3) }
        #expect(outOfVocab?.description.contains("position 1") == true)
        #expect(throws: ModelError.self) { try model.forward(tokens: [1, -1], batch: 1, seqLen: 2) }
        let tooLong = #expect(throws: ModelError.self) { try model.forward(tokens: [Int32](repeating: 1, count: 13), batch: 1, seqLen: 13) }
        #expect(tooLong?.description.contains("n_ctx") == true)
        #expect(throws: ModelError.self) { try model.forward(tokens: [1, 2, 3], batch: 2, seqLen: 2) }
    }

    /// Captures q, k and the pattern of layer 0.
    static func capturePattern(_ model: Transformer, tokens: [Int32], batch: Int, seqLen: Int) throws -> (q: Tensor, k: Tensor, p: Tensor) {
        var q: Tensor?, k: Tensor?, p: Tensor?
        let hooks = Hooks()
        hooks.add(.q(0)) { q = $0.activation.copy() }
        hooks.add(.k(0)) { k = $0.activation.copy() }
        hooks.add(.pattern(0)) { p = $0.activation.copy() }
        try model.forward(tokens: tokens, batch: batch, seqLen: seqLen, hooks: hooks)
        return (try #require(q), try #require(k), try #require(p))
    }

    @Test("pattern rows sum to 1 without a sink, below 1 with one, and match softmax(q·k/√d)",
          arguments: [false, true])
    func patterns(sink: Bool) throws {
        var c = TestConfigs.gpt2
        c.attentionSink = sink
        let model = try randomModel(c, seed: 91)
        let t = 8, batch = 2
        let tokens = randomTokens(batch * t, vocab: c.vocab, seed: 92)
        let (q, k, p) = try Self.capturePattern(model, tokens: tokens, batch: batch, seqLen: t)
        #expect(p.shape == [batch, c.nHead, t, t])
        let a = c.attentionWidth
        let sinkLogits = model.weights.blocks[0].sink.map { $0.toArray().map(Double.init) }
        #expect((sinkLogits != nil) == sink)
        for b in 0..<batch {
            let qRows = rowsOf(q.reshaped([batch * t, a]), width: a, (b * t)..<((b + 1) * t))
            let kRows = rowsOf(k.reshaped([batch * t, a]), width: a, (b * t)..<((b + 1) * t))
            let expected = Reference.pattern(q: qRows, k: kRows, heads: c.nHead, dHead: c.dHead, sink: sinkLogits)
            for h in 0..<c.nHead {
                for i in 0..<t {
                    let row = (0..<t).map { Double(p[((b * c.nHead + h) * t + i) * t + $0]) }
                    #expect(row[(i + 1)...].allSatisfy { $0 == 0 }, "future positions must get no weight")
                    let sum = row.reduce(0, +)
                    if sink {
                        #expect(sum < 1 - 1e-6)
                        // The missing mass is the sink's share.
                        #expect(abs((1 - sum) - (1 - expected[h][i].reduce(0, +))) < 1e-5)
                    } else {
                        #expect(abs(sum - 1) < 1e-5)
                    }
                    #expect(zip(row, expected[h][i]).allSatisfy { abs($0 - $1) < 1e-5 })
                }
            }
        }
    }

    @Test("editing the pattern in a hook changes the attention output")
    func patternEdit() throws {
        let c = TestConfigs.gpt2
        let model = try randomModel(c, seed: 95)
        let t = 5
        let tokens = randomTokens(t, vocab: c.vocab, seed: 96)
        // Uniform causal attention: z at position i is the mean of v over 0...i.
        var v: Tensor?, z: Tensor?
        let hooks = Hooks()
        hooks.add(.v(0)) { v = $0.activation.copy() }
        hooks.add(.pattern(0)) { ctx in
            let p = ctx.activation
            for h in 0..<c.nHead { for i in 0..<t { for j in 0..<t { p[(h * t + i) * t + j] = j <= i ? 1 / Float(i + 1) : 0 } } }
        }
        hooks.add(.z(0)) { z = $0.activation.copy() }
        try model.forward(tokens: tokens, batch: 1, seqLen: t, hooks: hooks)
        let vv = try #require(v), zz = try #require(z)
        let a = c.attentionWidth
        for i in 0..<t {
            for col in 0..<a {
                let mean = (0...i).map { Double(vv[$0 * a + col]) }.reduce(0, +) / Double(i + 1)
                #expect(abs(Double(zz[i * a + col]) - mean) < 1e-5)
            }
        }
    }

    @Test("AbsTopK at afrac 0.25 keeps exactly floor(0.25·width) per token at the node sites")
    func absTopK() throws {
        var c = TestConfigs.gpt2
        c.afrac = 0.25
        c.activation = .gelu
        let model = try randomModel(c, seed: 101)
        let t = 10, batch = 2
        let tokens = randomTokens(batch * t, vocab: c.vocab, seed: 102)
        var captured: [HookPoint: Tensor] = [:]
        let hooks = Hooks()
        let points: [HookPoint] = [.ln1Normalized(0), .q(0), .k(1), .v(0), .attnOut(1), .residMid(0),
                                   .ln2Normalized(1), .mlpPre(0), .mlpPost(0), .mlpPost(1), .mlpOut(0)]
        for point in points { hooks.add(point) { captured[point] = $0.activation.copy() } }
        try model.forward(tokens: tokens, batch: batch, seqLen: t, hooks: hooks)

        func nonzerosPerToken(_ point: HookPoint) throws -> [Int] {
            let x = try #require(captured[point])
            let width = point.rowWidth(config: c, seqLen: t)
            return (0..<(batch * t)).map { r in (0..<width).filter { x[r * width + $0] != 0 }.count }
        }
        // Widths 16 (d_model and n_head·d_head) → 4; 32 (d_mlp) → 8.
        for point in [HookPoint.ln1Normalized(0), .q(0), .k(1), .v(0), .attnOut(1), .ln2Normalized(1), .mlpOut(0)] {
            #expect(try nonzerosPerToken(point).allSatisfy { $0 == 4 }, "\(point)")
        }
        for point in [HookPoint.mlpPost(0), .mlpPost(1)] {
            #expect(try nonzerosPerToken(point).allSatisfy { $0 == 8 }, "\(point)")
        }
        // The residual stream and the pre-activations are not sparsified.
        #expect(try nonzerosPerToken(.residMid(0)).allSatisfy { $0 == 16 })
        #expect(try nonzerosPerToken(.mlpPre(0)).allSatisfy { $0 == 32 })

        // hook_post = AbsTopK_8(gelu(hook_pre)), checked in Float64.
        let pre = try #require(captured[.mlpPre(0)]), post = try #require(captured[.mlpPost(0)])
        for r in 0..<(batch * t) {
            let act = (0..<c.dMLP).map { Reference.activation(.gelu, Double(pre[r * c.dMLP + $0])) }
            let keep = Set(act.indices.sorted { abs(act[$0]) > abs(act[$1]) }.prefix(8))
            for j in 0..<c.dMLP {
                let expected = keep.contains(j) ? act[j] : 0
                #expect(abs(Double(post[r * c.dMLP + j]) - expected) < 1e-5)
            }
        }
    }

    @Test("a state made before the thread count grew is still safe to reuse")
    func threadCountChange() throws {
        let c = TestConfigs.gpt2
        let model = try randomModel(c, seed: 111)
        let tokens = randomTokens(4 * 8, vocab: c.vocab, seed: 112)
        let before = try model.forward(tokens: tokens, batch: 4, seqLen: 8).logits.copy()
        let after: Tensor = try withThreadCountLock {
            let saved = Parallel.threads
            defer { Parallel.threads = saved }
            Parallel.threads = saved + 3
            return try model.forward(tokens: tokens, batch: 4, seqLen: 8).logits.copy()
        }
        #expect(after.maxAbsDifference(before) < 1e-6)
    }
}

/// Serialises changes of the process-wide thread count across test targets (see TensorsTests).
func withThreadCountLock<R>(_ body: () throws -> R) rethrows -> R {
    let fd = open(NSTemporaryDirectory() + "/sparsebridge-tests-threads.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot open the test lock file")
    flock(fd, LOCK_EX)
    defer { flock(fd, LOCK_UN); close(fd) }
    return try body()
}
