// File helpers shared by the test targets.

import Foundation

/// A fresh folder under the system temporary directory, removed when the value dies.
public final class TemporaryDirectory {
    public let path: String

    public init(_ label: String = "hdf5") {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sparsebridge-tests-\(label)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

public func writeBytes(_ bytes: [UInt8], to path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

public func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
}

public func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
