// The synthetic corpus: the code generator's programs as an endless token stream (one
// token per ASCII character), the default corpus of every command.

/// The generator as an endless token stream (one token per ASCII character).
public struct SyntheticCorpus: TokenStream {
    public let seed: UInt64
    private var generator: CodeGenerator
    private var buffer: [Int32] = []
    private var position = 0

    public init(seed: UInt64) {
        self.seed = seed
        generator = CodeGenerator(seed: seed)
    }

    public var description: String { "synthetic:python:seed=\(seed)" }

    public mutating func next(_ length: Int) throws -> [Int32]? {
        while buffer.count - position < length {
            if position > 0 { buffer.removeFirst(position); position = 0 }
            buffer += generator.file().utf8.map { Int32($0) }
        }
        defer { position += length }
        return Array(buffer[position..<(position + length)])
    }
}
