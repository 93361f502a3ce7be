// One protocol for every error a user can cause (a missing file, a wrong format, a shape
// mismatch, a bad request). Each library module has one error type that conforms, and the CLI
// prints any conforming error as its one line; it needs no list of the library's types.
//
// Library errors do not name command-line flags: where a message names a request parameter,
// it is a `ParameterMessage`, and each caller renders the parameter its own way (the library
// by field name, `seq_len`; the CLI by flag, `--seq-len`).

public protocol UserFacingError: Error, CustomStringConvertible {
    /// The one line, with request parameters named by `name` (given the library's name).
    func message(naming name: (String) -> String) -> String
}

extension UserFacingError {
    /// Errors that name no parameter print their description whoever asks.
    public func message(naming name: (String) -> String) -> String { description }
}

/// Text that names request parameters, written with `\(parameter: "seq_len")`.
public struct ParameterMessage: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    enum Piece: Sendable, Equatable {
        case text(String)
        case parameter(String)
    }

    var pieces: [Piece]

    public init(stringLiteral value: String) { pieces = [.text(value)] }
    public init(_ text: String) { pieces = [.text(text)] }
    public init(stringInterpolation: Interpolation) { pieces = stringInterpolation.pieces }

    public struct Interpolation: StringInterpolationProtocol {
        var pieces: [Piece] = []
        public init(literalCapacity: Int, interpolationCount: Int) {}
        public mutating func appendLiteral(_ literal: String) { pieces.append(.text(literal)) }
        public mutating func appendInterpolation<T>(_ value: T) { pieces.append(.text("\(value)")) }
        /// A request parameter, by the library's name for it (snake_case).
        public mutating func appendInterpolation(parameter name: String) { pieces.append(.parameter(name)) }
    }

    /// The text with each parameter named by `name`.
    public func rendered(naming name: (String) -> String) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let t): return t
            case .parameter(let p): return name(p)
            }
        }.joined()
    }

    public var description: String { rendered { $0 } }

    /// One message after the other (for long messages written over several lines).
    public static func + (a: ParameterMessage, b: ParameterMessage) -> ParameterMessage {
        var joined = a
        joined.pieces += b.pieces
        return joined
    }
}
