// Work split over processes without MPI: the share rule, statistics summed through their
// flattened form, a capture made of shards read back through its virtual file, and a fit
// made of two processes' shares. The same paths under mpirun: Tests/python/test_mpi.py.

import Bridges
import Cluster
import Foundation
import HDF5
import Testing
import Model
import Support

/// Stands in for the other rank of a two-process job: `Recorder` keeps what one rank
/// contributes to each sum, `Replayer` adds those contributions on the other rank.
final class Recorder: Communicator {
    var contributions: [[Double]] = []
    var rank: Int { 1 }
    var size: Int { 2 }
    func sum(_ values: inout [Double]) throws { contributions.append(values) }
    func abort(code: Int32) -> Never { fatalError("abort") }
    func finish() {}
}

final class Replayer: Communicator {
    var contributions: [[Double]]
    init(_ contributions: [[Double]]) { self.contributions = contributions }
    var rank: Int { 0 }
    var size: Int { 2 }
    func sum(_ values: inout [Double]) throws {
        let other = contributions.removeFirst()
        guard other.count == values.count else { throw ClusterError("sizes differ") }
        for i in values.indices { values[i] += other[i] }
    }
    func abort(code: Int32) -> Never { fatalError("abort") }
    func finish() {}
}

@Suite("Work split over processes")
struct ShardingTests {
    @Test("shares are contiguous, cover every item once, start on whole units, and differ by at most one unit")
    func shares() {
        for count in [0, 1, 5, 7, 64, 1001] {
            for size in 1...6 {
                for unit in [1, 3, 16] {
                    let parts = (0..<size).map { Cluster.share(of: count, rank: $0, size: size, unit: unit) }
                    #expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == count)
                    for (a, b) in zip(parts, parts.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                    #expect(parts.allSatisfy { $0.lowerBound % unit == 0 || $0.isEmpty })
                    let full = parts.map { $0.count }.dropLast()   // the last share may hold a short unit
                    if let most = full.max(), let least = full.min() { #expect(most - least <= unit, "\(count) over \(size)") }
                }
            }
        }
        #expect(Cluster.share(of: 10, rank: 1, size: 2, unit: 3) == 6..<10)
    }

    @Test("shard files are named beside the output")
    func shardNames() {
        #expect(ShardedCapture.shardPath("/d/acts.h5", rank: 1, size: 4) == "/d/acts.rank1-of-4.h5")
        #expect(ShardedCapture.shardPath("acts", rank: 0, size: 2) == "acts.rank0-of-2")
    }

    @Test("summing flattened statistics is merging them, exactly")
    func flattenedSum() {
        var a = SiteStatistics(dDense: 3, dSparse: 4), b = SiteStatistics(dDense: 3, dSparse: 4)
        a.add(dense: (0..<15).map { Double($0) * 0.37 - 1 }, sparse: (0..<20).map { sin(Double($0)) }, rows: 5)
        b.add(dense: (0..<9).map { cos(Double($0)) }, sparse: (0..<12).map { Double($0) / 7 }, rows: 3)
        var summed = a.flattened
        for (i, v) in b.flattened.enumerated() { summed[i] += v }
        let viaFlat = a.replacing(flattened: summed)
        a.merge(b)
        #expect(viaFlat.flattened == a.flattened)
        #expect(viaFlat.count == 8)
    }

    /// Captures `sequences` sequences as `size` shards (each from its own skipped-ahead
    /// corpus), then the virtual file over them.
    func shardedCapture(_ fx: CaptureFixture, out: String, sequences: Int, size: Int, sites: [HookPoint]) throws {
        for rank in 0..<size {
            let share = Cluster.share(of: sequences, rank: rank, size: size, unit: 3)
            var corpus = try fx.corpus()
            try corpus.skip(sequences: share.lowerBound, length: 8)
            let request = CaptureRequest(sites: sites, tokens: share.count * 8, seqLen: 8, batch: 3,
                                         outPath: ShardedCapture.shardPath(out, rank: rank, size: size),
                                         shard: CaptureShard(index: rank, count: size, firstSequence: share.lowerBound))
            _ = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus, request: request)
        }
        try ShardedCapture.writeVirtualFile(out, shards: (0..<size).map { ShardedCapture.shardPath(out, rank: $0, size: size) })
    }

    @Test("a capture in shards reads, through its virtual file, as the one-process capture")
    func virtualFileEqualsOneProcess() throws {
        let fx = try CaptureFixture()
        let one = fx.dir.file("one.h5"), sharded = fx.dir.file("sharded.h5")
        var corpus = try fx.corpus()
        _ = try Capture.run(fx.loaded, modelSHA256: fx.modelSHA, corpus: &corpus,
                            request: CaptureRequest(sites: captureSites, tokens: 11 * 8, seqLen: 8, batch: 3, outPath: one))
        try shardedCapture(fx, out: sharded, sequences: 11, size: 3, sites: captureSites)
        let file = try ActivationFile(path: sharded)
        #expect(try file.file.openDataset("tokens").virtualSourceFiles() == ["sharded.rank0-of-3.h5", "sharded.rank1-of-3.h5",
                                                                             "sharded.rank2-of-3.h5"])
        let provenance = try JSONValue.parse(try file.file.stringAttribute("provenance"))
        guard case .object(let p) = provenance, case .array(let shards)? = p["shards"] else {
            Issue.record("provenance has no shard list"); return
        }
        #expect(shards.count == 3)
        // Shares start on whole batches, so every sequence was computed in the same batch as in
        // the one-process run: the values agree bit for bit.
        try expectSameActivations(one, sharded, sites: captureSites)
        for key in ["model_sha256", "corpus", "sites", "tokenizer"] {
            #expect(try file.file.stringAttribute(key) == ActivationFile(path: one).file.stringAttribute(key))
        }
    }

    @Test("a virtual file whose shard is missing is refused, naming the shard")
    func missingShard() throws {
        let fx = try CaptureFixture()
        let out = fx.dir.file("acts.h5")
        try shardedCapture(fx, out: out, sequences: 4, size: 2, sites: [.residPre(0)])
        try FileManager.default.removeItem(atPath: ShardedCapture.shardPath(out, rank: 1, size: 2))
        let error = #expect(throws: BridgeError.self) { _ = try ActivationFile(path: out) }
        #expect("\(error!)".contains("acts.rank1-of-2.h5") && "\(error!)".contains("missing"))
    }

    @Test("shards that are not one capture are refused")
    func mismatchedShards() throws {
        let fx = try CaptureFixture()
        let a = fx.dir.file("a.h5")
        try shardedCapture(fx, out: a, sequences: 4, size: 2, sites: [.residPre(0)])
        // Shard 1 given twice: its first sequence is not where shard 0 ends.
        let shard1 = ShardedCapture.shardPath(a, rank: 1, size: 2)
        let error = #expect(throws: BridgeError.self) {
            try ShardedCapture.writeVirtualFile(fx.dir.file("b.h5"), shards: [shard1, shard1])
        }
        #expect("\(error!)".contains("is not shard 0 of 2"))
        #expect(!FileManager.default.fileExists(atPath: fx.dir.file("b.h5")))
    }

    @Test("a fit from two processes' shares, summed, equals the one-process fit with the same held-out split")
    func twoPartFit() throws {
        let dense = try CaptureFixture(seed: 1), sparse = try CaptureFixture(seed: 2)
        let sites: [HookPoint] = [.residPre(1), .residPost(1)]
        for fx in [dense, sparse] { try shardedCapture(fx, out: fx.dir.file("acts.h5"), sequences: 30, size: 2, sites: sites) }
        let da = try ActivationFile(path: dense.dir.file("acts.h5")), sa = try ActivationFile(path: sparse.dir.file("acts.h5"))
        let options = FitOptions(sites: sites, heldoutFraction: 0.2)
        let whole = try BridgeFitter.accumulate(denseActs: da, sparseActs: sa, options: options, batch: 4)
        let part0 = try BridgeFitter.accumulate(denseActs: da, sparseActs: sa, options: options, batch: 4, part: (0, 2))
        let part1 = try BridgeFitter.accumulate(denseActs: da, sparseActs: sa, options: options, batch: 4, part: (1, 2))
        #expect(part0.train[0].count + part0.heldout[0].count == 16 * 8)   // 4 whole batches of 4 of the 30 sequences
        let recorder = Recorder()
        try part1.sumAcross(recorder)
        try part0.sumAcross(Replayer(recorder.contributions))
        let a = try whole.solve(ridge: .auto), b = try part0.solve(ridge: .auto)
        for (x, y) in zip(a, b) {
            for dir in BridgeDirection.allCases {
                let p = x.map(dir), q = y.map(dir)
                #expect(p.trainTokens == q.trainTokens && p.heldoutTokens == q.heldoutTokens)
                #expect(p.heldoutTokens == 6 * 8)   // sequences 4, 9, 14, 19, 24, 29
                #expect(p.lambdaRelative == q.lambdaRelative)
                #expect(abs(p.nmse - q.nmse) <= 1e-9)
                let scale = (0..<p.weight.count).map { abs(p.weight[$0]) }.max()!
                for i in 0..<p.weight.count { #expect(abs(p.weight[i] - q.weight[i]) <= 1e-5 * scale) }
            }
        }
    }
}
