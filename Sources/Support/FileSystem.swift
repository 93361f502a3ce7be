// Small file-system helpers shared by every writer: existence checks and the
// write-to-temporary-then-rename rule (nothing half-written under a final name).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public func fileExists(_ path: String, isDirectory: inout Bool) -> Bool {
    var dir: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &dir)
    isDirectory = dir.boolValue
    return exists
}

/// A file (or folder) written under a temporary name beside its final path and renamed into
/// place by `commit()`. If the writer fails (or the process dies) the final path is untouched;
/// `discard()` removes the temporary. While any `AtomicOutput` for a path is alive in this
/// process, the process holds that path's output lock (`OutputLock`): a second process writing
/// the same output is refused instead of interleaving with this one.
public final class AtomicOutput {
    public let finalPath: String
    public let temporaryPath: String
    private var done = false
    private var holdsLock = true
    private let resumable: Bool
    private let folder: Bool

    /// `resumable` gives the temporary a fixed name (`.NAME.partial`) so that a later run can
    /// find and continue it; otherwise the name carries the process id. `folder` makes the
    /// temporary an (empty, created here) folder that `commit()` swaps in for any older one.
    public init(_ finalPath: String, resumable: Bool = false, folder: Bool = false) throws {
        self.finalPath = finalPath
        self.resumable = resumable
        self.folder = folder
        let url = URL(fileURLWithPath: finalPath)
        let dir = url.deletingLastPathComponent().path
        var isDir = false
        if !fileExists(dir, isDirectory: &isDir) || !isDir {
            throw FileError(path: finalPath, message: "output folder \(dir) does not exist")
        }
        self.temporaryPath = dir + "/." + url.lastPathComponent + (resumable ? ".partial" : ".partial-\(getpid())")
        try OutputLock.acquire(finalPath)
        if folder {
            guard mkdir(temporaryPath, 0o755) == 0 else {
                let reason = String(cString: strerror(errno))
                releaseLock()
                throw FileError(path: finalPath, message: "cannot create the folder \(temporaryPath): \(reason)")
            }
        }
    }

    public func commit() throws {
        if folder {
            try commitFolder()
        } else if rename(temporaryPath, finalPath) != 0 {
            let reason = String(cString: strerror(errno))
            discard()
            throw FileError(path: finalPath, message: "cannot move the finished file into place: \(reason)")
        }
        done = true
        releaseLock()
    }

    /// A folder cannot be renamed over a non-empty one: the two are exchanged in one step and
    /// the older one (now at the temporary name) removed.
    private func commitFolder() throws {
        if rename(temporaryPath, finalPath) == 0 { return }
        guard errno == ENOTEMPTY || errno == EEXIST else {
            let reason = String(cString: strerror(errno))
            discard()
            throw FileError(path: finalPath, message: "cannot move the finished folder into place: \(reason)")
        }
        if renameExchange(temporaryPath, finalPath) != 0 {
            // No atomic exchange here (an old kernel, NFS): move the old folder aside first. A
            // kill between the two renames leaves no folder under the final name, never a mix.
            let aside = temporaryPath + ".old"
            guard rename(finalPath, aside) == 0, rename(temporaryPath, finalPath) == 0 else {
                let reason = String(cString: strerror(errno))
                discard()
                throw FileError(path: finalPath, message: "cannot move the finished folder into place: \(reason)")
            }
            try? FileManager.default.removeItem(atPath: aside)
            return
        }
        try? FileManager.default.removeItem(atPath: temporaryPath)
    }

    public func discard() {
        if !done {
            if folder { try? FileManager.default.removeItem(atPath: temporaryPath) } else { unlink(temporaryPath) }
        }
        done = true
        releaseLock()
    }

    /// Leaves the temporary file for a later resume (resumable outputs only).
    public func keepForResume() {
        done = true
        releaseLock()
    }

    public var temporaryExists: Bool {
        var isDir = false
        return fileExists(temporaryPath, isDirectory: &isDir)
    }

    /// Removes the file at `finalPath` under its lock, which also clears the temporaries and
    /// lock file that writers killed while writing it left behind.
    public static func remove(_ finalPath: String) throws {
        let output = try AtomicOutput(finalPath)
        unlink(finalPath)
        output.discard()
    }

    private func releaseLock() {
        if holdsLock { OutputLock.release(finalPath) }
        holdsLock = false
    }

    /// A resumable temporary outlives a failed run (that is its point); others are removed.
    deinit {
        if !resumable { discard() }
        releaseLock()
    }
}

/// One writer per output at a time: an exclusive `flock` on `.NAME.lock` beside the output,
/// taken when the first `AtomicOutput` for NAME is made and released (the lock file removed)
/// when the last one is committed or discarded, or at exit. The kernel drops the lock when
/// its holder dies, so a killed run leaves at most an empty, unlocked `.NAME.lock` behind,
/// never a stale lock. Holding the lock also proves that any `.NAME.partial-PID` temporaries
/// beside the output belong to dead processes; they are removed on taking it.
enum OutputLock {
    private struct Held {
        let lockPath: String
        let fd: Int32
        let device: UInt64
        let inode: UInt64
        var count: Int
    }
    private static var held: [Held] = []
    private static let mutex = NSLock()
    private static let exitHook: Void = { atexit { OutputLock.releaseAll() } }()

    static func lockPath(_ finalPath: String) -> String {
        let url = URL(fileURLWithPath: finalPath)
        return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".lock"
    }

    static func acquire(_ finalPath: String) throws {
        mutex.lock()
        defer { mutex.unlock() }
        _ = exitHook
        let path = lockPath(finalPath)
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw FileError(path: finalPath, message: "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
            }
            var st = stat()
            fstat(fd, &st)
            let device = UInt64(st.st_dev), inode = UInt64(st.st_ino)
            // flock conflicts between two descriptors of one process too: a path this process
            // already holds (under any spelling) is only counted.
            if let k = held.firstIndex(where: { $0.device == device && $0.inode == inode }) {
                close(fd)
                held[k].count += 1
                return
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                if errno != EWOULDBLOCK {
                    // A file system without locks (some FUSE mounts) still gets its outputs.
                    let note = "note: cannot lock \(path) (\(String(cString: strerror(errno)))); a second writer to \(finalPath) "
                            + "would not be refused\n"
                    FileHandle.standardError.write(Data(note.utf8))
                    held.append(Held(lockPath: path, fd: fd, device: device, inode: inode, count: 1))
                    return
                }
                var buffer = [UInt8](repeating: 0, count: 32)
                let n = pread(fd, &buffer, buffer.count, 0)
                close(fd)
                let pid = Int(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
                throw FileError(path: finalPath, message: "is being written by another sparsebridge process"
                                + (pid.map { " (pid \($0))" } ?? "") + "; wait for it to finish or stop it")
            }
            // The previous holder may have removed the file between our open and flock; a lock
            // on an unlinked file protects nothing, so lock whatever is at the path now.
            var now = stat()
            if stat(path, &now) != 0 || UInt64(now.st_dev) != device || UInt64(now.st_ino) != inode {
                close(fd)
                continue
            }
            let pid = Array("\(getpid())\n".utf8)
            ftruncate(fd, 0)
            _ = pwrite(fd, pid, pid.count, 0)
            held.append(Held(lockPath: path, fd: fd, device: device, inode: inode, count: 1))
            removeStaleTemporaries(finalPath)
            return
        }
    }

    static func release(_ finalPath: String) {
        mutex.lock()
        defer { mutex.unlock() }
        let path = lockPath(finalPath)
        var st = stat()
        let found = stat(path, &st) == 0
        guard let k = held.firstIndex(where: {
            $0.lockPath == path || (found && $0.device == UInt64(st.st_dev) && $0.inode == UInt64(st.st_ino))
        }) else { return }
        held[k].count -= 1
        if held[k].count == 0 {
            // Unlinked while still locked: a waiting process then finds a new file (see acquire).
            unlink(held[k].lockPath)
            close(held[k].fd)
            held.remove(at: k)
        }
    }

    static func releaseAll() {
        mutex.lock()
        defer { mutex.unlock() }
        for h in held {
            unlink(h.lockPath)
            close(h.fd)
        }
        held = []
    }

    private static func removeStaleTemporaries(_ finalPath: String) {
        let url = URL(fileURLWithPath: finalPath)
        let dir = url.deletingLastPathComponent().path, prefix = "." + url.lastPathComponent + ".partial-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            let digits = rest.hasSuffix(".old") ? rest.dropLast(4) : rest
            if !digits.isEmpty && digits.allSatisfy(\.isNumber) {
                try? FileManager.default.removeItem(atPath: dir + "/" + name)
            }
        }
    }
}

/// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE), so a finished run folder
/// replaces an older one with no moment where neither is in place. -1 with errno set where the
/// C library, kernel or file system cannot (the caller then falls back to two renames).
/// Looked up at run time: Swift's Glibc module does not declare renameat2 (a GNU extension),
/// and this keeps Support free of a C shim.
private func renameExchange(_ a: String, _ b: String) -> Int32 {
    typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else {  // RTLD_DEFAULT
        errno = ENOSYS
        return -1
    }
    let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */)
}
