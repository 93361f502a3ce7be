// Shared output helpers: the CLI's own error, flag names for library parameters, aligned
// tables, JSON printing.

import Foundation
import Support

/// A refusal of the command itself (an empty --text, a mask that reached no target): the
/// library's errors are each module's own type; this is the CLI's.
struct CommandError: UserFacingError {
    let description: String
    init(_ message: String) { description = message }
    init(file: String, _ message: String) { description = "\(file): \(message)" }
}

/// How the CLI names a library parameter: by the flag that carries it (`seq_len` → `--seq-len`).
func flag(_ parameter: String) -> String { "--" + parameter.replacingOccurrences(of: "_", with: "-") }

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
