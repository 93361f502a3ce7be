// The study's results (results.json), as Codable types: the demo writes them, and the summary,
// `export notebook` and any later reader read them back through the same types. Keys are
// snake_case; a value the study could not find or measure is written as null (not left out),
// so every results.json has the same keys.

import Foundation
import Circuits
import Steering
import Support

public struct StudyResults: Codable, Sendable {
    public var format: String
    public var formatVersion: Int
    public var quick: Bool
    public var dense: String
    public var sparse: String
    public var bridge: String
    public var tasks: [TaskAccuracy] = []
    public var models = ModelPair()
    public var bridgeNMSE: [BridgeNMSE] = []
    public var splice: [SpliceRow] = []
    public var steering = SteeringSummary()
    public var depass = DePassSummary()
    public var circuits: [String: CircuitSummary] = [:]
    public var dilution = DilutionSummary()
    public var seconds = 0.0

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", quick, dense, sparse, bridge, tasks, models
        case bridgeNMSE = "bridge_nmse", splice, steering, depass, circuits, dilution, seconds
    }

    public init(format: String, formatVersion: Int, quick: Bool, dense: String, sparse: String, bridge: String) {
        self.format = format; self.formatVersion = formatVersion; self.quick = quick
        self.dense = dense; self.sparse = sparse; self.bridge = bridge
    }
}

/// Both models on one task.
public struct TaskAccuracy: Codable, Sendable {
    public var task: String
    public var denseAccuracy: Double
    public var sparseAccuracy: Double
    public var denseContrastLoss: Double
    public var sparseContrastLoss: Double
    enum CodingKeys: String, CodingKey {
        case task, denseAccuracy = "dense_accuracy", sparseAccuracy = "sparse_accuracy"
        case denseContrastLoss = "dense_contrast_loss", sparseContrastLoss = "sparse_contrast_loss"
    }
}

public struct ModelPair: Codable, Sendable {
    public var dense = ModelSummary()
    public var sparse = ModelSummary()
}

public struct ModelSummary: Codable, Sendable {
    public var parameters = 0
    public var nonzero = 0
    /// From the model's training provenance; null for a model that does not record it.
    public var heldoutBitsPerChar: Double?
    enum CodingKeys: String, CodingKey { case parameters, nonzero, heldoutBitsPerChar = "heldout_bits_per_char" }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(nonzero, forKey: .nonzero)
        try c.encode(heldoutBitsPerChar, forKey: .heldoutBitsPerChar)  // null when absent
    }
}

/// A bridge site's held-out NMSE and ridge λ, both directions (from the bridge file).
public struct BridgeNMSE: Codable, Sendable {
    public var site: String
    public var d2sNMSE: Double
    public var s2dNMSE: Double
    public var d2sLambda: Double
    public var s2dLambda: Double
    enum CodingKeys: String, CodingKey {
        case site, d2sNMSE = "d2s_nmse", s2dNMSE = "s2d_nmse", d2sLambda = "d2s_lambda", s2dLambda = "s2d_lambda"
    }
}

/// Splicing one site in one direction.
public struct SpliceRow: Codable, Sendable {
    public var site: String
    public var direction: String
    public var ceClean: Double
    public var ceSpliced: Double
    public var ceZeroAblated: Double
    public var ceMeanAblated: Double
    public var ceRecovered: Double
    public var kl: Double
    enum CodingKeys: String, CodingKey {
        case site, direction, ceClean = "ce_clean", ceSpliced = "ce_spliced", ceZeroAblated = "ce_zero_ablated"
        case ceMeanAblated = "ce_mean_ablated", ceRecovered = "ce_recovered", kl
    }
}

/// The steering curve through one sparse channel (its points are `steer --json`'s).
public struct SteeringSummary: Codable, Sendable {
    public var site = ""
    public var channel = 0
    public var source = ""
    public var rescale = ""
    /// How the channel was chosen: a ranking, or "named" in the settings.
    public var rank = ""
    public var curve: [SteeringPoint] = []
    public var flipRateAt1 = 0.0
    public var controlFlipRateAt1 = 0.0
    enum CodingKeys: String, CodingKey {
        case site, channel, source, rescale, rank, curve, flipRateAt1 = "flip_rate_at_1", controlFlipRateAt1 = "control_flip_rate_at_1"
    }
}

/// DePass of the steered run: the steering component's share of the logit difference.
public struct DePassSummary: Codable, Sendable {
    public var pairs = 0
    public var logitDiff = 0.0
    public var steeringComponent = 0.0
    public var maxRelativeError = 0.0
    enum CodingKeys: String, CodingKey {
        case pairs, logitDiff = "logit_diff", steeringComponent = "steering_component", maxRelativeError = "max_relative_error"
    }
}

/// A committed circuit file, as the study reports it (null: the file does not say).
public struct CircuitSummary: Codable, Sendable {
    public var file: String
    public var nodes: Int?
    public var edges: Int?
    public var loss: Double?
    public var checks: CircuitFile.Checks?
    enum CodingKeys: String, CodingKey { case file, nodes, edges, loss, checks }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(nodes, forKey: .nodes)
        try c.encode(edges, forKey: .edges)
        try c.encode(loss, forKey: .loss)
        try c.encode(checks, forKey: .checks)
    }
}

/// Context dilution: the depth signal, and prediction beside measurement for each model.
public struct DilutionSummary: Codable, Sendable {
    public var site = ""
    public var channels: [Int] = []
    public var sparse = DilutionModelSummary()
    public var dense = DilutionModelSummary()
}

public struct DilutionModelSummary: Codable, Sendable {
    public var predictedFlipLength: Double?
    /// "signal", "fit" or "none" (Circuits' DilutionModelResult).
    public var predictedFrom = ""
    public var threshold: Double?
    public var ownThreshold: Double?
    public var measuredFlipLength: Int?
    public var distractorAccuracy: Double?
    enum CodingKeys: String, CodingKey {
        case predictedFlipLength = "predicted_flip_length", predictedFrom = "predicted_from", threshold
        case ownThreshold = "own_threshold", measuredFlipLength = "measured_flip_length", distractorAccuracy = "distractor_accuracy"
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(predictedFlipLength, forKey: .predictedFlipLength)
        try c.encode(predictedFrom, forKey: .predictedFrom)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(ownThreshold, forKey: .ownThreshold)
        try c.encode(measuredFlipLength, forKey: .measuredFlipLength)
        try c.encode(distractorAccuracy, forKey: .distractorAccuracy)
    }
}
