// The Support module's one error type: a file or folder that could not be read, written,
// locked or moved into place. Printed as one line naming the path.

public struct FileError: UserFacingError, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
