// The readable summary of a demo run for stdout.

import Foundation
import Model
import Support

public enum DemoSummary {
    public static func text(_ r: JSONValue) -> String {
        func f(_ v: JSONValue?, _ d: Int = 3) -> String {
            guard let x = v?.numberValue else { return "–" }
            return String(format: "%.\(d)f", x)
        }
        var out: [String] = ["SparseBridge demo (\(f(r["seconds"], 0)) s)", "", "Task accuracy      dense   sparse"]
        if case .array(let rows)? = r["tasks"] {
            for row in rows { out.append(String(format: "%-18@ %@   %@", (row["task"]?.stringValue ?? "") as NSString, f(row["dense_accuracy"]), f(row["sparse_accuracy"]))) }
        }
        out.append("")
        out.append("Bridges: site, NMSE d→s / s→d, CE recovered d→s / s→d")
        if case .array(let nmse)? = r["bridge_nmse"], case .array(let splice)? = r["splice"] {
            for n in nmse {
                let site = n["site"]?.stringValue ?? ""
                let rec = splice.filter { $0["site"]?.stringValue == site }.map { f($0["ce_recovered"]) }
                out.append("  \(site.padding(toLength: 26, withPad: " ", startingAt: 0)) \(f(n["d2s_nmse"])) / \(f(n["s2d_nmse"]))   \(rec.joined(separator: " / "))")
            }
        }
        out.append("")
        out.append("Steering quote type at \(r["steering"]?["site"]?.stringValue ?? "?") channel \(f(r["steering"]?["channel"], 0)): flip rate at α = 1 \(f(r["steering"]?["flip_rate_at_1"])) (random control \(f(r["steering"]?["control_flip_rate_at_1"])))")
        if case .array(let curve)? = r["steering"]?["curve"] {
            out.append("  α          " + curve.map { f($0["alpha"], 1).padding(toLength: 6, withPad: " ", startingAt: 0) }.joined())
            out.append("  flip rate  " + curve.map { f($0["flip_rate"], 2).padding(toLength: 6, withPad: " ", startingAt: 0) }.joined())
            out.append("  control    " + curve.map { f($0["control_flip_rate"], 2).padding(toLength: 6, withPad: " ", startingAt: 0) }.joined())
        }
        out.append("DePass of the steered run: logit difference \(f(r["depass"]?["logit_diff"])), steering component \(f(r["depass"]?["steering_component"])), max relative error \(f(r["depass"]?["max_relative_error"], 7))")
        if case .object(let circuits)? = r["circuits"], !circuits.isEmpty {
            out.append("Circuits: " + circuits.keys.sorted().map { "\($0) \(f(circuits[$0]!["nodes"], 0)) nodes, \(f(circuits[$0]!["edges"], 0)) edges" }.joined(separator: "; "))
        }
        let signal = r["dilution"]
        out.append("Dilution: depth signal at \(signal?["site"]?.stringValue ?? "?") over \(signal?["channels"]?.arrayValue?.count ?? 0) sparse channel(s);"
                   + " the sparse mechanism flips at signal \(f(signal?["sparse"]?["threshold"]))")
        for m in ["sparse", "dense"] {
            let d = r["dilution"]?[m]
            out.append("Dilution, \(m): predicted flip at length \(f(d?["predicted_flip_length"], 1)) (from the \(d?["predicted_from"]?.stringValue ?? "–")),"
                       + " measured \(f(d?["measured_flip_length"], 0)), distractor accuracy \(f(d?["distractor_accuracy"]))")
        }
        return out.joined(separator: "\n")
    }
}
