// Small file-system helpers shared by every writer: existence checks and the
// write-to-temporary-then-rename rule (nothing half-written under a final name).

import Foundation

func fileExists(_ path: String, isDirectory: inout Bool) -> Bool {
    var dir: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &dir)
    isDirectory = dir.boolValue
    return exists
}

/// A file written under a temporary name beside its final path and renamed into place
/// by `commit()`. If the writer fails (or the process dies) the final path is untouched;
/// `discard()` removes the temporary.
public final class AtomicOutput {
    public let finalPath: String
    public let temporaryPath: String
    private var done = false
    private let resumable: Bool

    /// `resumable` gives the temporary a fixed name (`.NAME.partial`) so that a later run can
    /// find and continue it; otherwise the name carries the process id.
    public init(_ finalPath: String, resumable: Bool = false) throws {
        self.finalPath = finalPath
        self.resumable = resumable
        let url = URL(fileURLWithPath: finalPath)
        let dir = url.deletingLastPathComponent().path
        var isDir = false
        if !fileExists(dir, isDirectory: &isDir) || !isDir {
            throw HDF5Error(path: finalPath, message: "output folder \(dir) does not exist")
        }
        self.temporaryPath = dir + "/." + url.lastPathComponent + (resumable ? ".partial" : ".partial-\(getpid())")
    }

    public func commit() throws {
        if rename(temporaryPath, finalPath) != 0 {
            let reason = String(cString: strerror(errno))
            discard()
            throw HDF5Error(path: finalPath, message: "cannot move the finished file into place: \(reason)")
        }
        done = true
    }

    public func discard() {
        if !done { unlink(temporaryPath) }
        done = true
    }

    /// Leaves the temporary file for a later resume (resumable outputs only).
    public func keepForResume() { done = true }

    public var temporaryExists: Bool {
        var isDir = false
        return fileExists(temporaryPath, isDirectory: &isDir)
    }

    /// A resumable temporary outlives a failed run (that is its point); others are removed.
    deinit { if !resumable { discard() } }
}
