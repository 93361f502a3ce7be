// A training recipe: everything that decides a training run, as a JSON file (snake_case).
// A rerun of a recipe with the same thread count reproduces the model bit for bit.

import Foundation
import Model
import Support

public struct SparsityRecipe: Codable, Equatable, Sendable {
    /// Kept fraction of every weight matrix at the end of annealing (e.g. 0.0625).
    public var targetFraction: Double
    /// Annealing runs linearly from fraction 1 to the target between these shares of training.
    public var annealStart: Double = 0.01
    public var annealEnd: Double = 0.5
    /// Every neuron / channel keeps at least this many nonzero weights.
    public var minPerNeuron: Int = 4
    /// Scale the learning rate by sqrt(target / current fraction) ("sharkfin").
    public var sharkfin: Bool = true

    enum CodingKeys: String, CodingKey {
        case targetFraction = "target_fraction", annealStart = "anneal_start", annealEnd = "anneal_end"
        case minPerNeuron = "min_per_neuron", sharkfin
    }

    public init(targetFraction: Double, annealStart: Double = 0.01, annealEnd: Double = 0.5, minPerNeuron: Int = 4,
                sharkfin: Bool = true) {
        self.targetFraction = targetFraction; self.annealStart = annealStart; self.annealEnd = annealEnd
        self.minPerNeuron = minPerNeuron; self.sharkfin = sharkfin
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        targetFraction = try c.decode(Double.self, forKey: .targetFraction)
        annealStart = try c.decodeIfPresent(Double.self, forKey: .annealStart) ?? 0.01
        annealEnd = try c.decodeIfPresent(Double.self, forKey: .annealEnd) ?? 0.5
        minPerNeuron = try c.decodeIfPresent(Int.self, forKey: .minPerNeuron) ?? 4
        sharkfin = try c.decodeIfPresent(Bool.self, forKey: .sharkfin) ?? true
    }

    /// Kept fraction at `step` of `steps`.
    public func fraction(step: Int, steps: Int) -> Double {
        let progress = Double(step) / Double(max(steps, 1))
        let s = min(max((progress - annealStart) / max(annealEnd - annealStart, 1e-12), 0), 1)
        return 1 + (targetFraction - 1) * s
    }
}

public struct Recipe: Codable, Equatable, Sendable {
    public var model: ModelConfig
    public var seed: UInt64
    /// Corpus: "synthetic" (the Tasks generator, seeded with `corpus_seed`).
    public var corpus: String = "synthetic"
    public var corpusSeed: UInt64 = 1
    public var steps: Int
    public var batch: Int
    public var seqLen: Int
    public var lr: Double
    public var warmupSteps: Int
    /// Learning rate at the end, as a fraction of `lr` (linear decay after warmup).
    public var finalLRFraction: Double = 0.1
    public var weightDecay: Double = 0.1
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var adamEps: Double = 1e-8
    public var sparsity: SparsityRecipe?
    public var evalEvery: Int = 250
    public var evalTasks: [String] = []
    public var evalPairs: Int = 100
    public var checkpointEvery: Int = 250
    /// Held-out sequences (from corpus seed + 1 000 000) for the held-out loss.
    public var heldoutSequences: Int = 64

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, seed, corpus, corpusSeed = "corpus_seed", steps, batch, seqLen = "seq_len", lr
        case warmupSteps = "warmup_steps", finalLRFraction = "final_lr_fraction", weightDecay = "weight_decay"
        case beta1, beta2, adamEps = "adam_eps", sparsity, evalEvery = "eval_every", evalTasks = "eval_tasks"
        case evalPairs = "eval_pairs", checkpointEvery = "checkpoint_every", heldoutSequences = "heldout_sequences"
    }

    public init(from decoder: Decoder) throws {
        if let unknown = try unknownKey(in: decoder, known: CodingKeys.allCases.map(\.rawValue)) {
            throw TrainingError.badRecipe("unknown recipe field \"\(unknown)\"")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelConfig.self, forKey: .model)
        seed = try c.decode(UInt64.self, forKey: .seed)
        corpus = try c.decodeIfPresent(String.self, forKey: .corpus) ?? "synthetic"
        corpusSeed = try c.decodeIfPresent(UInt64.self, forKey: .corpusSeed) ?? 1
        steps = try c.decode(Int.self, forKey: .steps)
        batch = try c.decode(Int.self, forKey: .batch)
        seqLen = try c.decode(Int.self, forKey: .seqLen)
        lr = try c.decode(Double.self, forKey: .lr)
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        finalLRFraction = try c.decodeIfPresent(Double.self, forKey: .finalLRFraction) ?? 0.1
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0.1
        beta1 = try c.decodeIfPresent(Double.self, forKey: .beta1) ?? 0.9
        beta2 = try c.decodeIfPresent(Double.self, forKey: .beta2) ?? 0.95
        adamEps = try c.decodeIfPresent(Double.self, forKey: .adamEps) ?? 1e-8
        sparsity = try c.decodeIfPresent(SparsityRecipe.self, forKey: .sparsity)
        evalEvery = try c.decodeIfPresent(Int.self, forKey: .evalEvery) ?? 250
        evalTasks = try c.decodeIfPresent([String].self, forKey: .evalTasks) ?? []
        evalPairs = try c.decodeIfPresent(Int.self, forKey: .evalPairs) ?? 100
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 250
        heldoutSequences = try c.decodeIfPresent(Int.self, forKey: .heldoutSequences) ?? 64
    }

    public func validate() throws {
        try model.validate()
        func bad(_ m: String) -> TrainingError { .badRecipe(m) }
        if corpus != "synthetic" { throw bad("corpus must be \"synthetic\", got \"\(corpus)\"") }
        if steps <= 0 || batch <= 0 { throw bad("steps and batch must be positive") }
        if seqLen <= 0 || seqLen > model.nCtx { throw bad("seq_len \(seqLen) must be between 1 and n_ctx \(model.nCtx)") }
        if !(lr > 0) || warmupSteps < 0 || warmupSteps > steps { throw bad("lr must be positive and warmup_steps within steps") }
        if !(0...1).contains(finalLRFraction) { throw bad("final_lr_fraction must be in [0, 1]") }
        if !(0..<1).contains(beta1) || !(0..<1).contains(beta2) || !(adamEps > 0) { throw bad("bad Adam settings") }
        if let s = sparsity {
            if !(s.targetFraction > 0 && s.targetFraction <= 1) { throw bad("sparsity.target_fraction must be in (0, 1]") }
            if !(0...1).contains(s.annealStart) || !(s.annealStart...1).contains(s.annealEnd) {
                throw bad("sparsity.anneal_start ≤ anneal_end must lie in [0, 1]")
            }
            if s.minPerNeuron < 0 { throw bad("sparsity.min_per_neuron must be ≥ 0") }
        }
        if evalEvery <= 0 || checkpointEvery <= 0 || heldoutSequences <= 0 || evalPairs <= 0 {
            throw bad("eval_every, checkpoint_every, heldout_sequences and eval_pairs must be positive")
        }
    }

    /// Learning rate at `step`: warmup, linear decay to `final_lr_fraction`, and the sharkfin factor.
    public func learningRate(step: Int) -> Double {
        var rate: Double
        if step < warmupSteps {
            rate = lr * Double(step + 1) / Double(warmupSteps)
        } else {
            let p = Double(step - warmupSteps) / Double(max(steps - warmupSteps, 1))
            rate = lr * (1 - (1 - finalLRFraction) * p)
        }
        if let s = sparsity, s.sharkfin {
            rate *= (s.targetFraction / s.fraction(step: step, steps: steps)).squareRoot()
        }
        return rate
    }

    public static func load(_ path: String) throws -> Recipe {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.badFile(path: path, "cannot read recipe file")
        }
        return try decode(data, source: path)
    }

    /// Decodes and validates a recipe's JSON bytes; `source` names them in errors.
    public static func decode(_ data: Data, source path: String) throws -> Recipe {
        do {
            let r = try JSONDecoder().decode(Recipe.self, from: data)
            try r.validate()
            return r
        } catch let e as TrainingError {
            if case .badRecipe(let m) = e { throw TrainingError.badFile(path: path, m) }
            throw e
        } catch let e as ModelError {
            throw TrainingError.badFile(path: path, e.description)
        } catch {
            throw TrainingError.badFile(path: path, describeDecodingError(error))
        }
    }

    public var jsonString: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }
}

public enum TrainingError: UserFacingError {
    case badRecipe(String)
    case badFile(path: String, String)

    public var description: String {
        switch self {
        case .badRecipe(let m): return "bad recipe: \(m)"
        case .badFile(let path, let m): return "\(path): \(m)"
        }
    }
}
