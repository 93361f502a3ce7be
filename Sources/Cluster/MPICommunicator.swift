// MPI_COMM_WORLD as a Communicator (built only with the `MPI` package trait). Errors return
// to the caller (MPI_ERRORS_RETURN) so that they print as one line naming the rank.

#if MPI
import CMPI
import Foundation

final class MPICommunicator: Communicator {
    let rank: Int
    let size: Int
    private let comm = sb_MPI_COMM_WORLD()
    /// Large sums go in pieces: MPI counts are C ints, and each piece bounds MPI's own buffers.
    static let maximumPiece = 1 << 24

    private init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    static func world() throws -> MPICommunicator {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { try check(MPI_Init(nil, nil), "MPI_Init") }
        let comm = sb_MPI_COMM_WORLD()
        try check(MPI_Comm_set_errhandler(comm, sb_MPI_ERRORS_RETURN()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &size), "MPI_Comm_size")
        return MPICommunicator(rank: Int(rank), size: Int(size))
    }

    func sum(_ values: inout [Double]) throws {
        // Every rank must pass the same length, or MPI would mismatch the pieces.
        var length = [Double(values.count)], longest = length
        try check(MPI_Allreduce(&length, &longest, 1, sb_MPI_DOUBLE(), sb_MPI_MAX(), comm), "MPI_Allreduce")
        guard longest[0] == length[0] else {
            throw ClusterError("ranks disagree on the statistics' size (\(values.count) here, \(Int(longest[0])) elsewhere)")
        }
        try values.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            while start < buffer.count {
                let n = min(Self.maximumPiece, buffer.count - start)
                try Self.check(MPI_Allreduce(sb_MPI_IN_PLACE(), buffer.baseAddress! + start, Int32(n), sb_MPI_DOUBLE(),
                                             sb_MPI_SUM(), comm), "MPI_Allreduce")
                start += n
            }
        }
    }

    func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)  // MPI_Abort does not return; this satisfies the type checker
    }

    func finish() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    private func check(_ code: Int32, _ call: String) throws { try Self.check(code, call) }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code != sb_MPI_SUCCESS() else { return }
        var text = [CChar](repeating: 0, count: Int(sb_MPI_MAX_ERROR_STRING()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        throw ClusterError("\(call) failed: \(String(cString: text))")
    }
}
#endif
