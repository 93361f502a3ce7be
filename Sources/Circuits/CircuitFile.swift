// The circuit file (`sparsebridge circuit --out`): the summary of the pruning run, every kept
// node with its strongest connections, and the strongest edges. One Codable type writes it
// (CircuitGraph.file) and reads it back (the dilution study, the demo), so the two agree.
//
// The reader is lenient field by field, as a reader of files made elsewhere must be: a field
// of the wrong type reads as absent, and the users of a field say what they miss.

import Foundation
import Support

public struct CircuitFile: Codable, Sendable {
    public struct Score: Codable, Sendable, Equatable {
        public var loss: Double
        public var accuracy: Double
        public var lossStandardError: Double
        enum CodingKeys: String, CodingKey { case loss, accuracy, lossStandardError = "loss_standard_error" }
        public init(loss: Double, accuracy: Double, standardError: Double) {
            self.loss = loss; self.accuracy = accuracy; lossStandardError = standardError
        }
    }

    /// Held-out checks of the circuit: the full model, the circuit alone, the circuit ablated.
    public struct Checks: Codable, Sendable, Equatable {
        public var heldoutPrompts: Int
        public var fullModel: Score
        public var circuitAlone: Score
        public var circuitAblated: Score
        public var circuitAloneWithinTarget: Bool
        enum CodingKeys: String, CodingKey {
            case heldoutPrompts = "heldout_prompts", fullModel = "full_model", circuitAlone = "circuit_alone"
            case circuitAblated = "circuit_ablated", circuitAloneWithinTarget = "circuit_alone_within_target"
        }
        public init(heldoutPrompts: Int, fullModel: Score, circuitAlone: Score, circuitAblated: Score, circuitAloneWithinTarget: Bool) {
            self.heldoutPrompts = heldoutPrompts; self.fullModel = fullModel; self.circuitAlone = circuitAlone
            self.circuitAblated = circuitAblated; self.circuitAloneWithinTarget = circuitAloneWithinTarget
        }
    }

    public struct Node: Codable, Sendable {
        public var id: String?
        public var location: String?
        /// A number in the file; whole for any file this program wrote.
        public var index: Double?
        public var readsCount: Int?
        public var writesCount: Int?
        public var reads: [String]?
        public var writes: [String]?
        enum CodingKeys: String, CodingKey {
            case id, location, index, readsCount = "reads_count", writesCount = "writes_count", reads, writes
        }
        public init(id: String, location: String, index: Int, readsCount: Int, writesCount: Int, reads: [String], writes: [String]) {
            self.id = id; self.location = location; self.index = Double(index); self.readsCount = readsCount
            self.writesCount = writesCount; self.reads = reads; self.writes = writes
        }
        public init(from decoder: Decoder) throws {
            guard let c = try? decoder.container(keyedBy: CodingKeys.self) else { return }
            id = try? c.decode(String.self, forKey: .id)
            location = try? c.decode(String.self, forKey: .location)
            index = try? c.decode(Double.self, forKey: .index)
            readsCount = try? c.decode(Int.self, forKey: .readsCount)
            writesCount = try? c.decode(Int.self, forKey: .writesCount)
            reads = try? c.decode([String].self, forKey: .reads)
            writes = try? c.decode([String].self, forKey: .writes)
        }
    }

    /// For a model made by `plant`: how much of the planted circuit the pruner found.
    public struct Planted: Codable, Sendable, Equatable {
        public var nodes: Int
        public var recovered: Int
        public var missing: [String]
        public var extra: [String]
        public init(known: [String], found: [String]) {
            let k = Set(known), f = Set(found)
            nodes = k.count; missing = k.subtracting(f).sorted(); extra = f.subtracting(k).sorted(); recovered = nodes - missing.count
        }
    }

    public struct Edge: Codable, Sendable {
        public var from: String
        public var to: String
        public var kind: String
        public var weight: Double
    }

    // The pruning run (absent in files written by other tools).
    public var model: String?
    public var task: String?
    public var ablation: String?
    public var targetLoss: Double?
    public var confidence: Double?
    public var loss: Double?
    public var totalNodes: Int?
    public var checks: Checks?
    /// Whether backward elimination followed the search, and what the search alone kept.
    public var refined: Bool?
    public var searchedNodes: Int?
    public var searchedLoss: Double?
    public var planted: Planted?
    // The graph.
    public var nodeCount: Int?
    public var edgeCount: Int?
    public var edgesListed: Int?
    public var nodes: [Node]
    public var edges: [Edge]?

    enum CodingKeys: String, CodingKey {
        case model, task, ablation, targetLoss = "target_loss", confidence, loss, totalNodes = "total_nodes", checks
        case refined, searchedNodes = "searched_nodes", searchedLoss = "searched_loss", planted
        case nodeCount = "node_count", edgeCount = "edge_count", edgesListed = "edges_listed", nodes, edges
    }

    public init(nodes: [Node], edges: [Edge], nodeCount: Int, edgeCount: Int, edgesListed: Int) {
        self.nodes = nodes; self.edges = edges
        self.nodeCount = nodeCount; self.edgeCount = edgeCount; self.edgesListed = edgesListed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nodes = try c.decode([Node].self, forKey: .nodes)
        model = try? c.decode(String.self, forKey: .model)
        task = try? c.decode(String.self, forKey: .task)
        ablation = try? c.decode(String.self, forKey: .ablation)
        targetLoss = try? c.decode(Double.self, forKey: .targetLoss)
        confidence = try? c.decode(Double.self, forKey: .confidence)
        loss = try? c.decode(Double.self, forKey: .loss)
        totalNodes = try? c.decode(Int.self, forKey: .totalNodes)
        checks = try? c.decode(Checks.self, forKey: .checks)
        refined = try? c.decode(Bool.self, forKey: .refined)
        searchedNodes = try? c.decode(Int.self, forKey: .searchedNodes)
        searchedLoss = try? c.decode(Double.self, forKey: .searchedLoss)
        planted = try? c.decode(Planted.self, forKey: .planted)
        nodeCount = try? c.decode(Int.self, forKey: .nodeCount)
        edgeCount = try? c.decode(Int.self, forKey: .edgeCount)
        edgesListed = try? c.decode(Int.self, forKey: .edgesListed)
        edges = try? c.decode([Edge].self, forKey: .edges)
    }

    /// The pruning run without its graph (what `circuit --json` prints).
    public var summary: Summary {
        Summary(model: model, task: task, ablation: ablation, targetLoss: targetLoss, confidence: confidence, loss: loss,
                totalNodes: totalNodes, checks: checks, refined: refined, searchedNodes: searchedNodes, searchedLoss: searchedLoss,
                planted: planted, nodeCount: nodeCount, edgeCount: edgeCount)
    }

    public struct Summary: Codable, Sendable {
        public var model: String?
        public var task: String?
        public var ablation: String?
        public var targetLoss: Double?
        public var confidence: Double?
        public var loss: Double?
        public var totalNodes: Int?
        public var checks: Checks?
        public var refined: Bool?
        public var searchedNodes: Int?
        public var searchedLoss: Double?
        public var planted: Planted?
        public var nodeCount: Int?
        public var edgeCount: Int?
        enum CodingKeys: String, CodingKey {
            case model, task, ablation, targetLoss = "target_loss", confidence, loss, totalNodes = "total_nodes", checks
            case refined, searchedNodes = "searched_nodes", searchedLoss = "searched_loss", planted
            case nodeCount = "node_count", edgeCount = "edge_count"
        }
    }

    /// Reads a circuit file; anything without a list of nodes is not one.
    public static func read(_ path: String) throws -> CircuitFile {
        // Bytes that are not UTF-8 become U+FFFD rather than refusing the whole file.
        guard let data = FileManager.default.contents(atPath: path),
              let file = try? JSONDecoder().decode(CircuitFile.self, from: Data(String(decoding: data, as: UTF8.self).utf8)) else {
            throw CircuitError.badFile(path: path, "not a circuit file (no nodes list)")
        }
        return file
    }

    /// Writes the file whole under a temporary name, then renames it into place.
    public func write(to output: AtomicOutput) throws {
        try Data((JSONValue.string(self) + "\n").utf8).write(to: URL(fileURLWithPath: output.temporaryPath))
        try output.commit()
    }
}
