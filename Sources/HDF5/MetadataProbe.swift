// Reading a file's metadata in a separate process before opening it here.
//
// libhdf5 1.10 trusts the parts of a file that no HDF5 format checksums. Fuzzing found files
// whose damaged global heap (where variable-length strings live) makes `H5Aread` copy out of
// bounds or loop forever, and original-format object headers that crash `H5Aexists`, all
// before any check of ours can run (docs/reliability.md). No in-process check can catch a
// crash inside the library, so a program that opens files from elsewhere can have a fresh
// process read each file's metadata first: if that process dies of a signal or does not
// finish, the file is refused as damaged and this process never touches it.
//
// The probe needs an executable that reads a file's metadata when started as
// `command + [path]` (the `sparsebridge` CLI has a hidden `probe-hdf5` subcommand for it), so
// it is off unless a program turns it on; a library user's program opens files directly.

import CHDF5
import Foundation

public enum MetadataProbe {
    /// The command (executable path first) that reads one file's metadata when the file's path
    /// is appended; nil (the default) opens files without a probe.
    nonisolated(unsafe) public static var command: [String]?

    /// How long the probe may read before the file counts as damaged. Reading a healthy
    /// file's metadata takes milliseconds; the allowance is for a machine under load.
    nonisolated(unsafe) public static var timeoutMilliseconds: Int32 = 10_000

    /// What the probe process does: open the file and read every object header and every
    /// attribute value, ignoring errors (the real open reports them).
    public static func readAllMetadata(_ path: String) {
        _ = HDF5Library.ready
        sb_H5_read_all_metadata(path)
    }

    /// "10", "0.3": a timeout as people write it.
    static func seconds(_ milliseconds: Int32) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000)" : "\(Double(milliseconds) / 1000)"
    }

    /// Files already probed in this process, by identity and state: a command that opens
    /// the same model several times pays for one probe.
    private struct Identity: Hashable { var device, inode, size, seconds, nanoseconds: Int }
    private static var survived = Set<Identity>()
    private static let lock = NSLock()

    /// Throws an error naming the file if the probe process crashed or hung on it; returns
    /// when the probe is off, survived the file, or could not be started. `H5File(open:)`
    /// calls it with the settings above.
    public static func check(_ path: String, command: [String]? = MetadataProbe.command,
                      timeoutMilliseconds: Int32 = MetadataProbe.timeoutMilliseconds) throws {
        guard let command, !command.isEmpty else { return }
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // the real open reports a missing file
        let identity = Identity(device: Int(info.st_dev), inode: Int(info.st_ino), size: Int(info.st_size),
                                seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec))
        if lock.withLock({ survived.contains(identity) }) { return }

        let arguments = (command + [path]).map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        var signal: Int32 = 0
        let outcome = (arguments + [nil]).withUnsafeBufferPointer {
            sb_run_probe($0.baseAddress!, timeoutMilliseconds, &signal)
        }
        switch outcome {
        case 1:
            throw HDF5Error(path: path, message: "damaged file: the HDF5 library crashed reading its metadata (signal \(signal))")
        case 2:
            throw HDF5Error(path: path,
                            message: "damaged file: the HDF5 library was still reading its metadata after "
                                    + "\(seconds(timeoutMilliseconds)) s")
        case 0:
            lock.withLock { _ = survived.insert(identity) }
        default:
            break  // not started: open the file as if the probe were off
        }
    }
}
