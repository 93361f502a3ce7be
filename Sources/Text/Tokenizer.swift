// Tokenizers turn text into token ids. The default is one token per ASCII character
// (vocab 128); imported models bring their own. A model file names its tokenizer in
// its `tokenizer` attribute (JSON).

import Support

public protocol Tokenizer: Sendable {
    var vocabSize: Int { get }
    /// Throws `TextError.badToken` naming the position of text it cannot encode.
    func encode(_ text: String) throws -> [Int32]
    func decode(_ tokens: [Int32]) -> String
    /// The JSON description stored in model files.
    var json: JSONValue { get }
    /// Files the tokenizer is built from (BPE: `encoder.json`, `vocab.bpe`), stored in model
    /// files beside the JSON so that a model is self-contained.
    var files: [(name: String, bytes: [UInt8])] { get }
}

extension Tokenizer {
    public var files: [(name: String, bytes: [UInt8])] { [] }
}

/// One token per ASCII character: token id = byte value.
public struct CharTokenizer: Tokenizer {
    public init() {}
    public var vocabSize: Int { 128 }
    public var json: JSONValue { .object(["kind": .string("char"), "vocab": .number(128)]) }

    public func encode(_ text: String) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count)
        var line = 1, column = 1
        for (i, scalar) in text.unicodeScalars.enumerated() {
            guard scalar.value < 128 else {
                throw TextError.nonASCII(codepoint: scalar.value, index: i, line: line, column: column)
            }
            out.append(Int32(scalar.value))
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return out
    }

    public func decode(_ tokens: [Int32]) -> String {
        String(decoding: tokens.map { UInt8(clamping: $0) }, as: UTF8.self)
    }
}

/// A model without a text tokenizer (e.g. an import that came without one): token ids only.
public struct IDsOnlyTokenizer: Tokenizer {
    public let vocabSize: Int
    public init(vocabSize: Int) { self.vocabSize = vocabSize }
    public var json: JSONValue { .object(["kind": .string("ids"), "vocab": .number(Double(vocabSize))]) }
    public func encode(_ text: String) throws -> [Int32] {
        throw TextError.badToken("this model has no text tokenizer (it was imported without one); pass token ids")
    }
    public func decode(_ tokens: [Int32]) -> String { tokens.map { "<\($0)>" }.joined() }
}

public enum Tokenizers {
    /// The tokenizer a model file describes; `file(name)` reads one of the tokenizer's stored files.
    public static func from(json: JSONValue, source: String,
                            file: (String) throws -> [UInt8] = { throw TextError.badInput("no tokenizer file "
                                    + "\($0)") }) throws -> Tokenizer {
        switch json["kind"]?.stringValue {
        case "char": return CharTokenizer()
        case "ids": return IDsOnlyTokenizer(vocabSize: Int(json["vocab"]?.numberValue ?? 0))
        case "bpe": return try BPETokenizer(json: json, source: source, file: file)
        case let other:
            throw TextError.badFile(path: source, "unknown tokenizer kind \(other.map { "\"\($0)\"" } ?? "(missing)")")
        }
    }
}
