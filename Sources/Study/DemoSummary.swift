// The readable summary of a demo run for stdout.

import Foundation

public enum DemoSummary {
    public static func text(_ r: StudyResults) -> String {
        func f(_ v: Double?, _ d: Int = 3) -> String {
            guard let x = v else { return "–" }
            return String(format: "%.\(d)f", x)
        }
        func f(_ v: Int?, _ d: Int = 3) -> String { f(v.map(Double.init), d) }
        var out: [String] = ["SparseBridge demo (\(f(r.seconds, 0)) s)", "", "Task accuracy      dense   sparse"]
        for row in r.tasks {
            out.append(String(format: "%-18@ %@   %@", row.task as NSString, f(row.denseAccuracy), f(row.sparseAccuracy)))
        }
        out.append("")
        out.append("Bridges: site, NMSE d→s / s→d, CE recovered d→s / s→d")
        for n in r.bridgeNMSE {
            let rec = r.splice.filter { $0.site == n.site }.map { f($0.ceRecovered) }
            out.append("  \(n.site.padding(toLength: 26, withPad: " ", startingAt: 0)) \(f(n.d2sNMSE)) / \(f(n.s2dNMSE))   "
                    + "\(rec.joined(separator: " / "))")
        }
        out.append("")
        let s = r.steering
        out.append("Steering quote type at \(s.site) channel \(f(s.channel, 0)): flip rate at α = 1 \(f(s.flipRateAt1)) (random "
                + "control \(f(s.controlFlipRateAt1)))")
        if !s.curve.isEmpty {
            func row(_ values: [Double], _ d: Int) -> String { values.map { f($0, d).padding(toLength: 6, withPad: " ",
                                                                                             startingAt: 0) }.joined() }
            out.append("  α          " + row(s.curve.map(\.alpha), 1))
            out.append("  flip rate  " + row(s.curve.map(\.flipRate), 2))
            out.append("  control    " + row(s.curve.map(\.controlFlipRate), 2))
        }
        let d = r.depass
        out.append("DePass of the steered run: logit difference \(f(d.logitDiff)), steering component \(f(d.steeringComponent)), "
                + "max relative error \(f(d.maxRelativeError, 7))")
        if !r.circuits.isEmpty {
            out.append("Circuits: " + r.circuits.keys.sorted().map { "\($0) \(f(r.circuits[$0]!.nodes, 0)) nodes, "
                    + "\(f(r.circuits[$0]!.edges, 0)) edges" }.joined(separator: "; "))
        }
        out.append("Dilution: depth signal at \(r.dilution.site) over \(r.dilution.channels.count) sparse channel(s);"
                   + " the sparse mechanism flips at signal \(f(r.dilution.sparse.threshold))")
        for (m, dm) in [("sparse", r.dilution.sparse), ("dense", r.dilution.dense)] {
            out.append("Dilution, \(m): predicted flip at length \(f(dm.predictedFlipLength, 1)) (from the \(dm.predictedFrom)),"
                       + " measured \(f(dm.measuredFlipLength, 0)), distractor accuracy \(f(dm.distractorAccuracy))")
        }
        return out.joined(separator: "\n")
    }
}
