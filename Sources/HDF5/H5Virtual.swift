// Virtual datasets: one dataset whose rows live in datasets of other files (HDF5 "VDS").
// Sharded activation captures use them so that the shards read as one file, in h5py as
// here. Source files are named relative to the virtual file's folder, so the set of files
// can move together. A missing source reads as the fill value without any error from
// HDF5, so readers check the sources first (`missingVirtualSources`).

import CHDF5
import Foundation

/// Rows taken from a dataset in another file.
public struct VirtualSource: Sendable {
    /// The source file, relative to the virtual file's folder (or absolute).
    public let file: String
    public let dataset: String
    public let rows: Int
    public init(file: String, dataset: String, rows: Int) { self.file = file; self.dataset = dataset; self.rows = rows }
}

extension H5Group {
    /// Creates a dataset of shape [Σ rows] + rowShape whose rows are those of `sources`, in order.
    @discardableResult
    public func createVirtualDataset(_ path: String, type: H5ElementType, rowShape: [Int],
                                     sources: [VirtualSource]) throws -> H5Dataset {
        let total = sources.reduce(0) { $0 + $1.rows }
        var dims = ([total] + rowShape).map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(sb_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        H5Pset_obj_track_times(dcpl, false)
        var offset = 0
        for source in sources where source.rows > 0 {
            var sourceDims = ([source.rows] + rowShape).map { hsize_t($0) }
            let sourceSpace = H5Screate_simple(Int32(sourceDims.count), &sourceDims, nil)
            defer { H5Sclose(sourceSpace) }
            var start = [hsize_t](repeating: 0, count: dims.count)
            start[0] = hsize_t(offset)
            try check(H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &sourceDims, nil),
                      "bad row selection for \(child(path))", path: filePath)
            try check(H5Pset_virtual(dcpl, space, source.file, source.dataset, sourceSpace),
                      "cannot map \(source.file):\(source.dataset) into \(child(path))", path: filePath)
            offset += source.rows
        }
        H5Sselect_all(space)
        if let slash = path.lastIndex(of: "/") { try createGroup(String(path[..<slash])) }
        let did = try check(H5Dcreate2(id, path, type.nativeType, space, sb_H5P_DEFAULT(), dcpl, sb_H5P_DEFAULT()),
                            "cannot create virtual dataset \(child(path))", path: filePath)
        return adopt(H5Dataset(id: did, filePath: filePath, name: child(path)))
    }
}

extension H5Dataset {
    /// The source files of a virtual dataset, as stored (empty for an ordinary dataset).
    public func virtualSourceFiles() throws -> [String] {
        let dcpl = try check(H5Dget_create_plist(id), "cannot read the layout of \(name)", path: filePath)
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_VIRTUAL else { return [] }
        var count = 0
        try check(H5Pget_virtual_count(dcpl, &count), "cannot list the sources of \(name)", path: filePath)
        return try (0..<count).map { i in
            let length = H5Pget_virtual_filename(dcpl, i, nil, 0)
            try check(length, "cannot read a source name of \(name)", path: filePath)
            var buffer = [CChar](repeating: 0, count: length + 1)
            H5Pget_virtual_filename(dcpl, i, &buffer, buffer.count)
            return String(cString: buffer)
        }
    }

    /// Sources of a virtual dataset that cannot be found beside its file (they would read as
    /// fill values).
    public func missingVirtualSources() throws -> [String] {
        let folder = URL(fileURLWithPath: filePath).deletingLastPathComponent().path
        return try Set(virtualSourceFiles()).sorted().filter { file in
            let resolved = file.hasPrefix("/") ? file : folder + "/" + file
            return !FileManager.default.isReadableFile(atPath: resolved)
        }
    }
}
