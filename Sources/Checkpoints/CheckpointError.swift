// The Checkpoints module's one error type: checkpoint files (safetensors, PyTorch zip
// archives and pickles, circuit_sparsity folders) that cannot be read or written. Each case
// prints as one line naming the file; parameters (a layout to try, a config to pass) are
// named the caller's way (UserFacingError.swift).

import Support

public enum CheckpointError: UserFacingError, Equatable {
    case badFile(path: String, ParameterMessage)
    case badInput(String)

    public func message(naming name: (String) -> String) -> String {
        switch self {
        case .badFile(let path, let m): return "\(path): \(m.rendered(naming: name))"
        case .badInput(let m): return m
        }
    }

    public var description: String { message { $0 } }
}
