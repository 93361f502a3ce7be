// The Text module's one error type: text a tokenizer cannot encode, and corpus or
// tokenizer files that cannot be read. Each case prints as one line naming the file or position.

import Support

public enum TextError: UserFacingError, Equatable {
    case badFile(path: String, String)
    case badToken(String)
    /// Text the character tokenizer cannot encode; `index` counts characters (= bytes, since all before are ASCII).
    case nonASCII(codepoint: UInt32, index: Int, line: Int, column: Int)
    case badInput(String)

    public var description: String {
        switch self {
        case .badFile(let path, let m): return "\(path): \(m)"
        case .badToken(let m): return m
        case .nonASCII(let cp, let index, let line, let column):
            return "non-ASCII character U+\(String(cp, radix: 16, uppercase: true)) at position \(index) (line \(line), column "
                    + "\(column)); the character tokenizer takes ASCII only"
        case .badInput(let m): return m
        }
    }
}
