// SeededRandom, the OpenBLAS kernel choice, and Parallel's chunking.

import Foundation
import Testing
import Tensors

@Suite("SeededRandom")
struct SeededRandomTests {
    @Test("matches an independent xoshiro256** + SplitMix64 implementation")
    func referenceStream() {
        // From a Python transcription of the reference C code (Blackman & Vigna).
        var zero = SeededRandom(seed: 0)
        #expect((0..<4).map { _ in zero.next() } ==
                [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0, 0x6aa5_94f1_262d_2d2c])
        var answer = SeededRandom(seed: 42)
        #expect((0..<4).map { _ in answer.next() } ==
                [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1, 0xecb8_ad47_03b3_60a1])
    }

    @Test("same seed gives the same stream; different seeds differ")
    func determinism() {
        var a = SeededRandom(seed: 1234), b = SeededRandom(seed: 1234), c = SeededRandom(seed: 1235)
        let sa = (0..<1000).map { _ in a.next() }, sb = (0..<1000).map { _ in b.next() }
        let sc = (0..<1000).map { _ in c.next() }
        #expect(sa == sb)
        #expect(sa != sc)
        #expect(zip(sa, sc).filter { $0 == $1 }.count == 0)
        var n1 = SeededRandom(seed: 7), n2 = SeededRandom(seed: 7)
        #expect((0..<100).map { _ in n1.nextNormal() } == (0..<100).map { _ in n2.nextNormal() })
        let t1 = { var r = SeededRandom(seed: 9); return Tensor.randomNormal([5, 5], std: 0.5, rng: &r).toArray() }()
        let t2 = { var r = SeededRandom(seed: 9); return Tensor.randomNormal([5, 5], std: 0.5, rng: &r).toArray() }()
        #expect(t1 == t2)
    }

    @Test("nextNormal: mean ≈ 0 and variance ≈ 1 over 100 000 draws")
    func normalMoments() {
        var rng = SeededRandom(seed: 2024)
        let n = 100_000
        var sum = 0.0, sumSq = 0.0, sum4 = 0.0
        for _ in 0..<n {
            let v = Double(rng.nextNormal())
            #expect(v.isFinite)
            sum += v; sumSq += v * v; sum4 += v * v * v * v
        }
        let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
        // Standard errors: 0.0032 for the mean, 0.0045 for the variance; allow ~5σ.
        #expect(abs(mean) < 0.016)
        #expect(abs(variance - 1) < 0.025)
        #expect(abs(sum4 / Double(n) - 3) < 0.15)  // normal kurtosis, not merely unit variance
    }

    @Test("nextUniform lies in [0, 1) with mean 1/2; nextInt stays below n and hits every value")
    func uniformAndInt() {
        var rng = SeededRandom(seed: 5)
        var sum = 0.0
        for _ in 0..<50_000 {
            let u = rng.nextUniform()
            #expect(u >= 0 && u < 1)
            sum += Double(u)
        }
        #expect(abs(sum / 50_000 - 0.5) < 0.007)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[rng.nextInt(7)] += 1 }
        #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 })
    }
}

@Suite("BLASRuntime")
struct BLASRuntimeTests {
    static let avx512: Set<String> = ["fpu", "sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    @Test("the kernel choice follows the CPU flags")
    func coreTypeChoice() {
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: Self.avx512) == "SkylakeX")
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["sse2", "avx", "avx2", "fma"]) == "Haswell")
        // Partial AVX-512 (no avx512bw) must not pick SkylakeX.
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: Self.avx512.subtracting(["avx512bw"])) == "Haswell")
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["avx", "avx2"]) == nil)
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["avx", "fma"]) == nil)
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["sse2", "sse4_2"]) == nil)
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: []) == nil)
    }

    @Test("the loaded kernel is the one the test environment asked for")
    func loadedKernel() {
        #expect(!BLASRuntime.summary.isEmpty)
        if let asked = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], !asked.isEmpty {
            #expect(BLASRuntime.coreName.lowercased() == asked.lowercased())
        }
    }
}

@Suite("Parallel", .serialized)
struct ParallelTests {
    @Test("forChunks covers every index exactly once, in contiguous chunks")
    func coverage() {
        withThreadCountLock { coverageBody() }
    }

    func coverageBody() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let lock = NSLock()
        for threads in [1, 2, 3, 5, 8] {
            Parallel.threads = threads
            for n in [0, 1, 2, 3, 7, 64, 1001] {
                for minimum in [1, 4, 100] {
                    var hits = [Int](repeating: 0, count: n)
                    var chunks: [(worker: Int, range: Range<Int>)] = []
                    Parallel.forChunks(n, minimumPerThread: minimum) { worker, range in
                        lock.lock(); defer { lock.unlock() }
                        chunks.append((worker, range))
                        for i in range { hits[i] += 1 }
                    }
                    #expect(hits.allSatisfy { $0 == 1 }, "threads \(threads) n \(n) minimum \(minimum)")
                    let workers = chunks.map(\.worker)
                    #expect(Set(workers).count == workers.count, "a worker index ran twice")
                    #expect(workers.allSatisfy { $0 >= 0 && $0 < threads })
                    // No more chunks than threads, nor more than n / minimum (at least one).
                    #expect(chunks.filter { !$0.range.isEmpty }.count <= max(1, min(threads, n / minimum)))
                }
            }
        }
    }

    @Test("forChunks never uses more workers than maxWorkers")
    func maxWorkers() {
        withThreadCountLock {
            let saved = Parallel.threads
            defer { Parallel.threads = saved }
            Parallel.threads = 6
            let lock = NSLock()
            var workers: [Int] = [], covered = 0
            Parallel.forChunks(1000, maxWorkers: 2) { w, range in
                lock.lock(); workers.append(w); covered += range.count; lock.unlock()
            }
            #expect(workers.sorted() == [0, 1])
            #expect(covered == 1000)
        }
    }

    @Test("forRange sums agree with a serial loop")
    func forRangeSum() {
        withThreadCountLock { forRangeSumBody() }
    }

    func forRangeSumBody() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 4
        let values = (0..<10_000).map { Double($0 % 97) }
        let lock = NSLock()
        var total = 0.0
        Parallel.forRange(values.count, minimumPerThread: 100) { range in
            let partial = range.reduce(0.0) { $0 + values[$1] }
            lock.lock(); total += partial; lock.unlock()
        }
        #expect(total == values.reduce(0, +))
    }
}

/// Serialises changes of the process-wide thread count across test targets (which share one
/// process): an exclusive flock on a fixed file, which also excludes other threads of this process.
func withThreadCountLock<R>(_ body: () throws -> R) rethrows -> R {
    let fd = open(NSTemporaryDirectory() + "/sparsebridge-tests-threads.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot open the test lock file")
    flock(fd, LOCK_EX)
    defer { flock(fd, LOCK_UN); close(fd) }
    return try body()
}
