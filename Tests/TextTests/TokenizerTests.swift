// Tokenizers: the character tokenizer's errors, tokenizer descriptions, and the GPT-2-style
// BPE tokenizer against tiktoken on the committed fixture files.

import Foundation
import Testing
import Model
import Text

/// The committed fixtures (Tests/fixtures; each folder holds the script that made it).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").path
    static func path(_ relative: String) -> String { root + "/" + relative }
}

@Suite("CharTokenizer")
struct CharTokenizerTests {
    @Test("printable ASCII, tabs and newlines round-trip as their byte values")
    func roundTrip() throws {
        let text = String((32...126).map { Character(Unicode.Scalar(UInt8($0))) }) + "\n\tdef f(x):\n    return x\n"
        let tokenizer = CharTokenizer()
        let tokens = try tokenizer.encode(text)
        #expect(tokens == text.utf8.map { Int32($0) })
        #expect(tokenizer.decode(tokens) == text)
        #expect(tokenizer.vocabSize == 128)
        #expect(try tokenizer.encode("") == [])
        #expect(try tokenizer.encode("\u{7F}\u{0}") == [127, 0])
    }

    @Test("a non-ASCII character names its position, line and column")
    func nonASCII() {
        let error = #expect(throws: TextError.self) { _ = try CharTokenizer().encode("ab\ncé") }
        #expect(error == .nonASCII(codepoint: 0xE9, index: 4, line: 2, column: 2))
        #expect(error?.description.contains("U+E9") == true)
        #expect(error?.description.contains("line 2, column 2") == true)
        let first = #expect(throws: TextError.self) { _ = try CharTokenizer().encode("λx") }
        #expect(first == .nonASCII(codepoint: 0x3BB, index: 0, line: 1, column: 1))
        let later = #expect(throws: TextError.self) { _ = try CharTokenizer().encode("a\n\nxyz—") }
        #expect(later == .nonASCII(codepoint: 0x2014, index: 6, line: 3, column: 4))
    }

    @Test("tokenizer descriptions round-trip through JSON")
    func tokenizerJSON() throws {
        let char = try Tokenizers.from(json: CharTokenizer().json, source: "m.h5")
        #expect(char is CharTokenizer)
        let ids = try Tokenizers.from(json: IDsOnlyTokenizer(vocabSize: 77).json, source: "m.h5")
        #expect(ids.vocabSize == 77)
        #expect(throws: TextError.self) { _ = try ids.encode("text") }
        #expect(ids.decode([1, 22]) == "<1><22>")
        let error = #expect(throws: TextError.self) { _ = try Tokenizers.from(json: .object(["kind": .string("bpe9")]), source: "m.h5") }
        #expect(error?.description.contains("bpe9") == true)
    }
}

@Suite("BPE tokenizer")
struct BPETokenizerTests {
    static func fixture(pattern: String = BPETokenizer.tinypythonPattern) throws -> BPETokenizer {
        let encoder = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("bpe/encoder.json"))))
        let merges = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("bpe/vocab.bpe"))))
        return try BPETokenizer(name: "tinypython_2k", encoderJSON: encoder, vocabBPE: merges, pattern: pattern,
                                specialTokens: ["<|endoftext|>": 2047], source: "fixture")
    }

    // Expected ids from tiktoken 0.14 (`encode_ordinary`) on the same files and pattern.
    @Test("encodes like tiktoken", arguments: [
        ("values = [12345, 67]\r\n", [335, 257, 258, 372, 18, 423, 11, 220, 420, 60, 201, 198]),
        ("Größe 🙂 日本語", [38, 530, 114, 127, 543, 352, 247, 224, 220, 162, 245, 98, 162, 250, 105, 164, 103, 252]),
        ("    return x\n\n", [259, 395, 422, 198, 198]),
    ])
    func matchesTiktoken(_ text: String, _ ids: [Int]) throws {
        let tok = try Self.fixture()
        #expect(try tok.encode(text).map(Int.init) == ids)
        #expect(tok.decode(try tok.encode(text)) == text)
    }

    @Test("encoder.json's special token id wins; it decodes to its name; the vocabulary counts it")
    func special() throws {
        let tok = try Self.fixture()
        #expect(tok.specialTokens == ["<|endoftext|>": 656])
        #expect(tok.vocabSize == 657)
        #expect(tok.decode([656] + (try tok.encode(" x"))) == "<|endoftext|> x")
        #expect(tok.files.map(\.name) == ["encoder.json", "vocab.bpe"])
    }

    @Test("the tokenizer and its files survive a model file round trip")
    func modelFile() throws {
        let dir = TemporaryDirectory("bpe")
        let tok = try Self.fixture()
        let model = try Transformer(config: ModelConfig(nLayer: 1, dModel: 8, nHead: 2, dMLP: 16, nCtx: 8, vocab: 657), seed: 1)
        try ModelFile.save(model, tokenizer: tok, provenance: .null, to: dir.file("m.h5"))
        let back = try ModelFile.load(dir.file("m.h5")).tokenizer
        #expect(back.json == tok.json)
        let text = "for k in {'αβ': 1}:\n\tprint(k)"
        #expect(try back.encode(text) == tok.encode(text))
    }

    @Test("merges that disagree with encoder.json are refused")
    func mismatch() throws {
        let encoder = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("bpe/encoder.json"))))
        var merges = String(decoding: try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("bpe/vocab.bpe"))), as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        merges.swapAt(1, 2)  // two merges exchange ranks
        let error = #expect(throws: TextError.self) {
            _ = try BPETokenizer(name: "x", encoderJSON: encoder, vocabBPE: Array(merges.joined(separator: "\n").utf8),
                                 pattern: BPETokenizer.gpt2Pattern, source: "enc.json")
        }
        #expect(error?.description.hasPrefix("enc.json: encoder.json does not match vocab.bpe") == true)
    }
}
