// Files, groups and datasets share one base: an open HDF5 id that closes itself, the
// file path for error messages, and attributes.

import CHDF5
import Support

public class H5Object {
    public let id: hid_t
    /// The file this object lives in (for error messages).
    public let filePath: String
    /// The object's path inside the file ("/" for the root group).
    public let name: String

    init(id: hid_t, filePath: String, name: String) {
        self.id = id
        self.filePath = filePath
        self.name = name
    }

    deinit { close() }

    func close() {
        if H5Iis_valid(id) > 0 { H5Oclose(id) }
    }

    func child(_ component: String) -> String {
        name == "/" ? "/" + component : name + "/" + component
    }

    func fail(_ message: String) -> HDF5Error {
        HDF5Error(path: filePath, message: message)
    }

    /// The object this one was opened from, kept alive with it: a dataset or group must not
    /// outlive its file (whose "strong" close would invalidate it).
    private var owner: H5Object?

    /// Records `self` as the owner of a newly opened child.
    func adopt<T: H5Object>(_ object: T) -> T {
        object.owner = self
        return object
    }
}

/// A group: a folder of datasets and groups. The file itself is the root group.
public class H5Group: H5Object {
    /// True when `path` (relative, may contain "/") names an existing object.
    public func exists(_ path: String) -> Bool {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            if H5Lexists(id, prefix, sb_H5P_DEFAULT()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    public func openGroup(_ path: String) throws -> H5Group {
        guard exists(path) else { throw fail("missing group \(child(path))") }
        let gid = try check(H5Gopen2(id, path, sb_H5P_DEFAULT()), "cannot open group \(child(path))", path: filePath)
        return adopt(H5Group(id: gid, filePath: filePath, name: child(path)))
    }

    /// Creates `path` and any missing parents. Objects record no modification times, so the
    /// same content always makes the same file bytes (reproducible outputs).
    @discardableResult
    public func createGroup(_ path: String) throws -> H5Group {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            if exists(prefix) { continue }
            let gcpl = H5Pcreate(sb_H5P_GROUP_CREATE())
            defer { H5Pclose(gcpl) }
            H5Pset_obj_track_times(gcpl, false)
            let gid = try check(H5Gcreate2(id, prefix, sb_H5P_DEFAULT(), gcpl, sb_H5P_DEFAULT()),
                                "cannot create group \(child(prefix))", path: filePath)
            H5Gclose(gid)
        }
        return try openGroup(path)
    }

    /// Names of the direct children, in creation-independent (alphabetical) order.
    public func children() throws -> [String] {
        var info = H5G_info_t()
        try check(H5Gget_info(id, &info), "cannot list \(name)", path: filePath)
        var names: [String] = []
        for i in 0..<info.nlinks {
            let len = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, sb_H5P_DEFAULT())
            try check(len, "cannot read a link name in \(name)", path: filePath)
            var buffer = [CChar](repeating: 0, count: Int(len) + 1)
            H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, sb_H5P_DEFAULT())
            names.append(String(cString: buffer))
        }
        return names
    }

    public enum ChildKind { case group, dataset, other }

    public func kind(of path: String) throws -> ChildKind {
        guard exists(path) else { throw fail("missing \(child(path))") }
        let oid = try check(H5Oopen(id, path, sb_H5P_DEFAULT()), "cannot open \(child(path))", path: filePath)
        defer { H5Oclose(oid) }
        switch H5Iget_type(oid) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    public func delete(_ path: String) throws {
        try check(H5Ldelete(id, path, sb_H5P_DEFAULT()), "cannot delete \(child(path))", path: filePath)
    }
}

/// An HDF5 file, open for reading, or created for writing.
public final class H5File: H5Group {
    public enum Mode { case readOnly, readWrite }

    /// Opens an existing file. A missing, non-HDF5 or damaged file throws an error naming the path.
    public init(open path: String, mode: Mode = .readOnly) throws {
        HDF5Library.prepareThread()
        var isDir: Bool = false
        if !fileExists(path, isDirectory: &isDir) { throw HDF5Error(path: path, message: "no such file") }
        if isDir { throw HDF5Error(path: path, message: "is a directory, not an HDF5 file") }
        if H5Fis_hdf5(path) <= 0 {
            _ = HDF5Library.lastError()
            throw HDF5Error(path: path, message: "not an HDF5 file")
        }
        try MetadataProbe.check(path)
        let fapl = H5File.accessList()
        defer { H5Pclose(fapl) }
        let flags = mode == .readOnly ? sb_H5F_ACC_RDONLY() : sb_H5F_ACC_RDWR()
        let fid = try check(H5Fopen(path, flags, fapl), "cannot open", path: path)
        super.init(id: fid, filePath: path, name: "/")
    }

    /// Creates (or truncates) a file.
    public init(create path: String) throws {
        HDF5Library.prepareThread()
        let fapl = H5File.accessList()
        defer { H5Pclose(fapl) }
        // The 1.8 format checksums the superblock and every object header, and HDF5 verifies
        // them on read: a damaged header is refused with an error. The original format has no
        // checksums, and libhdf5 1.10 reads some damaged headers out of bounds and crashes
        // (found by fuzzing, docs/reliability.md). Not the 1.10 superblock: it marks the file
        // open for writing, and a writer killed mid-run would leave it unopenable for --resume.
        // 1.10 objects (virtual datasets) are still allowed.
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110)
        // The 1.8 format's object headers have room for time stamps: none for the root group
        // either (groups and datasets are made without), so the same run writes the same bytes.
        let fcpl = H5Pcreate(sb_H5P_FILE_CREATE())
        defer { H5Pclose(fcpl) }
        H5Pset_obj_track_times(fcpl, false)
        let fid = try check(H5Fcreate(path, sb_H5F_ACC_TRUNC(), fcpl, fapl), "cannot create", path: path)
        super.init(id: fid, filePath: path, name: "/")
    }

    /// Closing the file closes every object still open in it ("strong" close), so that a
    /// file renamed into place after `close()` is complete on disk.
    private static func accessList() -> hid_t {
        let fapl = H5Pcreate(sb_H5P_FILE_ACCESS())
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
        return fapl
    }

    /// Writes everything buffered to disk.
    public func flush() throws {
        try check(H5Fflush(id, H5F_SCOPE_GLOBAL), "cannot flush", path: filePath)
    }

    override func close() {
        if H5Iis_valid(id) > 0 { H5Fclose(id) }
    }

    public func closeFile() { close() }
}
