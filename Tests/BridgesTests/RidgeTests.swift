import Bridges
import Foundation
import Tensors
import Testing
import Model

@Suite("Ridge solver and sufficient statistics")
struct RidgeTests {
    /// Rows x ~ N(0, 1) and y = x A + c exactly.
    func planted(rows: Int, dIn: Int, dOut: Int, seed: UInt64) -> (x: [Double], y: [Double], a: [Double], c: [Double]) {
        var rng = SeededRandom(seed: seed)
        let a = (0..<(dIn * dOut)).map { _ in Double(rng.nextNormal()) }
        let c = (0..<dOut).map { _ in Double(rng.nextNormal()) }
        let x = (0..<(rows * dIn)).map { _ in Double(rng.nextNormal()) }
        var y = [Double](repeating: 0, count: rows * dOut)
        for r in 0..<rows { for j in 0..<dOut {
            var s = c[j]
            for i in 0..<dIn { s += x[r * dIn + i] * a[i * dOut + j] }
            y[r * dOut + j] = s
        } }
        return (x, y, a, c)
    }

    @Test("an exact planted map is recovered in both directions")
    func recoversPlantedMap() throws {
        let (x, y, a, c) = planted(rows: 400, dIn: 6, dOut: 9, seed: 1)
        var train = SiteStatistics(dDense: 6, dSparse: 9), held = SiteStatistics(dDense: 6, dSparse: 9)
        train.add(dense: Array(x[0..<(300 * 6)]), sparse: Array(y[0..<(300 * 9)]), rows: 300)
        held.add(dense: Array(x[(300 * 6)...]), sparse: Array(y[(300 * 9)...]), rows: 100)
        let enc = try RidgeSolver.fit(train: train, heldout: held, direction: .denseToSparse, ridge: .fixed(0), site: "s")
        for i in a.indices { #expect(abs(enc.weight[i] - a[i]) < 1e-9) }
        for j in c.indices { #expect(abs(enc.bias[j] - c[j]) < 1e-9) }
        #expect(enc.nmse < 1e-12)
        // Auto λ picks no (or negligible) regularisation for noiseless data.
        let auto = try RidgeSolver.fit(train: train, heldout: held, direction: .denseToSparse, ridge: .auto, site: "s")
        #expect(auto.nmse < 1e-8)
        // y spans only 6 of its 9 dimensions: λ = 0 is singular for the decoder, and a tiny λ
        // still inverts the map on that image.
        #expect(throws: BridgeError.self) {
            _ = try RidgeSolver.fit(train: train, heldout: held, direction: .sparseToDense, ridge: .fixed(0), site: "s")
        }
        let dec = try RidgeSolver.fit(train: train, heldout: held, direction: .sparseToDense, ridge: .fixed(1e-9), site: "s")
        #expect(dec.nmse < 1e-6)
    }

    @Test("statistics merged from shards equal one pass")
    func mergeEqualsSinglePass() {
        let (x, y, _, _) = planted(rows: 120, dIn: 4, dOut: 5, seed: 2)
        var whole = SiteStatistics(dDense: 4, dSparse: 5)
        whole.add(dense: x, sparse: y, rows: 120)
        var a = SiteStatistics(dDense: 4, dSparse: 5), b = SiteStatistics(dDense: 4, dSparse: 5)
        a.add(dense: Array(x[0..<(50 * 4)]), sparse: Array(y[0..<(50 * 5)]), rows: 50)
        b.add(dense: Array(x[(50 * 4)...]), sparse: Array(y[(50 * 5)...]), rows: 70)
        a.merge(b)
        #expect(a.count == 120)
        for (p, q) in zip(a.gramDense + a.gramSparse + a.cross + a.sumDense + a.sumSparse,
                          whole.gramDense + whole.gramSparse + whole.cross + whole.sumDense + whole.sumSparse) {
            #expect(abs(p - q) <= 1e-9 * max(1, abs(q)))
        }
    }

    @Test("fewer tokens than the width with λ = 0 is reported as singular")
    func singular() {
        let (x, y, _, _) = planted(rows: 5, dIn: 8, dOut: 3, seed: 3)
        var train = SiteStatistics(dDense: 8, dSparse: 3)
        train.add(dense: x, sparse: y, rows: 5)
        let empty = SiteStatistics(dDense: 8, dSparse: 3)
        #expect(throws: BridgeError.self) {
            _ = try RidgeSolver.fit(train: train, heldout: empty, direction: .denseToSparse, ridge: .fixed(0), site: "s")
        }
        #expect(throws: BridgeError.self) {  // auto needs held-out tokens
            _ = try RidgeSolver.fit(train: train, heldout: empty, direction: .denseToSparse, ridge: .auto, site: "s")
        }
    }

    @Test("the held-out split takes the promised fraction, evenly")
    func heldoutSplit() {
        let held = (0..<1000).filter { BridgeAccumulator.isHeldout(sequence: $0, fraction: 0.1) }
        #expect(held.count == 100)
        #expect(zip(held, held.dropFirst()).allSatisfy { $1 - $0 == 10 })
        #expect((0..<50).filter { BridgeAccumulator.isHeldout(sequence: $0, fraction: 0) }.isEmpty)
    }
}
