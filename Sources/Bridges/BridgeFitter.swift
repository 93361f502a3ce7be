// Bridge fitting: stream paired activations of the dense and the sparse model on the
// same tokens — captured on the fly, or read from two activation files — into Float64
// sufficient statistics, then solve every site in both directions.
//
// Held-out split: sequence i (counting from the start of the token stream) is held out
// when ⌊(i+1)·f⌋ > ⌊i·f⌋, which spreads a fraction f evenly and does not depend on how the
// stream is batched or sharded.

import Cluster
import Foundation
import HDF5
import Tensors
import Model
import Support
import Text

/// What the statistics are gathered for (the ridge λ is chosen later, when solving).
public struct FitOptions: Sendable {
    public var sites: [HookPoint]
    public var heldoutFraction: Double
    public init(sites: [HookPoint], heldoutFraction: Double = 0.1) {
        self.sites = sites; self.heldoutFraction = heldoutFraction
    }
}

public final class BridgeAccumulator {
    public let sites: [HookPoint]
    public let dDense: Int, dSparse: Int
    public let heldoutFraction: Double
    public private(set) var train: [SiteStatistics]
    public private(set) var heldout: [SiteStatistics]

    public init(sites: [HookPoint], dDense: Int, dSparse: Int, heldoutFraction: Double) {
        self.sites = sites; self.dDense = dDense; self.dSparse = dSparse; self.heldoutFraction = heldoutFraction
        train = sites.map { _ in SiteStatistics(dDense: dDense, dSparse: dSparse) }
        heldout = train
    }

    public static func isHeldout(sequence i: Int, fraction f: Double) -> Bool {
        (Double(i + 1) * f).rounded(.down) > (Double(i) * f).rounded(.down)
    }

    /// Adds a batch: per site, dense rows [B·T, d_dense] and sparse rows [B·T, d_sparse] for
    /// sequences firstSequence ..< firstSequence + batch. Non-finite values are refused,
    /// naming the site and the row.
    public func add(firstSequence: Int, batch: Int, seqLen t: Int, dense: [UnsafePointer<Float>],
                    sparse: [UnsafePointer<Float>], sources: (dense: String, sparse: String)) throws {
        let held = (0..<batch).map { Self.isHeldout(sequence: firstSequence + $0, fraction: heldoutFraction) }
        for (k, site) in sites.enumerated() {
            for (data, width, source) in [(dense[k], dDense, sources.dense), (sparse[k], dSparse, sources.sparse)] {
                for i in 0..<(batch * t * width) where !data[i].isFinite {
                    throw BridgeError.nonFinite(site: site.name, row: firstSequence * t + i / width, file: source)
                }
            }
            for heldPart in [false, true] {
                let seqs = (0..<batch).filter { held[$0] == heldPart }
                if seqs.isEmpty { continue }
                var d = [Double](repeating: 0, count: seqs.count * t * dDense)
                var s = [Double](repeating: 0, count: seqs.count * t * dSparse)
                for (j, b) in seqs.enumerated() {
                    for i in 0..<(t * dDense) { d[j * t * dDense + i] = Double(dense[k][b * t * dDense + i]) }
                    for i in 0..<(t * dSparse) { s[j * t * dSparse + i] = Double(sparse[k][b * t * dSparse + i]) }
                }
                if heldPart { heldout[k].add(dense: d, sparse: s, rows: seqs.count * t) }
                else { train[k].add(dense: d, sparse: s, rows: seqs.count * t) }
            }
        }
    }

    /// Merges another accumulator over other sequences (another process's shard).
    public func merge(_ other: BridgeAccumulator) {
        for k in sites.indices { train[k].merge(other.train[k]); heldout[k].merge(other.heldout[k]) }
    }

    /// Sums the statistics of every process of `group` (each over its own sequences) into
    /// every process's accumulator: one site and split at a time, so the extra memory is one
    /// site's statistics. The split stays that of a single process, since `add` places
    /// sequences by their index in the whole stream.
    public func sumAcross(_ group: Communicator) throws {
        guard group.size > 1 else { return }
        for k in sites.indices {
            var t = train[k].flattened
            try group.sum(&t)
            train[k] = train[k].replacing(flattened: t)
            var h = heldout[k].flattened
            try group.sum(&h)
            heldout[k] = heldout[k].replacing(flattened: h)
        }
    }

    /// Float64 values in all the statistics (what `sumAcross` sends through the allreduce).
    public var statisticsCount: Int { (train + heldout).reduce(0) { $0 + $1.flattened.count } }

    /// Solves every site in both directions.
    public func solve(ridge: RidgeChoice) throws -> [BridgeSite] {
        try sites.enumerated().map { k, site in
            let enc = try RidgeSolver.fit(train: train[k], heldout: heldout[k], direction: .denseToSparse, ridge: ridge, site: site.name)
            let dec = try RidgeSolver.fit(train: train[k], heldout: heldout[k], direction: .sparseToDense, ridge: ridge, site: site.name)
            let n = Double(train[k].count + heldout[k].count)
            let meanD = zip(train[k].sumDense, heldout[k].sumDense).map { Float(($0 + $1) / n) }
            let meanS = zip(train[k].sumSparse, heldout[k].sumSparse).map { Float(($0 + $1) / n) }
            return BridgeSite(hook: site.name, encoder: BridgeMap(enc, dIn: dDense, dOut: dSparse),
                              decoder: BridgeMap(dec, dIn: dSparse, dOut: dDense),
                              meanDense: Tensor(shape: [dDense], values: meanD), meanSparse: Tensor(shape: [dSparse], values: meanS))
        }
    }
}

public enum BridgeFitter {
    /// Both models must read the same tokens the same way.
    public static func checkPair(dense: ModelConfig, sparse: ModelConfig) throws {
        guard dense.vocab == sparse.vocab else {
            throw BridgeError.mismatch("the models have different vocabularies (\(dense.vocab) and \(sparse.vocab)); their "
                    + "activations cannot pair token by token")
        }
        guard dense.nLayer == sparse.nLayer else {
            throw BridgeError.mismatch("the models have \(dense.nLayer) and \(sparse.nLayer) layers; bridge sites pair layer by layer")
        }
    }

    /// Captures both models' sites on `sequences` sequences of `seqLen` tokens and accumulates.
    public static func accumulate(dense: Transformer, sparse: Transformer, corpus: inout some TokenStream,
                                  sequences: Int, seqLen t: Int, batch: Int, options: FitOptions,
                                  firstSequence: Int = 0, progress: ProgressLine? = nil) throws -> BridgeAccumulator {
        try checkPair(dense: dense.config, sparse: sparse.config)
        let acc = BridgeAccumulator(sites: options.sites, dDense: dense.config.dModel, dSparse: sparse.config.dModel,
                                    heldoutFraction: options.heldoutFraction)
        func staging(_ model: Transformer) -> ([Tensor], Hooks) {
            let buffers = options.sites.map { _ in Tensor(zeros: [batch * t, model.config.dModel]) }
            let hooks = Hooks()
            for (k, site) in options.sites.enumerated() {
                hooks.add(site) { ctx in buffers[k].data.update(from: ctx.activation.data, count: ctx.activation.count) }
            }
            return (buffers, hooks)
        }
        let (denseBuffers, denseHooks) = staging(dense), (sparseBuffers, sparseHooks) = staging(sparse)
        var done = 0
        while done < sequences {
            let b = min(batch, sequences - done)
            var tokens: [Int32] = []
            for _ in 0..<b {
                guard let s = try corpus.next(t) else { throw BridgeError.noTokens("the corpus ended after \(done) sequences") }
                tokens += s
            }
            try dense.forward(tokens: tokens, batch: b, seqLen: t, hooks: denseHooks, stopEarly: true)
            try sparse.forward(tokens: tokens, batch: b, seqLen: t, hooks: sparseHooks, stopEarly: true)
            try acc.add(firstSequence: firstSequence + done, batch: b, seqLen: t,
                        dense: denseBuffers.map { UnsafePointer($0.data) }, sparse: sparseBuffers.map { UnsafePointer($0.data) },
                        sources: ("dense model", "sparse model"))
            done += b
            progress?.update(done * t)
        }
        return acc
    }

    /// Reads paired activation files (same tokens, same n_ctx) and accumulates; with `part`,
    /// only process `part.index`'s share of `part.count` (Cluster.share, in whole batches, so
    /// that the batches are those of a one-process fit).
    public static func accumulate(denseActs: ActivationFile, sparseActs: ActivationFile, options: FitOptions,
                                  batch: Int = 16, part: (index: Int, count: Int) = (0, 1)) throws -> BridgeAccumulator {
        try checkPair(dense: denseActs.modelConfig, sparse: sparseActs.modelConfig)
        guard denseActs.seqLen == sparseActs.seqLen else {
            throw BridgeError.mismatch("\(denseActs.path) has n_ctx \(denseActs.seqLen) but \(sparseActs.path) has "
                    + "\(sparseActs.seqLen); they do not pair")
        }
        let t = denseActs.seqLen
        let sequences = min(denseActs.rowsComplete, sparseActs.rowsComplete) / t
        guard sequences > 0 else { throw BridgeError.noTokens("the activation files hold no complete sequences") }
        let acc = BridgeAccumulator(sites: options.sites, dDense: denseActs.modelConfig.dModel,
                                    dSparse: sparseActs.modelConfig.dModel, heldoutFraction: options.heldoutFraction)
        let dsDense = try options.sites.map { try denseActs.site($0.name) }
        let dsSparse = try options.sites.map { try sparseActs.site($0.name) }
        for (k, site) in options.sites.enumerated() {
            guard dsDense[k].shape[1] == acc.dDense, dsSparse[k].shape[1] == acc.dSparse else {
                throw BridgeError.mismatch("site \(site.name) has width \(dsDense[k].shape[1]) / \(dsSparse[k].shape[1]) in the "
                        + "files, expected d_model \(acc.dDense) / \(acc.dSparse)")
            }
        }
        let denseBuf = options.sites.map { _ in Tensor(zeros: [batch * t, acc.dDense]) }
        let sparseBuf = options.sites.map { _ in Tensor(zeros: [batch * t, acc.dSparse]) }
        let share = Cluster.share(of: sequences, rank: part.index, size: part.count, unit: batch)
        var start = share.lowerBound
        while start < share.upperBound {
            let b = min(batch, share.upperBound - start)
            guard try denseActs.tokens(sequences: start..<(start + b)) == sparseActs.tokens(sequences: start..<(start + b)) else {
                throw BridgeError.mismatch("\(denseActs.path) and \(sparseActs.path) hold different tokens (first difference in "
                        + "sequences \(start)..<\(start + b)); capture both from the same corpus and seed")
            }
            for k in options.sites.indices {
                try dsDense[k].readRows(start * t, count: b * t, into: denseBuf[k].data)
                try dsSparse[k].readRows(start * t, count: b * t, into: sparseBuf[k].data)
            }
            try acc.add(firstSequence: start, batch: b, seqLen: t, dense: denseBuf.map { UnsafePointer($0.data) },
                        sparse: sparseBuf.map { UnsafePointer($0.data) }, sources: (denseActs.path, sparseActs.path))
            start += b
        }
        return acc
    }
}
