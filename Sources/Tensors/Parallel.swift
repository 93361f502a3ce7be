// Our own parallel loops (attention per head, elementwise kernels) use the same thread
// count as BLAS, so `--threads 1` really means one core.

import Foundation

public enum Parallel {
    /// Defaults to SPARSEBRIDGE_THREADS, else OPENBLAS_NUM_THREADS, else the number of cores.
    public static var threads: Int = {
        let env = ProcessInfo.processInfo.environment
        for key in ["SPARSEBRIDGE_THREADS", "OPENBLAS_NUM_THREADS"] {
            if let v = env[key], let n = Int(v), n > 0 { return n }
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Splits 0..<n into contiguous chunks, one per thread, and runs `body` on each.
    /// Small jobs (fewer than `minimumPerThread` items per thread) run inline.
    public static func forRange(_ n: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        forChunks(n, minimumPerThread: minimumPerThread) { _, range in body(range) }
    }

    /// As `forRange`, also passing the worker's index (0 ..< threads), e.g. to pick its scratch buffer.
    /// `maxWorkers` caps the worker count (e.g. at the number of scratch buffers allocated earlier,
    /// in case `threads` has grown since).
    public static func forChunks(_ n: Int, minimumPerThread: Int = 1, maxWorkers: Int = .max,
                                 _ body: (Int, Range<Int>) -> Void) {
        let workers = min(threads, maxWorkers, max(1, n / max(1, minimumPerThread)))
        if workers <= 1 || n <= 1 {
            body(0, 0..<n)
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = n * w / workers, hi = n * (w + 1) / workers
            if lo < hi { body(w, lo..<hi) }
        }
    }
}
