// Any model a command is given: a model file (HDF5, Model's ModelFile), or a checkpoint of
// another kind (a circuit_sparsity folder or `.pt`, a safetensors file) imported on the fly,
// as `convert` would. Lives here, not in Model, because it needs every checkpoint reader.

import Foundation
import Model
import Support

public enum ModelLoader {
    /// Loads whatever `path` holds: a checkpoint to import, else a model file.
    public static func load(_ path: String) throws -> LoadedModel {
        if isCheckpoint(path) { return try Checkpoint.load(path) }
        return try ModelFile.load(path)
    }

    /// SHA-256 naming the model a path loads, for activation and bridge files: of the file
    /// itself, or for a circuit_sparsity folder, of its weights file.
    public static func sha256(_ path: String) throws -> String {
        var isDir: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
        return try SHA256.hexDigest(ofFile: isFolder ? try CircuitSparsityLayout.weightsFile(inFolder: path) : path)
    }

    /// A checkpoint to import rather than a model file: a folder, a `.pt` or `.safetensors`
    /// file, or a zip archive (PyTorch's format) under any name.
    public static func isCheckpoint(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return false }  // H5File reports it
        if isDir.boolValue || path.hasSuffix(".pt") || path.hasSuffix(".safetensors") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return handle.readData(ofLength: 4).elementsEqual([0x50, 0x4b, 0x03, 0x04])
    }
}
