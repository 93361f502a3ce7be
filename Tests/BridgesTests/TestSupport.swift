import Foundation
import Testing

/// A fresh folder under the system temporary directory, removed when the value dies.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "hdf5") {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sparsebridge-tests-\(label)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
