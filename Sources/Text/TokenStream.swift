// What capture, fitting and training read: token sequences from a corpus. Both corpora
// (a text file or folder, TextCorpus.swift; the synthetic code generator,
// SyntheticCorpus.swift) are token streams.

/// A source of token sequences for capture and fitting.
public protocol TokenStream {
    /// The next `length` tokens, or nil when the corpus is exhausted.
    mutating func next(_ length: Int) throws -> [Int32]?
    /// How to name this corpus in provenance attributes.
    var description: String { get }
}

extension TokenStream {
    /// Passes over `sequences` sequences of `length` tokens (to reach one process's share of
    /// a corpus: streams have no random access, so the tokens before it are read and dropped).
    public mutating func skip(sequences: Int, length: Int) throws {
        for done in 0..<sequences where try next(length) == nil {
            throw TextError.badInput("the corpus \(description) ended after \(done) sequences of \(length) tokens, before this "
                    + "process's share")
        }
    }
}
