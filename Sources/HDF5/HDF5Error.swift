// One error type for everything HDF5-related: what we were doing, to which file, and
// HDF5's own explanation from its error stack.

import CHDF5
import Support

public struct HDF5Error: UserFacingError, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

public enum HDF5Library {
    /// Opens the library once and turns off its automatic error printing: failures are
    /// reported as `HDF5Error`s instead.
    static let ready: Bool = {
        H5open()
        sb_H5_silence_errors()
        return true
    }()

    /// Opens the library and silences automatic error printing on the calling thread too: the
    /// thread-safe build keeps that switch (with the error stack) per thread.
    /// Silences HDF5's own error printing on the calling thread (the setting is per thread);
    /// call it on any thread that will use HDF5 before its first call.
    public static func prepareThread() {
        _ = ready
        sb_H5_silence_errors()
    }

    /// HDF5's explanation of the error it just raised.
    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 600)
        sb_H5_error_message(&buffer, buffer.count)
        let text = String(cString: buffer)
        // A failed system call's description spans lines (a time stamp, descriptors, buffer
        // addresses); what the reader needs is the call and the system's reason.
        if let r = text.range(of: "error message = '"), let end = text[r.upperBound...].firstIndex(of: "'") {
            let call = text[..<r.lowerBound].split(separator: ":").prefix(2).joined(separator: ":")
            return "\(call): \(text[r.upperBound..<end])"
        }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Throws when an HDF5 call returned a negative id or status.
@discardableResult
func check<T: BinaryInteger>(_ result: T, _ what: @autoclosure () -> String, path: String) throws -> T {
    if result < 0 {
        throw HDF5Error(path: path, message: "\(what()): \(HDF5Library.lastError())")
    }
    return result
}
