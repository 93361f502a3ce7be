// The main job: the whole study on the shipped models, written to a run folder as
// results.json (summary and tables) and data.h5 (the arrays behind every figure), which
// `export notebook` turns into a runnable Jupyter notebook.

import Bridges
import Circuits
import DePass
import Foundation
import HDF5
import Steering
import Tasks
import Tensors
import Checkpoints
import Model
import Support
import Text

public struct DemoOptions: Sendable {
    public var dense = "models/dense.h5"
    public var sparse = "models/sparse.h5"
    public var bridge = "bridges/default.h5"
    public var settings = "models/demo.json"
    public var circuits = "circuits"
    public var out = "runs/demo"
    public var quick = false
    public init() {}
}

/// Which site and channel the demo steers through, and the dilution sweep (models/demo.json).
public struct DemoSettings: Codable, Sendable {
    public var steeringSite: String
    public var steeringChannel: Int?          // nil: the first channel by steeringRank
    public var steeringRank: ChannelRanking = .separation
    public var steeringSource: SteeringSource = .sparse
    public var steeringRescale: SteeringRescale = .none
    public var dilutionLengths: [Int] = Array(stride(from: 4, through: 160, by: 12))

    enum CodingKeys: String, CodingKey {
        case steeringSite = "steering_site", steeringChannel = "steering_channel", steeringSource = "steering_source"
        case steeringRescale = "steering_rescale", steeringRank = "steering_rank", dilutionLengths = "dilution_lengths"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steeringSite = try c.decode(String.self, forKey: .steeringSite)
        steeringChannel = try c.decodeIfPresent(Int.self, forKey: .steeringChannel)
        steeringRank = try c.decodeIfPresent(ChannelRanking.self, forKey: .steeringRank) ?? .separation
        steeringSource = try c.decodeIfPresent(SteeringSource.self, forKey: .steeringSource) ?? .sparse
        steeringRescale = try c.decodeIfPresent(SteeringRescale.self, forKey: .steeringRescale) ?? .none
        dilutionLengths = try c.decodeIfPresent([Int].self, forKey: .dilutionLengths) ?? Array(stride(from: 4, through: 160, by: 12))
    }
}

public enum DemoError: UserFacingError {
    case missing(String, how: String)
    case badRun(String)
    public var description: String {
        switch self {
        case .missing(let m, let how): return "\(m); create it with: \(how)"
        case .badRun(let m): return m
        }
    }
}

public enum Demo {
    public static let format = "sparsebridge.demo"
    public static let version = 1

    /// Runs the study; `log` receives progress lines (for stderr).
    @discardableResult
    public static func run(_ o: DemoOptions, log: (String) -> Void) throws -> StudyResults {
        // Every shipped file must be there and sound before any work starts.
        let inputs = try DemoInputs(o)

        // The run folder is built under a temporary name and swapped in whole when complete, so
        // results.json and data.h5 under the final name always come from one finished run (a
        // failure removes the temporary folder, when `folder` goes).
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: o.out).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        let folder = try AtomicOutput(o.out, folder: true)
        let dir = folder.temporaryPath
        let started = Date()
        var results = StudyResults(format: format, formatVersion: version, quick: o.quick, dense: o.dense, sparse: o.sparse,
                                   bridge: o.bridge)
        let data = try H5File(create: dir + "/data.h5")
        try data.setAttribute("format", format)
        try data.setAttribute("format_version", version)
        // The steps write data.h5 in this order; its bytes depend on it.
        log("tasks: both models on every task")
        try taskAccuracy(inputs, into: &results)
        log("bridges: NMSE and splicing at \(inputs.bridge.sites.count) sites")
        try bridgeMetrics(inputs, data: data, into: &results)
        log("steering: quote type through \(inputs.settings.steeringSite)")
        let (steerer, channel) = try steering(inputs, data: data, into: &results)
        log("DePass of the steered effect")
        try attribution(inputs, steerer: steerer, channel: channel, data: data, into: &results)
        results.circuits = inputs.circuits
        log("context dilution: bracket counting against list length")
        try dilution(inputs, data: data, into: &results)
        results.seconds = Date().timeIntervalSince(started)
        data.closeFile()
        try Data((JSONValue.string(results) + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/results.json"))
        try folder.commit()
        return results
    }

    /// Reads a run folder's results, refusing missing folders and other format versions.
    public static func loadRun(_ dir: String) throws -> StudyResults {
        let path = dir + "/results.json"
        guard let d = FileManager.default.contents(atPath: path) else {
            throw DemoError.badRun("\(dir): no results.json here (run `sparsebridge demo --out \(dir)` first)")
        }
        let text = Data(String(decoding: d, as: UTF8.self).utf8)
        guard let r = try? JSONValue.parse(String(decoding: text, as: UTF8.self)), r["format"]?.stringValue == format else {
            throw DemoError.badRun("\(path): not a SparseBridge demo result")
        }
        let v = Int(r["format_version"]?.numberValue ?? -1)
        guard v == version else {
            throw DemoError.badRun("\(path): format_version \(v), this program reads \(version); rerun `sparsebridge demo --out \(dir)`")
        }
        guard FileManager.default.fileExists(atPath: dir + "/data.h5") else { throw DemoError.badRun("\(dir): data.h5 is missing") }
        guard let results = try? JSONDecoder().decode(StudyResults.self, from: text) else {
            throw DemoError.badRun("\(path): not a SparseBridge demo result (a field is missing or of the wrong type)")
        }
        return results
    }
}
