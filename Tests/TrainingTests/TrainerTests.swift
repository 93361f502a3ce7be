import Foundation
import Testing
import Tensors
import Training
import Model
import Text

/// Lines `x = "abc"` with random quote type and contents: the closing quote can only be
/// predicted by finding the opening one.
struct QuoteLines: TokenStream {
    var rng: SeededRandom
    var buffer: [Int32] = []
    init(seed: UInt64) { rng = SeededRandom(seed: seed) }
    var description: String { "quote-lines" }

    mutating func line() -> String {
        let q = rng.nextInt(2) == 0 ? "\"" : "'"
        let body = String((0..<(1 + rng.nextInt(5))).map { _ in Array("abcd")[rng.nextInt(4)] })
        return "x = \(q)\(body)\(q)\n"
    }

    mutating func next(_ length: Int) throws -> [Int32]? {
        while buffer.count < length { buffer += line().utf8.map { Int32($0) } }
        defer { buffer.removeFirst(length) }
        return Array(buffer.prefix(length))
    }
}

func recipe(steps: Int, sparsity: SparsityRecipe? = nil, lr: Double = 0.01) throws -> Recipe {
    var json = """
    {"model": {"n_layer": 1, "d_model": 32, "n_head": 2, "d_mlp": 64, "n_ctx": 32}, "seed": 3, "steps": \(steps),
     "batch": 16, "seq_len": 32, "lr": \(lr), "warmup_steps": 10, "final_lr_fraction": 0.1, "heldout_sequences": 8
    """
    if let s = sparsity { json += #", "sparsity": {"target_fraction": \#(s.targetFraction)}"# }
    json += "}"
    return try JSONDecoder().decode(Recipe.self, from: Data(json.utf8))
}

@Suite("Trainer")
struct TrainerTests {
    @Test("a tiny model learns to close quotes in 300 steps")
    func learnsQuotes() throws {
        let trainer = try Trainer(recipe: try recipe(steps: 300), corpus: QuoteLines(seed: 1), heldout: QuoteLines(seed: 2))
        let before = try trainer.heldoutLoss()
        while trainer.step < 300 { try trainer.trainStep() }
        let after = try trainer.heldoutLoss()
        // Uniform over 128 tokens is 4.85 nats; the text's own entropy (random quote type and
        // letters) is about 0.6 nats per character; a model that closes quotes gets near it.
        #expect(before > 4.5)
        #expect(after < 0.9, "held-out loss \(after)")
        // The closing quote itself: P(right quote) on fresh lines.
        var stream = QuoteLines(seed: 99)
        var right = 0, total = 0
        for _ in 0..<40 {
            let text = stream.line()
            let tokens = text.utf8.map { Int32($0) }
            let close = tokens.count - 2  // position of the closing quote
            let logits = try trainer.model.logits(tokens: Array(tokens.prefix(close)))
            let row = Array(logits.buffer[((close - 1) * 128)..<(close * 128)])
            let q = tokens[close], other: Int32 = q == 34 ? 39 : 34
            if row[Int(q)] > row[Int(other)] { right += 1 }
            total += 1
        }
        #expect(Double(right) / Double(total) >= 0.95, "\(right)/\(total) closing quotes right")
    }

    @Test("resuming from a checkpoint equals an uninterrupted run, bit for bit")
    func resumeEqualsUninterrupted() throws {
        let r = try recipe(steps: 12, sparsity: SparsityRecipe(targetFraction: 0.25))
        let straight = try Trainer(recipe: r, corpus: QuoteLines(seed: 5), heldout: QuoteLines(seed: 6))
        while straight.step < 12 { try straight.trainStep() }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sb-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ckpt.h5").path
        let first = try Trainer(recipe: r, corpus: QuoteLines(seed: 5), heldout: QuoteLines(seed: 6))
        while first.step < 5 { try first.trainStep() }
        try TrainingCheckpoint.save(first, to: path)
        let resumed = try TrainingCheckpoint.resume(path, recipe: r, corpus: QuoteLines(seed: 5), heldout: QuoteLines(seed: 6))
        #expect(resumed.step == 5)
        while resumed.step < 12 { try resumed.trainStep() }
        for (a, b) in zip(straight.model.weights.parameters, resumed.model.weights.parameters) {
            #expect(a.tensor.toArray() == b.tensor.toArray(), "\(a.name)")
        }
        #expect(straight.lossLog == resumed.lossLog)
    }

    @Test("a resume with another recipe is refused")
    func resumeRefusesOtherRecipe() throws {
        let r = try recipe(steps: 12)
        let t = try Trainer(recipe: r, corpus: QuoteLines(seed: 5), heldout: QuoteLines(seed: 6))
        try t.trainStep()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sb-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ckpt.h5").path
        try TrainingCheckpoint.save(t, to: path)
        let other = try recipe(steps: 12, lr: 0.02)
        #expect(throws: TrainingError.self) {
            _ = try TrainingCheckpoint.resume(path, recipe: other, corpus: QuoteLines(seed: 5), heldout: QuoteLines(seed: 6))
        }
    }

    @Test("a sparse run ends at the target fraction in every matrix")
    func sparseRunEndsAtTarget() throws {
        let r = try recipe(steps: 20, sparsity: SparsityRecipe(targetFraction: 0.125))
        let t = try Trainer(recipe: r, corpus: QuoteLines(seed: 1), heldout: QuoteLines(seed: 2))
        while t.step < 20 { try t.trainStep() }
        for p in t.model.weights.parameters where SparseProjection.isProjected(p.role) {
            let nonzero = p.tensor.toArray().filter { $0 != 0 }.count
            let axis = SparseProjection.neuronAxis(name: p.name, role: p.role)
            #expect(nonzero == SparseProjection.keptCount(rows: p.tensor.shape[0], cols: p.tensor.shape[1], fraction: 0.125,
                                                          minPerNeuron: 4, axis: axis), "\(p.name)")
        }
    }
}
