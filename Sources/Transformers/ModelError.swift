// The Transformers module's one error type. Each case prints as one line that names
// the file or argument at fault.

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case badConfig(String)
    case badFile(path: String, String)
    case unknownHook(String, suggestions: [String])
    case badToken(String)
    /// Text the character tokenizer cannot encode; `index` counts characters (= bytes, since all before are ASCII).
    case nonASCII(codepoint: UInt32, index: Int, line: Int, column: Int)
    case badInput(String)

    public var description: String {
        switch self {
        case .badConfig(let m): return "bad config: \(m)"
        case .badFile(let path, let m): return "\(path): \(m)"
        case .unknownHook(let name, let suggestions):
            let hint = suggestions.isEmpty ? "" : "; nearest valid names: " + suggestions.joined(separator: ", ")
            return "unknown hook \"\(name)\"\(hint)"
        case .badToken(let m): return m
        case .nonASCII(let cp, let index, let line, let column):
            return "non-ASCII character U+\(String(cp, radix: 16, uppercase: true)) at position \(index) (line \(line), column \(column)); the character tokenizer takes ASCII only"
        case .badInput(let m): return m
        }
    }

    /// The same error, attributed to a file.
    func `in`(_ path: String) -> ModelError {
        switch self {
        case .badConfig(let m): return .badFile(path: path, "bad config: \(m)")
        default: return self
        }
    }
}
