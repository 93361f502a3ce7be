// Byte-level BPE in the GPT-2 "data gym" format: `vocab.bpe` lists merges in priority order
// and `encoder.json` maps each token (bytes spelled through GPT-2's byte-to-unicode table)
// to its id. Ranks are built the way tiktoken builds them (`data_gym_to_mergeable_bpe_ranks`):
// the 256 single bytes first, in the table's order, then one rank per merge; encoder.json
// must agree with them. Encoding splits text with the pre-tokenisation regex, then merges
// each piece's bytes, always the adjacent pair whose concatenation has the lowest rank
// (leftmost on ties), as tiktoken does. Special tokens are never produced from text
// (`encode_ordinary`); they decode to their names.

import Foundation
import Support

public struct BPETokenizer: Tokenizer {
    /// GPT-2's pre-tokenisation pattern (openai/gpt-2 encoder.py).
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// circuit_sparsity's `tinypython_2k` pattern (circuit_sparsity/tiktoken_ext/tinypython.py).
    public static let tinypythonPattern = #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    public let name: String
    public let pattern: String
    public let specialTokens: [String: Int]
    public let vocabSize: Int
    private let ranks: [[UInt8]: Int]
    private let tokenBytes: [Int: [UInt8]]
    private let splitter: Splitter
    private let encoderJSON: [UInt8], vocabBPE: [UInt8]

    /// Swift's Regex is a value safe to share; the box only lets the struct stay Sendable.
    final class Splitter: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
        init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
    }

    /// Builds the tokenizer from the two files' bytes. `source` names them in errors.
    public init(name: String, encoderJSON: [UInt8], vocabBPE: [UInt8], pattern: String,
                specialTokens: [String: Int] = [:], source: String) throws {
        func bad(_ m: String) -> TextError { .badFile(path: source, m) }
        // GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves, the
        // rest (controls, space, NBSP, soft hyphen) for U+0100 upward in byte order.
        var rankToByte = (0..<256).filter { (33...126).contains($0) || (161...172).contains($0) || (174...255).contains($0) }.map(UInt8.init)
        var charToByte = Dictionary(uniqueKeysWithValues: rankToByte.map { (Unicode.Scalar($0), $0) })
        var extra: UInt32 = 256
        for b in 0..<256 where !charToByte.values.contains(UInt8(b)) {
            rankToByte.append(UInt8(b))
            charToByte[Unicode.Scalar(extra)!] = UInt8(b)
            extra += 1
        }
        func decodeDataGym(_ s: Substring) throws -> [UInt8] {
            try s.unicodeScalars.map { c in
                guard let b = charToByte[c] else {
                    throw bad("vocab.bpe/encoder.json token \"\(s)\" holds U+\(String(c.value, radix: 16)), not in GPT-2's byte table")
                }
                return b
            }
        }

        var ranks: [[UInt8]: Int] = [:]
        for (i, b) in rankToByte.enumerated() { ranks[[b]] = i }
        // vocab.bpe: a version line, then "first second" per merge; the text after the last newline is dropped.
        let lines = String(decoding: vocabBPE, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0].hasPrefix("#version") else { throw bad("vocab.bpe does not start with a #version line") }
        var next = ranks.count
        for (number, line) in lines.dropFirst().dropLast().enumerated() {
            let parts = line.split(whereSeparator: { $0.isWhitespace })
            guard parts.count == 2 else { throw bad("vocab.bpe line \(number + 2) is not a pair of tokens") }
            ranks[try decodeDataGym(parts[0]) + decodeDataGym(parts[1])] = next
            next += 1
        }

        guard let object = try? JSONSerialization.jsonObject(with: Data(encoderJSON)), let encoder = object as? [String: Any] else {
            throw bad("encoder.json is not a JSON object")
        }
        var special = specialTokens
        var fromEncoder: [[UInt8]: Int] = [:]
        for (token, value) in encoder {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else { throw bad("encoder.json: token \"\(token)\" has no integer id") }
            // A special token's id in encoder.json wins over a default for the tokenizer's name.
            if token == "<|endoftext|>" || token == "<|startoftext|>" { special[token] = id; continue }
            fromEncoder[try decodeDataGym(Substring(token))] = id
        }
        // tiktoken's own check: ids must be the merge ranks, or merge priority and ids disagree.
        if fromEncoder != ranks {
            let wrong = ranks.first { fromEncoder[$0.key] != $0.value }.map { String(decoding: $0.key, as: UTF8.self) }
            throw bad("encoder.json does not match vocab.bpe (\(fromEncoder.count) tokens against \(ranks.count) "
                    + "ranks" + (wrong.map { "; first disagreement at \"\($0)\"" } ?? "") + ")")
        }
        let regex: Regex<AnyRegexOutput>
        do { regex = try Regex(pattern).matchingSemantics(.unicodeScalar) } catch {
            throw bad("the pre-tokenisation pattern does not compile: \(error)")
        }
        var tokenBytes: [Int: [UInt8]] = [:]
        for (bytes, id) in ranks { tokenBytes[id] = bytes }
        for (text, id) in special { tokenBytes[id] = Array(text.utf8) }

        self.name = name
        self.pattern = pattern
        self.specialTokens = special
        self.ranks = ranks
        self.tokenBytes = tokenBytes
        self.vocabSize = (tokenBytes.keys.max() ?? -1) + 1
        self.splitter = Splitter(regex)
        self.encoderJSON = encoderJSON
        self.vocabBPE = vocabBPE
    }

    /// The tokenizer a model file describes (kind "bpe"), from its stored files.
    init(json: JSONValue, source: String, file: (String) throws -> [UInt8]) throws {
        guard let pattern = json["pattern"]?.stringValue else { throw TextError.badFile(path: source, "bpe tokenizer has no pattern") }
        var special: [String: Int] = [:]
        if case .object(let s)? = json["special_tokens"] {
            for (k, v) in s { special[k] = Int(v.numberValue ?? -1) }
        }
        try self.init(name: json["name"]?.stringValue ?? "bpe", encoderJSON: try file("encoder.json"),
                      vocabBPE: try file("vocab.bpe"), pattern: pattern, specialTokens: special, source: source)
    }

    public var json: JSONValue {
        .object(["kind": .string("bpe"), "name": .string(name), "pattern": .string(pattern),
                 "special_tokens": .object(specialTokens.mapValues { .number(Double($0)) }),
                 "vocab": .number(Double(vocabSize)), "files": .array([.string("encoder.json"), .string("vocab.bpe")])])
    }

    public var files: [(name: String, bytes: [UInt8])] { [("encoder.json", encoderJSON), ("vocab.bpe", vocabBPE)] }

    public func encode(_ text: String) throws -> [Int32] {
        var out: [Int32] = []
        for match in text.matches(of: splitter.regex) {
            let piece = Array(text[match.range].utf8)
            if let id = ranks[piece] { out.append(Int32(id)) } else { merge(piece, into: &out) }
        }
        return out
    }

    /// Byte-pair merging of one piece: `starts` are the token boundaries, fused pair by pair.
    private func merge(_ piece: [UInt8], into out: inout [Int32]) {
        var starts = Array(0...piece.count)
        func rank(_ i: Int) -> Int? { i + 2 < starts.count ? ranks[Array(piece[starts[i]..<starts[i + 2]])] : nil }
        var pairRanks = (0..<starts.count).map(rank)
        while true {
            var best: (rank: Int, at: Int)?
            for (i, r) in pairRanks.enumerated() {
                if let r, r < best?.rank ?? Int.max { best = (r, i) }
            }
            guard let (_, i) = best else { break }
            starts.remove(at: i + 1)
            pairRanks.remove(at: i + 1)
            pairRanks[i] = rank(i)
            if i > 0 { pairRanks[i - 1] = rank(i - 1) }
        }
        for i in 0..<(starts.count - 1) { out.append(Int32(ranks[Array(piece[starts[i]..<starts[i + 1]])]!)) }
    }

    public func decode(_ tokens: [Int32]) -> String {
        var bytes: [UInt8] = []
        for t in tokens { bytes += tokenBytes[Int(t)] ?? Array("\u{FFFD}".utf8) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
