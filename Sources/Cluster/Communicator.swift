// The processes of one job and the few collective operations capture and fitting need:
// a rank, a size, an element-wise sum, and a way to end the whole job after one rank's
// error. A plain run is a job of one process; a build with the `MPI` package trait,
// started by `mpirun`, joins MPI_COMM_WORLD (MPICommunicator.swift).

import Foundation
import Support

public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` on every rank by their element-wise sum over all ranks.
    func sum(_ values: inout [Double]) throws
    /// Ends every process of the job with a non-zero status (after this rank's error).
    func abort(code: Int32) -> Never
    /// Leaves the job normally (every rank must call it once it is done).
    func finish()
}

/// A job of one process: collectives are identities.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ values: inout [Double]) throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finish() {}
}

public struct ClusterError: UserFacingError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Cluster {
    /// The communicator `join()` returned, if any: the error path uses it to end the job.
    nonisolated(unsafe) public private(set) static var current: Communicator?

    /// True when this binary was built with the `MPI` trait.
    public static var mpiBuild: Bool {
        #if MPI
        return true
        #else
        return false
        #endif
    }

    /// Processes of this job according to the launcher (Open MPI's mpirun, or a PMI launcher);
    /// 1 when started directly.
    public static var launchedProcesses: Int {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
            if let v = env[key], let n = Int(v), n > 0 { return n }
        }
        return 1
    }

    /// Processes of this job on this host (they share its cores).
    public static var localProcesses: Int {
        if let v = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"], let n = Int(v), n > 0 { return n }
        return launchedProcesses
    }

    /// Joins the job: MPI_COMM_WORLD under mpirun (MPI builds), else a single process. A build
    /// without MPI started by mpirun would have every process repeat the whole run and race
    /// for the same output, so that is refused.
    public static func join() throws -> Communicator {
        if let current { return current }
        let joined: Communicator
        #if MPI
        joined = launchedProcesses > 1 ? try MPICommunicator.world() : SingleProcess()
        #else
        guard launchedProcesses == 1 else {
            throw ClusterError("started as one of \(launchedProcesses) processes (mpirun), but this sparsebridge was built without "
                    + "MPI; build with `swift build -c release --traits MPI` (docs/scaling.md)")
        }
        joined = SingleProcess()
        #endif
        current = joined
        return joined
    }

    /// Prefix for messages from one rank of a job of several ("rank 1 of 2: ").
    public static var rankPrefix: String {
        guard let c = current, c.size > 1 else { return "" }
        return "rank \(c.rank) of \(c.size): "
    }

    /// Contiguous, balanced share of `count` items for `rank` of `size`, in whole units of
    /// `unit` items (the last unit may be short): the first ranks take one unit more when the
    /// units do not divide evenly. The same on every rank and every run.
    public static func share(of count: Int, rank: Int, size: Int, unit: Int = 1) -> Range<Int> {
        precondition(size > 0 && rank >= 0 && rank < size && unit > 0)
        let units = (count + unit - 1) / unit
        let base = units / size, extra = units % size
        let start = rank * base + min(rank, extra), end = start + base + (rank < extra ? 1 : 0)
        return min(start * unit, count)..<min(end * unit, count)
    }
}
