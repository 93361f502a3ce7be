// Activation capture: file contents against a direct forward pass, resume after an
// interruption, and corpus errors.

import Foundation
import Testing
import HDF5
import Tensors
import Model
import Support
import Text
import Bridges

/// A model saved to disk and loaded back, a corpus file, and a place for outputs.
struct CaptureFixture {
    let dir = TemporaryDirectory("bridges")
    let loaded: LoadedModel
    let modelSHA: String
    let corpusPath: String
    let text: String
    static let config = ModelConfig(nLayer: 2, dModel: 16, nHead: 4, dMLP: 32, nCtx: 16, activation: .gelu)

    init(corpusLines: Int = 40, seed: UInt64 = 1) throws {
        let model = try Transformer(config: Self.config, seed: seed)
        // O(1) random weights so that activations differ clearly between tokens.
        var rng = SeededRandom(seed: seed &+ 100)
        for p in model.weights.parameters where p.role != .gain {
            for i in 0..<p.tensor.count { p.tensor[i] = 0.3 * rng.nextNormal() }
        }
        let modelPath = dir.file("model.h5")
        try ModelFile.save(model, tokenizer: CharTokenizer(), provenance: .object(["recipe": .string("test")]), to: modelPath)
        loaded = try ModelFile.load(modelPath)
        modelSHA = try SHA256.hexDigest(ofFile: modelPath)
        text = (0..<corpusLines).map { "def f_\($0)(x): return x * \($0 % 7) + \"s\($0)\"\n" }.joined()
        corpusPath = dir.file("corpus.txt")
        try text.write(toFile: corpusPath, atomically: true, encoding: .utf8)
    }

    func corpus() throws -> TextCorpus { try TextCorpus(path: corpusPath, tokenizer: CharTokenizer()) }

    /// The corpus tokens, straight from the file's bytes (TextCorpus adds a newline after each file).
    var fileTokens: [Int32] { Array(text.utf8).map { Int32($0) } + [10] }
}

/// A token stream that fails after `limit` sequences, as an interrupted run would.
struct InterruptingStream: TokenStream {
    var inner: TextCorpus
    var remaining: Int
    let failure: Error
    mutating func next(_ length: Int) throws -> [Int32]? {
        if remaining == 0 { throw failure }
        remaining -= 1
        return try inner.next(length)
    }
    var description: String { inner.description }
}

struct Interrupted: Error {}

let captureSites: [HookPoint] = [.residPre(0), .pattern(0), .q(1), .mlpPost(0), .residMid(1), .residPost(1)]

/// What capture must write, computed by direct forward passes with capture hooks over the same batches.
func expectedSiteRows(_ model: Transformer, tokens: [Int32], seqLen t: Int, batch: Int,
                      sites: [HookPoint]) throws -> [HookPoint: [Float]] {
    let c = model.config
    var rows: [HookPoint: [Float]] = [:]
    let sequences = tokens.count / t
    var start = 0
    while start < sequences {
        let b = min(batch, sequences - start)
        let hooks = Hooks()
        for site in sites {
            hooks.add(site) { ctx in
                let a = ctx.activation
                if case .pattern = site {
                    // [B, n_head, T, T] → per query token: [B·T, n_head·T].
                    for bi in 0..<b { for i in 0..<t { for h in 0..<c.nHead { for j in 0..<t {
                        rows[site, default: []].append(a[((bi * c.nHead + h) * t + i) * t + j])
                    } } } }
                } else {
                    rows[site, default: []] += a.toArray()
                }
            }
        }
        try model.forward(tokens: Array(tokens[(start * t)..<((start + b) * t)]), batch: b, seqLen: t, hooks: hooks)
        start += b
    }
    return rows
}

/// Every dataset and the row counters of two activation files, compared exactly.
func expectSameActivations(_ a: String, _ b: String, sites: [HookPoint]) throws {
    let fa = try ActivationFile(path: a), fb = try ActivationFile(path: b)
    #expect(fa.rowsComplete == fb.rowsComplete)
    #expect(fa.sites == fb.sites)
    let sequences = fa.rowsComplete / fa.seqLen
    #expect(try fa.tokens(sequences: 0..<sequences) == fb.tokens(sequences: 0..<sequences))
    for site in sites {
        let da = try fa.site(site.name), db = try fb.site(site.name)
        #expect(da.shape == db.shape, "\(site)")
        let va = try da.read(as: Float.self), vb = try db.read(as: Float.self)
        #expect(va.map(\.bitPattern) == vb.map(\.bitPattern), "\(site)")
    }
}

@Suite("Capture")
struct CaptureTests {
    @Test("the file holds the corpus tokens and exactly what a forward pass with capture hooks sees")
    func captureContents() throws {
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        var corpus = try fx.corpus()
        // 75 tokens round up to 10 sequences of 8; batches of 3 leave a last batch of 1.
        let request = CaptureRequest(sites: captureSites, tokens: 75, seqLen: 8, batch: 3, outPath: out)
        #expect(request.sequences == 10)
        let summary = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus, request: request)
        #expect(summary.sequences == 10 && summary.tokens == 80 && summary.resumedFromRows == 0)
        #expect(summary.path == out)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fx.dir.path).sorted() == ["acts.h5", "corpus.txt", "model.h5"])

        let file = try ActivationFile(path: out)
        #expect(file.rowsComplete == 80)
        #expect(file.seqLen == 8)
        #expect(file.sites == captureSites.map(\.name))
        #expect(file.modelSHA256 == fx.modelSHA)
        #expect(file.modelConfig == CaptureFixture.config)
        #expect(file.corpus == "text:" + fx.corpusPath)
        #expect(try file.file.stringAttribute("model") == fx.loaded.path)

        let tokens = try file.tokens(sequences: 0..<10)
        #expect(tokens == Array(fx.fileTokens.prefix(80)))
        #expect(try file.tokens(sequences: 3..<5) == Array(fx.fileTokens[24..<40]))

        let expected = try expectedSiteRows(fx.loaded.model, tokens: tokens, seqLen: 8, batch: 3, sites: captureSites)
        let c = CaptureFixture.config
        for site in captureSites {
            let ds = try file.site(site.name)
            #expect(ds.shape == [80, site.rowWidth(config: c, seqLen: 8)], "\(site)")
            let stored = try ds.read(as: Float.self)
            let reference = try #require(expected[site])
            #expect(stored.count == reference.count)
            #expect(zip(stored, reference).allSatisfy { $0 == $1 }, "\(site)")
        }
        // Spot-check the pattern layout: each token's row holds n_head causal distributions.
        let pattern = try file.site(HookPoint.pattern(0).name).read(as: Float.self)
        for row in 0..<80 {
            let i = row % 8
            for h in 0..<c.nHead {
                let dist = pattern[(row * c.nHead + h) * 8..<((row * c.nHead + h) * 8 + 8)]
                #expect(abs(dist.reduce(0, +) - 1) < 1e-5)
                #expect(dist.dropFirst(i + 1).allSatisfy { $0 == 0 })
            }
        }
        // Rows of different sequences differ (the capture is not a constant).
        let resid = try file.site(HookPoint.residPost(1).name).read(as: Float.self)
        #expect(resid[0..<16] != resid[16..<32])
    }

    @Test("a compressed capture holds the same values")
    func gzipCapture() throws {
        let fx = try CaptureFixture()
        let plain = fx.dir.file("plain.h5"), zipped = fx.dir.file("zipped.h5")
        var c1 = try fx.corpus(), c2 = try fx.corpus()
        _ = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &c1,
                        request: CaptureRequest(sites: captureSites, tokens: 48, seqLen: 8, batch: 4, outPath: plain))
        _ = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &c2,
                        request: CaptureRequest(sites: captureSites, tokens: 48, seqLen: 8, batch: 4, gzip: 4, outPath: zipped))
        try expectSameActivations(plain, zipped, sites: captureSites)
    }

    /// Captures 12 sequences of 8 in batches of 2 without interruption.
    static func uninterrupted(_ fx: CaptureFixture) throws -> String {
        let path = fx.dir.file("whole.h5")
        var corpus = try fx.corpus()
        _ = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus,
                            request: CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, outPath: path))
        return path
    }

    @Test("an I/O failure of a fresh capture leaves neither the output nor a partial file")
    func ioErrorLeavesNothing() throws {
        // After a failed write HDF5's metadata may never reach the disk, so such a partial file
        // cannot be resumed (docs/reliability.md); a killed capture's can (test_resume.py).
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        let partial = fx.dir.file(".acts.h5.partial")
        let request = CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, outPath: out)

        // Fails while reading sequence 5, after two complete batches.
        var failing = InterruptingStream(inner: try fx.corpus(), remaining: 5,
                                         failure: HDF5Error(path: out, message: "simulated write failure"))
        let error = #expect(throws: HDF5Error.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &failing, request: request)
        }
        #expect(error?.message.contains("simulated write failure") == true)
        #expect(!fileExists(partial))
        #expect(!fileExists(out))
    }

    @Test("rows written past rows_complete before a crash are dropped on resume")
    func resumeDropsHalfWrittenRows() throws {
        let fx = try CaptureFixture()
        let whole = try Self.uninterrupted(fx)
        let out = fx.dir.file("acts.h5")
        let partial = fx.dir.file(".acts.h5.partial")
        var request = CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, resume: true, outPath: out)

        // With --resume from the start, any failure keeps the partial file.
        var failing = InterruptingStream(inner: try fx.corpus(), remaining: 7, failure: Interrupted())
        #expect(throws: Interrupted.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &failing, request: request)
        }
        #expect(fileExists(partial))
        // Simulate a crash in the middle of the next batch: garbage rows beyond rows_complete.
        do {
            let p = try H5File(open: partial, mode: .readWrite)
            #expect(try p.intAttribute("rows_complete") == 48)
            let garbage = [Float](repeating: 9999, count: 16 * 4 * 8)
            for site in captureSites {
                let ds = try p.openDataset("sites/" + site.name)
                try garbage.withUnsafeBufferPointer { try ds.writeRows(48, count: 8, from: $0.baseAddress!) }
            }
            let junkTokens = [Int32](repeating: 7, count: 8)
            try junkTokens.withUnsafeBufferPointer { try p.openDataset("tokens").writeRows(6, count: 1, from: $0.baseAddress!) }
            p.closeFile()
        }
        request.resume = true
        var fresh = try fx.corpus()
        let summary = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &fresh, request: request)
        #expect(summary.resumedFromRows == 48)
        try expectSameActivations(out, whole, sites: captureSites)
    }

    @Test("a failure in a fresh run without --resume leaves nothing behind")
    func freshFailureCleansUp() throws {
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        var failing = InterruptingStream(inner: try fx.corpus(), remaining: 3, failure: Interrupted())
        #expect(throws: Interrupted.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &failing,
                            request: CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, outPath: out))
        }
        #expect(!fileExists(out) && !fileExists(fx.dir.file(".acts.h5.partial")))
    }

    @Test("resume refuses a partial file made with other settings")
    func resumeMismatch() throws {
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        var failing = InterruptingStream(inner: try fx.corpus(), remaining: 3, failure: Interrupted())
        #expect(throws: Interrupted.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &failing,
                            request: CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, resume: true, outPath: out))
        }
        var fresh = try fx.corpus()
        let error = #expect(throws: BridgeError.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &fresh,
                            request: CaptureRequest(sites: [.residPre(0)], tokens: 96, seqLen: 8, batch: 2, resume: true, outPath: out))
        }
        #expect(error?.description.contains("cannot resume") == true)
        #expect(error?.description.contains("sites") == true)
        // The partial file is still there for a matching resume.
        #expect(fileExists(fx.dir.file(".acts.h5.partial")))
        var again = try fx.corpus()
        let other = #expect(throws: BridgeError.self) {
            try Capture.run(fx.loaded, modelSHA256: String(repeating: "0", count: 64), corpus: &again,
                            request: CaptureRequest(sites: captureSites, tokens: 96, seqLen: 8, batch: 2, resume: true, outPath: out))
        }
        #expect(other?.description.contains("model_sha256") == true)
    }

    @Test("a corpus too short for --tokens is an error giving the token count")
    func corpusTooShort() throws {
        let fx = try CaptureFixture()
        let short = fx.dir.file("short.txt")
        try String(repeating: "x", count: 30).write(toFile: short, atomically: true, encoding: .utf8)  // + newline = 31 tokens
        var corpus = try TextCorpus(path: short, tokenizer: CharTokenizer())
        let out = fx.dir.file("acts.h5")
        let error = #expect(throws: BridgeError.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus,
                            request: CaptureRequest(sites: [.residPre(0)], tokens: 80, seqLen: 8, batch: 4, outPath: out))
        }
        guard case .noTokens(let message)? = error else { Issue.record("expected noTokens, got \(String(describing: error))"); return }
        // Three whole sequences of 8 fit in 31 tokens.
        #expect(message.description.contains("only 24 tokens"))
        #expect(message.description.contains("80"))
        #expect(message.description.contains(short))
        #expect(!fileExists(out) && !fileExists(fx.dir.file(".acts.h5.partial")))
    }

    @Test("bad requests are refused before anything is written")
    func badRequests() throws {
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        for request in [CaptureRequest(sites: [.residPre(0)], tokens: 10, seqLen: 17, outPath: out),
                        CaptureRequest(sites: [.residPre(0)], tokens: 10, seqLen: 0, outPath: out),
                        CaptureRequest(sites: [], tokens: 10, seqLen: 8, outPath: out),
                        CaptureRequest(sites: [.residPre(0)], tokens: 0, seqLen: 8, outPath: out),
                        CaptureRequest(sites: [.residPre(0)], tokens: 8, seqLen: 8, batch: 0, outPath: out)] {
            var corpus = try fx.corpus()
            #expect(throws: BridgeError.self) {
                try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus, request: request)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: fx.dir.path).sorted() == ["corpus.txt", "model.h5"])
        var corpus = try fx.corpus()
        #expect(throws: FileError.self) {
            try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus,
                            request: CaptureRequest(sites: [.residPre(0)], tokens: 8, seqLen: 8, outPath: fx.dir.file("no/dir/x.h5")))
        }
    }
}

@Suite("TextCorpus")
struct TextCorpusTests {
    @Test("streams a file's bytes, then a newline, then stops")
    func streams() throws {
        let fx = try CaptureFixture(corpusLines: 3)
        var corpus = try fx.corpus()
        var all: [Int32] = []
        while let piece = try corpus.next(5) { all += piece }
        let expected = fx.fileTokens
        #expect(all == Array(expected.prefix(expected.count / 5 * 5)))
    }

    @Test("a folder is read file by file in sorted order, hidden files skipped")
    func folder() throws {
        let dir = TemporaryDirectory("corpus")
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: true)
        try "bbb".write(toFile: dir.file("b.txt"), atomically: true, encoding: .utf8)
        try "aa\n".write(toFile: dir.file("a.txt"), atomically: true, encoding: .utf8)
        try "ccc".write(toFile: dir.file("sub/c.txt"), atomically: true, encoding: .utf8)
        try "hidden".write(toFile: dir.file(".hidden"), atomically: true, encoding: .utf8)
        var corpus = try TextCorpus(path: dir.path, tokenizer: CharTokenizer())
        #expect(corpus.files == [dir.file("a.txt"), dir.file("b.txt"), dir.file("sub/c.txt")])
        let expected = Array("aa\n\nbbb\nccc\n".utf8).map { Int32($0) }
        #expect(try corpus.next(expected.count) == expected)
        #expect(try corpus.next(1) == nil)
    }

    @Test("a non-ASCII character is reported with its file, byte and line")
    func nonASCII() throws {
        let dir = TemporaryDirectory("corpus")
        let path = dir.file("t.txt")
        try "line one\nline twö\n".write(toFile: path, atomically: true, encoding: .utf8)
        var corpus = try TextCorpus(path: path, tokenizer: CharTokenizer())
        let error = #expect(throws: TextError.self) { _ = try corpus.next(4) }
        guard case .badFile(let file, let message)? = error else { Issue.record("expected badFile"); return }
        #expect(file == path)
        #expect(message.contains("U+F6") && message.contains("byte 16") && message.contains("line 2, column 8"))
        #expect(throws: TextError.self) { _ = try TextCorpus(path: dir.file("missing.txt"), tokenizer: CharTokenizer()) }
    }
}
