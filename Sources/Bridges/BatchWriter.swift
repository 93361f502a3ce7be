// Double-buffered writing for capture: while batch k is written to disk on a background
// thread, batch k + 1 computes into the other staging set. Only the writer thread touches
// HDF5 between `beginBatch` and `finish`; an error there is rethrown on the calling thread
// at the next `beginBatch`, `submit` or `finish`.

import Foundation
import HDF5
import Tensors
import Model

final class BatchWriter {
    typealias StagingSet = [HookPoint: Tensor]
    private let sets: [StagingSet]            // two sets of [B·T, width] per site
    private let free: [DispatchSemaphore]     // signalled when a set may be reused
    private let queue = DispatchQueue(label: "sparsebridge.capture-writer")
    private var current = 0
    /// Whether `beginBatch` took the current set and no `submit` has handed it on yet.
    private var holding = false
    private let lock = NSLock()
    private var failure: Error?
    private let config: ModelConfig
    private let seqLen: Int

    init(sites: [HookPoint], config c: ModelConfig, batch: Int, seqLen t: Int) {
        config = c
        seqLen = t
        let make = { Dictionary(uniqueKeysWithValues: sites.map { ($0, Tensor(zeros: [batch * t, $0.rowWidth(config: c, seqLen: t)])) }) }
        sets = [make(), make()]
        free = [DispatchSemaphore(value: 1), DispatchSemaphore(value: 1)]
        queue.async { HDF5Library.prepareThread() }
    }

    private func rethrow() throws {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
    }

    /// Waits until the current staging set is free again.
    func beginBatch() throws {
        free[current].wait()
        holding = true
        try rethrow()
    }

    /// Copies a hooked activation [B, T, …] into the current set, in row layout
    /// (attention patterns [B, H, T, T] become one row per query token: [B·T, H·T]).
    func stage(_ site: HookPoint, _ activation: Tensor, batch b: Int) {
        let out = sets[current][site]!, t = seqLen
        if case .pattern = site {
            let h = config.nHead
            Parallel.forRange(b * h, minimumPerThread: 4) { range in
                for pair in range {
                    let bi = pair / h, hi = pair % h
                    for i in 0..<t {
                        (out.data + ((bi * t + i) * h + hi) * t).update(from: activation.data + (pair * t + i) * t, count: t)
                    }
                }
            }
        } else {
            let n = b * t * out.shape[1]
            Parallel.forRange(n, minimumPerThread: 1 << 18) { r in
                (out.data + r.lowerBound).update(from: activation.data + r.lowerBound, count: r.count)
            }
        }
    }

    /// Hands the current set to the writer thread and moves on to the other set.
    func submit(_ write: @escaping (StagingSet) throws -> Void) throws {
        let index = current, set = sets[index]
        holding = false
        queue.async { [self] in
            do { try write(set) } catch {
                lock.lock()
                if failure == nil { failure = error }
                lock.unlock()
            }
            free[index].signal()
        }
        current ^= 1
        try rethrow()
    }

    /// Waits for every write to finish.
    func finish() throws {
        waitForWrites()
        try rethrow()
    }

    func waitForWrites() { queue.sync {} }

    // libdispatch traps when a semaphore is freed below its initial value: a capture that
    // stops between `beginBatch` and `submit` (an error) must give its set back first.
    deinit { if holding { free[current].signal() } }
}
