// What every fuzz target shares: the input as a file (the HDF5, zip and safetensors
// readers open paths, as the CLI does) and the rule for errors that are allowed.

import CLibFuzzer
import Foundation

/// A file in this process's own folder holding the current input. One name is reused:
/// libFuzzer runs inputs one after another in a process.
public enum FuzzInput {
    private static let folder: String = {
        let dir = NSTemporaryDirectory() + "sparsebridge-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzInput.folderPath) }
        return dir
    }()
    private static var folderPath: String { folder }

    /// Writes `data` to `<folder>/<name>` and returns the path.
    public static func file(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> String {
        let path = folder + "/" + name
        let bytes = Data(bytes: data, count: size)
        guard FileManager.default.createFile(atPath: path, contents: bytes) else {
            fatalError("cannot write the fuzz input to \(path)")
        }
        return path
    }
}

/// A reader may refuse an input, but only with an error that names the file (or argument)
/// at fault, as the CLI prints it (through `oneLine`, which keeps it on one line). Anything
/// else stops the fuzzer as a finding.
public func requireCleanError(_ error: Error, naming source: String) {
    let line = "\(error)"
    guard line.contains(source) else { fatalError("error does not name \(source): \(line)") }
}

/// Runs libFuzzer on `target` with this program's arguments, and exits with its status.
public func runFuzzer(_ target: @escaping @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
