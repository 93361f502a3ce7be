// CircuitFile: what the circuit command writes, the dilution study and the demo read back
// through the same type; the reader is lenient field by field, as the hand parsers were.

import Foundation
import Testing
import Circuits
import Model
import Support

@Suite("Circuit files")
struct CircuitFileTests {
    static func temporary(_ name: String) -> String {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("sparsebridge-tests-circuit-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test("a graph written as a file reads back with the same nodes, edges and run summary")
    func roundTrip() throws {
        let config = ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 16, nCtx: 8)
        let model = try Transformer(config: config, seed: 3)
        var mask = NodeMask.all(config, open: false)
        for loc in NodeLocation.all(config) { mask.open[loc]![0] = true }
        let graph = CircuitGraph(model: model, mask: mask)
        var file = graph.file()
        file.task = "bracket_counting"; file.loss = 0.125; file.totalNodes = 99
        file.checks = CircuitFile.Checks(heldoutPrompts: 4, fullModel: .init(loss: 0.1, accuracy: 1, standardError: 0.01),
                                         circuitAlone: .init(loss: 0.2, accuracy: 0.75, standardError: 0.02),
                                         circuitAblated: .init(loss: 0.7, accuracy: 0.5,
                                                               standardError: 0.03), circuitAloneWithinTarget: false)
        let path = Self.temporary("c.json")
        try file.write(to: AtomicOutput(path))
        let back = try CircuitFile.read(path)
        #expect(back.nodes.map(\.id) == file.nodes.map(\.id))
        #expect(back.nodes.map(\.index) == graph.nodes.map { Double($0.index) })
        #expect(back.nodeCount == graph.nodes.count && back.edgeCount == graph.edges.count)
        #expect(back.edges?.count == file.edges?.count)
        #expect(back.task == "bracket_counting" && back.loss == 0.125 && back.checks == file.checks)
        // What the file says it is, it says in the same bytes when written again.
        #expect(try JSONValue.string(back) == JSONValue.string(file))
    }

    @Test("no nodes list is not a circuit file; a malformed node or field reads as absent")
    func lenient() throws {
        let path = Self.temporary("c.json")
        try #"{"task": "bracket_counting"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: CircuitError.self) { _ = try CircuitFile.read(path) }
        #expect(error == .badFile(path: path, "not a circuit file (no nodes list)"))
        try #"{"task": 7, "loss": "low", "nodes": [5, {"location": "0.attn_out", "index": 2}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let file = try CircuitFile.read(path)
        #expect(file.task == nil && file.loss == nil)
        #expect(file.nodes.count == 2 && file.nodes[0].location == nil && file.nodes[1].index == 2)
    }
}
