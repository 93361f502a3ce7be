// The tokenizers. The whole input is text for the character tokenizer and for the BPE
// fixture (tinypython and GPT-2 patterns): byte-level BPE must decode what it encoded to
// the same text. The input split at its first two zero bytes is also a tokenizer
// description as a model file stores it: the `tokenizer` attribute's JSON, encoder.json
// and vocab.bpe (Tokenizers.from, as ModelFile.load calls it).

import Foundation
import FuzzSupport
import Model
import Support
import Text

let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../Tests/fixtures/bpe").standardized.path
let fixtureFiles: [String: [UInt8]] = Dictionary(uniqueKeysWithValues: ["encoder.json", "vocab.bpe"].map { name in
    guard let bytes = FileManager.default.contents(atPath: fixture + "/" + name) else { fatalError("cannot read \(fixture)/\(name)") }
    return (name, [UInt8](bytes))
})
let bpe: [BPETokenizer] = [BPETokenizer.tinypythonPattern, BPETokenizer.gpt2Pattern].map { pattern in
    do {
        return try BPETokenizer(name: "fixture", encoderJSON: fixtureFiles["encoder.json"]!, vocabBPE: fixtureFiles["vocab.bpe"]!,
                                pattern: pattern, source: fixture)
    } catch { fatalError("the BPE fixture does not load: \(error)") }
}

func fuzz(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    let char = CharTokenizer()
    if let ids = try? char.encode(text) {
        guard char.decode(ids) == text else { fatalError("character tokenizer does not round-trip") }
    }
    for tokenizer in bpe {
        do {
            let ids = try tokenizer.encode(text)
            guard ids.allSatisfy({ $0 >= 0 && Int($0) < tokenizer.vocabSize }) else { fatalError("BPE id outside the vocabulary") }
            guard tokenizer.decode(ids) == text else { fatalError("BPE does not round-trip \(Array(text.utf8))") }
        } catch {
            fatalError("BPE refused text: \(error)")
        }
    }

    let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3 else { return 0 }
    let source = "model.h5"
    do {
        let json = try JSONValue.parse(String(decoding: parts[0], as: UTF8.self))
        let files = ["encoder.json": [UInt8](parts[1]), "vocab.bpe": [UInt8](parts[2])]
        let tokenizer = try Tokenizers.from(json: json, source: source) { name in
            guard let f = files[name] else { throw TextError.badFile(path: source, "no tokenizer file \(name)") }
            return f
        }
        _ = tokenizer.decode(try tokenizer.encode("def f(x):\n    return x + 1\n"))
    } catch let error as TextError {
        if case .badToken = error { return 0 }   // an ids-only tokenizer refuses text, by design
        requireCleanError(error, naming: source)
    } catch {
        return 0   // the attribute is not JSON: ModelFile.load reports that itself
    }
    return 0
}

runFuzzer(fuzz)
