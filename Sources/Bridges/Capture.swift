// Capture: stream a corpus through a model in batches and append chosen hook sites to an
// activation file. Memory is one batch of activations, whatever the token count. Work in
// progress lives in `.NAME.partial` beside the output (renamed into place when complete);
// after an interruption `resume` continues from its `rows_complete`, and the result is
// identical to an uninterrupted run.

import Foundation
import HDF5
import Tensors
import Model
import Support
import Text

public struct CaptureRequest {
    public var sites: [HookPoint]
    /// Tokens wanted; rounded up to whole sequences of `seqLen`.
    public var tokens: Int
    public var seqLen: Int
    public var batch: Int
    public var gzip: Int?
    public var resume: Bool
    public var outPath: String
    /// Set when this capture is one rank's shard of a larger one (ShardedCapture.swift).
    public var shard: CaptureShard?

    public init(sites: [HookPoint], tokens: Int, seqLen: Int, batch: Int = 32, gzip: Int? = nil,
                resume: Bool = false, outPath: String, shard: CaptureShard? = nil) {
        self.sites = sites; self.tokens = tokens; self.seqLen = seqLen; self.batch = batch
        self.gzip = gzip; self.resume = resume; self.outPath = outPath; self.shard = shard
    }

    public var sequences: Int { (tokens + seqLen - 1) / seqLen }
}

public struct CaptureSummary {
    public let path: String
    public let sequences: Int
    public let tokens: Int
    public let resumedFromRows: Int
    public let seconds: Double
}

public enum Capture {
    /// Runs a capture. `modelSHA256` identifies the model file in the output's attributes.
    public static func run(_ loaded: LoadedModel, modelSHA256: String, corpus: inout some TokenStream,
                           request r: CaptureRequest) throws -> CaptureSummary {
        let output = try AtomicOutput(r.outPath, resumable: true)
        do {
            return try capture(loaded, modelSHA256: modelSHA256, corpus: &corpus, request: r, output: output)
        } catch {
            // Neither bad input nor a failed write (disk full) leaves a file worth resuming: after a
            // failed write HDF5's metadata never reached the disk, and a resume of it is refused.
            // (A killed run's file is resumable: it is flushed after every batch.)
            // A failed resume keeps the file it was asked to continue.
            if !r.resume { output.discard() }
            throw error
        }
    }

    /// The resume point recorded in a partial file; 0 when it has none or cannot be read.
    static func rowsComplete(_ path: String) -> Int {
        guard let file = try? H5File(open: path) else { return 0 }
        defer { file.closeFile() }
        return (try? file.intAttribute("rows_complete")) ?? 0
    }

    static func capture(_ loaded: LoadedModel, modelSHA256: String, corpus: inout some TokenStream,
                        request r: CaptureRequest, output: AtomicOutput) throws -> CaptureSummary {
        let model = loaded.model, c = model.config
        guard r.seqLen >= 1, r.seqLen <= c.nCtx else {
            throw BridgeError.badRequest("\(parameter: "seq_len") \(r.seqLen) must be between 1 and the model's n_ctx \(c.nCtx)")
        }
        guard r.tokens > 0, r.batch > 0 else {
            throw BridgeError.badRequest("\(parameter: "tokens") and \(parameter: "batch") must be positive")
        }
        guard !r.sites.isEmpty else { throw BridgeError.badRequest("\(parameter: "sites") names no site") }
        let t = r.seqLen, totalSequences = r.sequences
        let siteNames = r.sites.map(\.name)
        let sitesJSON = JSONValue.array(siteNames.map { .string($0) }).jsonString

        // Open the partial file to resume, or start a new one.
        var done = 0
        let file: H5File
        if r.resume && output.temporaryExists && rowsComplete(output.temporaryPath) == 0 {
            // Killed before its first batch reached the disk: nothing to keep, and continuing
            // that file would not give the bytes of an uninterrupted run.
            unlink(output.temporaryPath)
        }
        if r.resume && output.temporaryExists {
            file = try H5File(open: output.temporaryPath, mode: .readWrite)
            try ModelFile.checkFormat(file, expected: ActivationFormat.format, version: ActivationFormat.version, what: "activation")
            for (key, expected) in [("model_sha256", modelSHA256), ("sites", sitesJSON), ("corpus", corpus.description)] {
                let found = try file.stringAttribute(key)
                guard found == expected else {
                    throw BridgeError.badFile(path: output.temporaryPath,
                                              "cannot resume: its \(key) is \(found), this run's is \(expected)")
                }
            }
            guard try file.intAttribute("n_ctx") == t, try file.intAttribute("sequences_requested") == totalSequences,
                  try r.shard.map({ try file.intAttribute("first_sequence") == $0.firstSequence }) ?? true else {
                throw BridgeError.badFile(path: output.temporaryPath,
                                          "cannot resume: n_ctx or \(parameter: "tokens") differ from the interrupted run")
            }
            done = try file.intAttribute("rows_complete") / t
            // Rows past the last complete batch may be half-written: drop them.
            try file.openDataset("tokens").resize(rows: done)
            for name in siteNames { try file.openDataset("sites/" + name).resize(rows: done * t) }
            for _ in 0..<done {
                guard try corpus.next(t) != nil else { throw BridgeError.noTokens("the corpus ended before the resume point") }
            }
        } else {
            if r.resume { FileHandle.standardError.write(Data(("note: nothing to resume at \(output.temporaryPath); starting "
                    + "afresh\n").utf8)) }
            file = try H5File(create: output.temporaryPath)
            try file.setAttribute("format", ActivationFormat.format)
            try file.setAttribute("format_version", ActivationFormat.version)
            try file.setAttribute("model", loaded.path)
            try file.setAttribute("model_sha256", modelSHA256)
            try file.setAttribute("model_config", c.jsonString())
            try file.setAttribute("tokenizer", loaded.tokenizer.json.jsonString)
            try file.setAttribute("corpus", corpus.description)
            try file.setAttribute("n_ctx", t)
            try file.setAttribute("sites", sitesJSON)
            try file.setAttribute("sequences_requested", totalSequences)
            try file.setAttribute("rows_complete", 0)
            if let shard = r.shard {
                try file.setAttribute("shard_index", shard.index)
                try file.setAttribute("shard_count", shard.count)
                try file.setAttribute("first_sequence", shard.firstSequence)
            }
            try file.createDataset("tokens", type: .int32, shape: [0, t], extendableRows: true, gzip: r.gzip)
            for site in r.sites {
                try file.createDataset("sites/" + site.name, type: .float32, shape: [0, site.rowWidth(config: c, seqLen: t)],
                                       extendableRows: true, gzip: r.gzip)
            }
            try file.flush()
        }
        let resumedFrom = done * t
        let tokensDS = try file.openDataset("tokens")
        let siteDS = try Dictionary(uniqueKeysWithValues: r.sites.map { ($0, try file.openDataset("sites/" + $0.name)) })

        // Hooks copy each site into a staging set; a writer thread stores the set while the
        // next batch computes (two sets, so compute and disk overlap).
        let writer = BatchWriter(sites: r.sites, config: c, batch: r.batch, seqLen: t)
        // Whatever ends the loop, batches already handed over reach the disk first (and the
        // file is not closed under the writer's feet).
        defer { writer.waitForWrites() }
        let hooks = Hooks()
        for site in r.sites { hooks.add(site) { ctx in writer.stage(site, ctx.activation, batch: ctx.batch) } }

        let progress = ProgressLine("capture", total: totalSequences * t)
        let started = Date()
        while done < totalSequences {
            let b = min(r.batch, totalSequences - done)
            var tokens: [Int32] = []
            tokens.reserveCapacity(b * t)
            for _ in 0..<b {
                guard let seq = try corpus.next(t) else {
                    throw BridgeError.noTokens("the corpus \(corpus.description) has only \(done * t + tokens.count) tokens; "
                            + "\(parameter: "tokens") asks for \(totalSequences * t)")
                }
                tokens += seq
            }
            try writer.beginBatch()
            try model.forward(tokens: tokens, batch: b, seqLen: t, hooks: hooks, stopEarly: true)
            let first = done
            try writer.submit { set in
                // On the writer thread: site rows, then tokens, then the resume point.
                for site in r.sites {
                    try siteDS[site]!.writeRows(first * t, count: b * t, from: UnsafePointer(set[site]!.data))
                }
                try tokens.withUnsafeBufferPointer { try tokensDS.writeRows(first, count: b, from: $0.baseAddress!) }
                try file.setAttribute("rows_complete", (first + b) * t)
                try file.flush()
            }
            done += b
            progress.update(done * t)
        }
        try writer.finish()
        progress.finish()
        file.closeFile()
        try output.commit()
        return CaptureSummary(path: r.outPath, sequences: totalSequences, tokens: totalSequences * t,
                              resumedFromRows: resumedFrom, seconds: Date().timeIntervalSince(started))
    }
}
