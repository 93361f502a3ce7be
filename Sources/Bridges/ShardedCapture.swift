// Capture as one job of several processes (mpirun): rank r of n captures its contiguous
// share of the corpus's sequences into its own shard file, `NAME.rank<r>-of-<n>.h5` beside
// the output; once every rank has finished, rank 0 writes the output itself as a file of
// HDF5 virtual datasets that presents the shards, in order, as one activation file.
// Layout in docs/formats.md ("Sharded activations").

import Cluster
import Foundation
import HDF5
import Tensors
import Model
import Support
import Text

/// Where one shard sits in a sharded capture.
public struct CaptureShard: Sendable {
    public let index: Int
    public let count: Int
    /// Index of its first sequence in the whole corpus (and in the virtual file).
    public let firstSequence: Int
    public init(index: Int, count: Int, firstSequence: Int) {
        self.index = index; self.count = count; self.firstSequence = firstSequence
    }
}

public enum ShardedCapture {
    /// The shard of `rank` of `size` for the output `path`: `acts.h5` → `acts.rank1-of-2.h5`.
    public static func shardPath(_ path: String, rank: Int, size: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let stem = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return stem + ".rank\(rank)-of-\(size)" + (ext.isEmpty ? "" : "." + ext)
    }

    /// Runs this rank's share of `request`; on rank 0 also writes the virtual file at
    /// `request.outPath` once every rank is done. A job of one process is a plain capture.
    /// A rank's error propagates to its caller, which ends the job (no virtual file is written).
    public static func run(_ loaded: LoadedModel, modelSHA256: String, corpus: inout some TokenStream,
                           request: CaptureRequest, group: Communicator) throws -> CaptureSummary {
        guard group.size > 1 else { return try Capture.run(loaded, modelSHA256: modelSHA256, corpus: &corpus, request: request) }
        let started = Date()
        let total = request.sequences
        // Whole batches per rank: every sequence is computed in the batch a one-process run
        // would put it in, so the shards hold bit for bit what that run would.
        let batches = (total + request.batch - 1) / request.batch
        guard batches >= group.size else {
            throw BridgeError.badRequest("\(parameter: "tokens") gives \(batches) batches of \(parameter: "batch") "
                    + "\(request.batch) sequences, fewer than the \(group.size) processes; lower \(parameter: "batch")")
        }
        let share = Cluster.share(of: total, rank: group.rank, size: group.size, unit: request.batch)
        try corpus.skip(sequences: share.lowerBound, length: request.seqLen)
        var mine = request
        mine.tokens = share.count * request.seqLen
        mine.outPath = shardPath(request.outPath, rank: group.rank, size: group.size)
        mine.shard = CaptureShard(index: group.rank, count: group.size, firstSequence: share.lowerBound)
        let own = try Capture.run(loaded, modelSHA256: modelSHA256, corpus: &corpus, request: mine)

        // Reached by every rank only when every shard is complete: a failed rank ends the job first.
        var finished = [1.0]
        try group.sum(&finished)
        guard group.rank == 0 else { return own }
        let shards = (0..<group.size).map { shardPath(request.outPath, rank: $0, size: group.size) }
        try writeVirtualFile(request.outPath, shards: shards)
        return CaptureSummary(path: request.outPath, sequences: total, tokens: total * request.seqLen,
                              resumedFromRows: 0, seconds: Date().timeIntervalSince(started))
    }

    /// Writes an activation file at `path` whose datasets are virtual: the rows of `shards`
    /// (complete shard files beside it, in corpus order). Its attributes are those of a
    /// one-process capture of the same sequences, plus `provenance` naming every shard.
    public static func writeVirtualFile(_ path: String, shards paths: [String]) throws {
        let shards = try paths.map { try ActivationFile(path: $0) }
        let first = shards[0]
        let attributes = ["model", "model_sha256", "model_config", "tokenizer", "corpus", "sites"]
        let common = try attributes.map { try first.file.stringAttribute($0) }
        var sequences = 0, firsts: [Int] = []
        for (k, shard) in shards.enumerated() {
            for (name, value) in zip(attributes, common) where try shard.file.stringAttribute(name) != value {
                throw BridgeError.badFile(path: shard.path,
                                          "its \(name) differs from that of \(first.path); the shards are not one capture")
            }
            guard shard.seqLen == first.seqLen, try shard.file.intAttribute("shard_index") == k,
                  try shard.file.intAttribute("shard_count") == shards.count,
                  try shard.file.intAttribute("first_sequence") == sequences else {
                throw BridgeError.badFile(path: shard.path, "is not shard \(k) of \(shards.count) starting at sequence \(sequences)")
            }
            let requested = try shard.file.intAttribute("sequences_requested")
            guard shard.rowsComplete == requested * shard.seqLen else {
                throw BridgeError.badFile(path: shard.path, "is incomplete (\(shard.rowsComplete) of \(requested * shard.seqLen) rows)")
            }
            firsts.append(sequences)
            sequences += requested
        }
        let t = first.seqLen
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
        let names = try shards.map { shard -> String in
            let url = URL(fileURLWithPath: shard.path).standardizedFileURL
            guard url.deletingLastPathComponent().path == folder else {
                throw BridgeError.badFile(path: shard.path, "must sit in the folder of \(path), which names it relatively")
            }
            return url.lastPathComponent
        }

        let output = try AtomicOutput(path)
        let file = try H5File(create: output.temporaryPath)
        try file.setAttribute("format", ActivationFormat.format)
        try file.setAttribute("format_version", ActivationFormat.version)
        for (name, value) in zip(attributes, common) { try file.setAttribute(name, value) }
        try file.setAttribute("n_ctx", t)
        try file.setAttribute("sequences_requested", sequences)
        try file.setAttribute("rows_complete", sequences * t)
        let provenance: JSONValue = .object([
            "made_by": .string("sparsebridge capture"), "processes": .number(Double(shards.count)),
            "shards": .array(names.indices.map { k in
                .object(["file": .string(names[k]), "first_sequence": .number(Double(firsts[k])),
                         "sequences": .number(Double(shards[k].rowsComplete / t))])
            }),
        ])
        try file.setAttribute("provenance", provenance.jsonString)
        try file.createVirtualDataset("tokens", type: .int32, rowShape: [t], sources: zip(names, shards).map {
            VirtualSource(file: $0, dataset: "tokens", rows: $1.rowsComplete / t)
        })
        for site in first.sites {
            let width = try first.site(site).shape[1]
            try file.createVirtualDataset("sites/" + site, type: .float32, rowShape: [width], sources: zip(names, shards).map {
                VirtualSource(file: $0, dataset: "sites/" + site, rows: $1.rowsComplete)
            })
        }
        file.closeFile()
        try output.commit()
    }
}

/// Fitting on the fly as one job of several processes: each process reads its contiguous share
/// of the corpus's sequences, in whole batches, so each sequence's activations are those of a
/// one-process fit; the processes' statistics are then summed (BridgeAccumulator.sumAcross).
public enum ShardedFit {
    /// This process's statistics over its share of `sequences` sequences of `corpus`.
    /// `progress` makes the progress line for the share's token count.
    public static func accumulate(dense: Transformer, sparse: Transformer, corpus: inout some TokenStream, sequences: Int,
                                  seqLen t: Int, batch: Int, options: FitOptions, group: Communicator,
                                  progress: (_ tokens: Int) -> ProgressLine) throws -> BridgeAccumulator {
        let share = Cluster.share(of: sequences, rank: group.rank, size: group.size, unit: batch)
        try corpus.skip(sequences: share.lowerBound, length: t)
        let line = progress(share.count * t)
        let acc = try BridgeFitter.accumulate(dense: dense, sparse: sparse, corpus: &corpus, sequences: share.count, seqLen: t,
                                              batch: batch, options: options, firstSequence: share.lowerBound, progress: line)
        line.finish()
        return acc
    }
}
