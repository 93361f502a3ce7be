// Bridge-fit benchmark: a 256 → 1024 linear map on N tokens read from an HDF5 file
// (datasets x [N, 256] and y [N, 1024], written by peers/fit_numpy.py), streamed in chunks
// into Float64 sufficient statistics and solved by ridge (λ = 0) — the same code path as
// `sparsebridge fit`. Prints time and peak memory as JSON.
//
//   sparsebridge-bench-fit DATA.h5 [--threads N] [--chunk ROWS]

import Bridges
import Foundation
import HDF5
import Tensors

BLASRuntime.ensureCoreType()
let args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
    return v
}
BLASRuntime.threads = option("--threads", Parallel.threads)
let chunk = option("--chunk", 4096)
guard let path = args.first else { print("usage: sparsebridge-bench-fit DATA.h5"); exit(2) }

do {
    let started = Date()
    let file = try H5File(open: path)
    let xs = try file.openDataset("x"), ys = try file.openDataset("y")
    let n = xs.shape[0], dIn = xs.shape[1], dOut = ys.shape[1]
    var stats = SiteStatistics(dDense: dIn, dSparse: dOut, directions: [.denseToSparse])
    let xb = Tensor(zeros: [chunk, dIn]), yb = Tensor(zeros: [chunk, dOut])
    var x = [Double](repeating: 0, count: chunk * dIn), y = [Double](repeating: 0, count: chunk * dOut)
    var start = 0
    while start < n {
        let rows = min(chunk, n - start)
        try xs.readRows(start, count: rows, into: xb.data)
        try ys.readRows(start, count: rows, into: yb.data)
        for i in 0..<(rows * dIn) { x[i] = Double(xb.data[i]) }
        for i in 0..<(rows * dOut) { y[i] = Double(yb.data[i]) }
        stats.add(dense: Array(x[0..<(rows * dIn)]), sparse: Array(y[0..<(rows * dOut)]), rows: rows)
        start += rows
    }
    let empty = SiteStatistics(dDense: dIn, dSparse: dOut, directions: [.denseToSparse])
    let fit = try RidgeSolver.fit(train: stats, heldout: empty, direction: .denseToSparse, ridge: .fixed(0), site: "bench")
    let seconds = Date().timeIntervalSince(started)
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    print(#"{"what": "fit", "engine": "sparsebridge", "threads": \#(BLASRuntime.threads), "seconds": \#(seconds), "peak_rss_mb": \#(Double(usage.ru_maxrss) / 1024), "w00": \#(fit.weight[0])}"#)
} catch {
    FileHandle.standardError.write(Data("sparsebridge-bench-fit: \(error)\n".utf8))
    exit(1)
}
