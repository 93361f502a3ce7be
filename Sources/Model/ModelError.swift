// The Model module's one error type. Each case prints as one line that names
// the file or argument at fault.

import Support

public enum ModelError: UserFacingError, Equatable {
    case badConfig(String)
    case badFile(path: String, String)
    case unknownHook(String, suggestions: [String])
    case badInput(String)

    public var description: String {
        switch self {
        case .badConfig(let m): return "bad config: \(m)"
        case .badFile(let path, let m): return "\(path): \(m)"
        case .unknownHook(let name, let suggestions):
            let hint = suggestions.isEmpty ? "" : "; nearest valid names: " + suggestions.joined(separator: ", ")
            return "unknown hook \"\(name)\"\(hint)"
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
