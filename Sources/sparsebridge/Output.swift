// Shared output helpers: error classification, aligned tables, JSON printing.

import ArgumentParser
import Bridges
import Cluster
import DePass
import Reports
import Steering
import Text
import Foundation
import HDF5
import Tasks
import Training
import Model
import Support

/// Errors that carry their own one-line message (ArgumentParser's own are printed its way).
func isOurError(_ error: Error) -> Bool {
    error is ModelError || error is TextError || error is FileError || error is HDF5Error || error is TaskError || error is TrainingError || error is BridgeError || error is DePassError || error is SteeringError || error is DemoError || error is ClusterError
}

/// A plain text table with right-aligned numbers.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        let widths = headers.indices.map { i in max(headers[i].count, rows.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return Double(cell) != nil ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
            .joined(separator: "\n")
    }
}

func printJSON(_ value: JSONValue) {
    print(value.jsonString)
}

func fmt(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
