// The Circuits module's one error type: circuit files that cannot be used, and studies
// asked for in the wrong order or against a bridge that cannot serve them.

import Support

public enum CircuitError: UserFacingError, Equatable {
    case badFile(path: String, String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .badFile(let path, let m): return "\(path): \(m)"
        case .mismatch(let m): return m
        }
    }
}
