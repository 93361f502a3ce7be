// A circuit as a graph: its nodes, and the edges between kept nodes — nonzero weights
// inside a block (attn_in → q/k/v through W_Q/W_K/W_V, v → attn_out through W_O, mlp_in →
// neuron through W_in, neuron → mlp_out through W_out) and residual edges from a block's
// write channel to the same channel read by a later norm. Exported as JSON and Graphviz DOT.

import Foundation
import Tensors
import Model
import Support

public struct CircuitEdge: Sendable {
    public let from: String   // "layer.kind:index"
    public let to: String
    public let kind: String   // W_Q, W_K, W_V, W_O, W_in, W_out, residual
    public let weight: Float
}

public struct CircuitGraph: Sendable {
    public let nodes: [(location: NodeLocation, index: Int)]
    public let edges: [CircuitEdge]

    public static func id(_ loc: NodeLocation, _ i: Int) -> String { "\(loc.name):\(i)" }

    public init(model: Transformer, mask: NodeMask) {
        let c = model.config, w = model.weights
        let locs = NodeLocation.all(c)
        nodes = locs.flatMap { loc in mask.open[loc]!.enumerated().filter(\.element).map { (loc, $0.offset) } }
        func kept(_ kind: String, _ l: Int) -> [Int] {
            let loc = NodeLocation(kind: kind, layer: l)
            return mask.open[loc]!.enumerated().filter(\.element).map(\.offset)
        }
        var edges: [CircuitEdge] = []
        func linear(_ from: String, _ to: String, _ l: Int, _ matrix: Tensor, _ name: String) {
            let cols = matrix.shape[1]
            for i in kept(from, l) {
                for j in kept(to, l) {
                    let x = matrix.data[i * cols + j]
                    if x != 0 {
                        edges.append(CircuitEdge(from: Self.id(NodeLocation(kind: from, layer: l), i),
                                                 to: Self.id(NodeLocation(kind: to, layer: l), j), kind: name, weight: x))
                    }
                }
            }
        }
        for l in 0..<c.nLayer {
            let b = w.blocks[l]
            linear("attn_in", "attn_q", l, b.W_Q, "W_Q")
            linear("attn_in", "attn_k", l, b.W_K, "W_K")
            linear("attn_in", "attn_v", l, b.W_V, "W_V")
            linear("attn_v", "attn_out", l, b.W_O, "W_O")
            linear("mlp_in", "mlp_neuron", l, b.W_in, "W_in")
            linear("mlp_neuron", "mlp_out", l, b.W_out, "W_out")
        }
        // Residual edges: a write channel to the same channel at every later read.
        var writes: [(NodeLocation, Int)] = []
        for loc in locs {
            if loc.kind == "attn_in" || loc.kind == "mlp_in" || loc.kind == "final_in" {
                let gain = loc.kind == "final_in" ? w.lnFinalGain : (loc.kind == "attn_in" ? w.blocks[loc.layer].ln1Gain : w.blocks[loc.layer].ln2Gain)
                for j in mask.open[loc]!.enumerated().filter(\.element).map(\.offset) where gain[j] != 0 {
                    for (wl, wj) in writes where wj == j {
                        edges.append(CircuitEdge(from: Self.id(wl, wj), to: Self.id(loc, j), kind: "residual", weight: gain[j]))
                    }
                }
            }
            if loc.kind == "attn_out" || loc.kind == "mlp_out" {
                for j in mask.open[loc]!.enumerated().filter(\.element).map(\.offset) { writes.append((loc, j)) }
            }
        }
        self.edges = edges
    }

    /// The graph as a circuit file (CircuitFile.swift); the caller fills in the pruning run.
    /// Dense models' circuits hold hundreds of thousands of edges; the file lists the
    /// `maxEdges` strongest (by |weight|, with `edges_listed` < `edge_count` saying so) and,
    /// per node, how many edges it reads and writes with its strongest few.
    public func file(maxEdges: Int = 20_000) -> CircuitFile {
        let ranked = edges.sorted { abs($0.weight) > abs($1.weight) || (abs($0.weight) == abs($1.weight) && ($0.from, $0.to) < ($1.from, $1.to)) }
        var reads: [String: [CircuitEdge]] = [:], writes: [String: [CircuitEdge]] = [:]
        for e in ranked { reads[e.to, default: []].append(e); writes[e.from, default: []].append(e) }
        let fileNodes = nodes.map { n -> CircuitFile.Node in
            let id = Self.id(n.location, n.index)
            let r = reads[id] ?? [], w = writes[id] ?? []
            return CircuitFile.Node(id: id, location: n.location.name, index: n.index, readsCount: r.count, writesCount: w.count,
                                    reads: r.prefix(8).map(\.from), writes: w.prefix(8).map(\.to))
        }
        let fileEdges = ranked.prefix(maxEdges).map { CircuitFile.Edge(from: $0.from, to: $0.to, kind: $0.kind, weight: Double($0.weight)) }
        return CircuitFile(nodes: fileNodes, edges: fileEdges, nodeCount: nodes.count, edgeCount: edges.count,
                           edgesListed: min(edges.count, maxEdges))
    }

    /// Graphviz DOT of the nodes and the `maxEdges` strongest edges.
    public func dot(title: String, maxEdges: Int = 2_000) -> String {
        var lines = ["digraph circuit {", "  label=\"\(title)\";", "  rankdir=BT;", "  node [shape=box, fontsize=10];"]
        for n in nodes { lines.append("  \"\(Self.id(n.location, n.index))\";") }
        for e in edges.sorted(by: { abs($0.weight) > abs($1.weight) }).prefix(maxEdges) {
            let style = e.kind == "residual" ? "dashed" : "solid"
            lines.append("  \"\(e.from)\" -> \"\(e.to)\" [label=\"\(e.kind) \(String(format: "%.2f", e.weight))\", style=\(style), "
                    + "fontsize=8];")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
