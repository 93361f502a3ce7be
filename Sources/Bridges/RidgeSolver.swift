// Ridge regression from sufficient statistics. With the training rows centred,
//   C = Σ (x − x̄)(x − x̄)ᵀ,  Cxy = Σ (x − x̄)(y − ȳ)ᵀ,  W = (C + λI)⁻¹ Cxy,  b = ȳ − x̄ W.
// One eigendecomposition C = V diag(e) Vᵀ serves every λ: W(λ) = V diag(1/(e + λ)) Vᵀ Cxy.
// λ is given relative to the mean eigenvalue (trace(C) / d_in), so it means the same at
// any token count. `auto` tries a grid and keeps the λ with the lowest held-out NMSE.

import Foundation
import Tensors
import Support

public enum RidgeChoice: Equatable, Sendable {
    case auto
    case fixed(Double)   // relative λ

    public static let grid: [Double] = [0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]
}

public struct FittedMap: Sendable {
    public let weight: [Double]      // [d_in, d_out]
    public let bias: [Double]        // [d_out]
    public let lambdaRelative: Double
    public let lambda: Double
    public let nmse: Double          // held-out, centred (= FVU)
    public let nmseUncentered: Double
    public let trainTokens: Int
    public let heldoutTokens: Int
    public let rmsIn: Double         // over the training rows
    public let rmsOut: Double
}

public enum RidgeSolver {
    public static func fit(train: SiteStatistics, heldout: SiteStatistics, direction: BridgeDirection,
                           ridge: RidgeChoice, site: String) throws -> FittedMap {
        let tr = train.moments(direction), ho = heldout.moments(direction)
        let dIn = tr.dIn, dOut = tr.dOut, n = Double(tr.n)
        guard tr.n > 0 else { throw BridgeError.noTokens("no training tokens for \(site)") }
        if case .auto = ridge, ho.n == 0 {
            throw BridgeError.noTokens("\(parameter: "ridge") auto needs held-out tokens (\(parameter: "heldout") > 0), or give "
                    + "\(parameter: "ridge") λ")
        }
        // Centre: C = XᵀX − n x̄ x̄ᵀ, Cxy = XᵀY − n x̄ ȳᵀ.
        let xm = tr.sumX.map { $0 / n }, ym = tr.sumY.map { $0 / n }
        var c = tr.xx, cxy = tr.xy
        for i in 0..<dIn {
            for j in 0..<dIn { c[i * dIn + j] -= n * xm[i] * xm[j] }
            for j in 0..<dOut { cxy[i * dOut + j] -= n * xm[i] * ym[j] }
        }
        let (e, v) = try LinearAlgebra.symmetricEigen(c, n: dIn)
        let scale = max(e.reduce(0, +) / Double(dIn), 1e-300)
        // A = Vᵀ Cxy                                                       [d_in, d_out]
        var a = [Double](repeating: 0, count: dIn * dOut)
        v.withUnsafeBufferPointer { vb in cxy.withUnsafeBufferPointer { cb in a.withUnsafeMutableBufferPointer { ab in
            LinearAlgebra.dgemm(transA: true, m: dIn, n: dOut, k: dIn, a: vb.baseAddress!, lda: dIn, b: cb.baseAddress!,
                                ldb: dOut, c: ab.baseAddress!, ldc: dOut)
        } } }
        let singular = e.first! <= 1e-10 * max(e.last!, 1e-300)

        func solve(_ rel: Double) -> (w: [Double], b: [Double]) {
            let lambda = rel * scale
            var scaled = a
            for i in 0..<dIn {
                let f = 1 / (e[i] + lambda)
                for j in 0..<dOut { scaled[i * dOut + j] *= f }
            }
            var w = [Double](repeating: 0, count: dIn * dOut)
            v.withUnsafeBufferPointer { vb in scaled.withUnsafeBufferPointer { sb in w.withUnsafeMutableBufferPointer { wb in
                LinearAlgebra.dgemm(m: dIn, n: dOut, k: dIn, a: vb.baseAddress!, lda: dIn, b: sb.baseAddress!, ldb: dOut,
                                    c: wb.baseAddress!, ldc: dOut)
            } } }
            var b = ym
            for j in 0..<dOut { for i in 0..<dIn { b[j] -= xm[i] * w[i * dOut + j] } }
            return (w, b)
        }
        func heldoutNMSE(_ w: [Double], _ b: [Double]) -> (Double, Double) {
            guard ho.n > 0 else { return (.nan, .nan) }
            let sse = max(0, ho.squaredError(w: w, b: b))
            return (sse / max(ho.centredTotal, 1e-300), sse / max(ho.traceYY, 1e-300))
        }

        var best: (rel: Double, w: [Double], b: [Double], nmse: (Double, Double))?
        switch ridge {
        case .fixed(let rel):
            if rel == 0 && singular {
                throw BridgeError.singular("\(site) \(direction.mapName): the input covariance is singular (\(tr.n) training "
                        + "tokens for width \(dIn): too few tokens, or channels that never vary); use \(parameter: "ridge") with a "
                        + "positive λ (e.g. 1e-4) or more \(parameter: "tokens")")
            }
            let (w, b) = solve(rel)
            best = (rel, w, b, heldoutNMSE(w, b))
        case .auto:
            for rel in RidgeChoice.grid where !(rel == 0 && singular) {
                let (w, b) = solve(rel)
                let m = heldoutNMSE(w, b)
                if best == nil || m.0 < best!.nmse.0 { best = (rel, w, b, m) }
            }
        }
        let chosen = best!
        return FittedMap(weight: chosen.w, bias: chosen.b, lambdaRelative: chosen.rel, lambda: chosen.rel * scale,
                         nmse: chosen.nmse.0, nmseUncentered: chosen.nmse.1, trainTokens: tr.n, heldoutTokens: ho.n,
                         rmsIn: (tr.traceXX / (n * Double(dIn))).squareRoot(), rmsOut: (tr.traceYY / (n * Double(dOut))).squareRoot())
    }
}

/// The Bridges module's one error type: capture, activation and bridge files, fitting, splicing.
public enum BridgeError: UserFacingError {
    case noTokens(ParameterMessage)
    case singular(ParameterMessage)
    case nonFinite(site: String, row: Int, file: String)
    case mismatch(String)
    case badFile(path: String, ParameterMessage)
    /// A capture or fit request the library refuses (sizes, sites, process counts).
    case badRequest(ParameterMessage)

    public func message(naming name: (String) -> String) -> String {
        switch self {
        case .noTokens(let m), .singular(let m), .badRequest(let m): return m.rendered(naming: name)
        case .mismatch(let m): return m
        case .nonFinite(let site, let row, let file): return "\(file): non-finite value (NaN or Inf) in \(site) at row \(row)"
        case .badFile(let path, let m): return "\(path): \(m.rendered(naming: name))"
        }
    }

    public var description: String { message { $0 } }
}
