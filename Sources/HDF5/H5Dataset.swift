// Datasets: fixed-size arrays, or row-extendable chunked arrays for streamed
// activations. Reads and writes work on whole datasets or on row ranges (hyperslabs
// along the first axis).

import CHDF5

public final class H5Dataset: H5Object {
    /// The stored element type; nil for types we do not read.
    public let elementType: H5ElementType?

    override init(id: hid_t, filePath: String, name: String) {
        let tid = H5Dget_type(id)
        self.elementType = tid >= 0 ? H5ElementType.of(storedType: tid) : nil
        if tid >= 0 { H5Tclose(tid) }
        super.init(id: id, filePath: filePath, name: name)
    }

    public var shape: [Int] {
        let space = H5Dget_space(id)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        if rank <= 0 { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    public var count: Int { shape.reduce(1, *) }

    private func requireType(_ t: H5ElementType) throws {
        guard let e = elementType else { throw fail("dataset \(name) has an unsupported element type") }
        // HDF5 converts between numeric types on read; we refuse float↔int mixing,
        // which would silently truncate.
        let isFloat: (H5ElementType) -> Bool = { $0 == .float32 || $0 == .float64 }
        if isFloat(e) != isFloat(t) {
            throw fail("dataset \(name) holds \(e.rawValue), expected \(t.rawValue)")
        }
    }

    /// Reads the whole dataset.
    public func read<T: H5Scalar>(as: T.Type = T.self) throws -> [T] {
        try requireType(T.h5Type)
        let n = count
        return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0 {
                try check(H5Dread(id, T.h5Type.nativeType, sb_H5S_ALL(), sb_H5S_ALL(), sb_H5P_DEFAULT(), buffer.baseAddress),
                          "cannot read \(name)", path: filePath)
            }
            initialized = n
        }
    }

    /// Reads rows `start ..< start + rows` of the first axis into `out` (room for rows × row size).
    public func readRows<T: H5Scalar>(_ start: Int, count rows: Int, into out: UnsafeMutablePointer<T>) throws {
        try requireType(T.h5Type)
        let dims = shape
        guard !dims.isEmpty, start >= 0, start + rows <= dims[0] else {
            throw fail("rows \(start)..<\(start + rows) outside \(name) of shape \(dims)")
        }
        if rows == 0 { return }
        let (file, memory) = try selection(start: start, rows: rows, dims: dims)
        defer { H5Sclose(file); H5Sclose(memory) }
        try check(H5Dread(id, T.h5Type.nativeType, memory, file, sb_H5P_DEFAULT(), out),
                  "cannot read rows of \(name)", path: filePath)
    }

    /// Writes the whole dataset from `values` (count must match).
    public func write<T: H5Scalar>(_ values: UnsafePointer<T>, count n: Int) throws {
        guard n == count else { throw fail("writing \(n) values into \(name) of shape \(shape)") }
        if n == 0 { return }
        try check(H5Dwrite(id, T.h5Type.nativeType, sb_H5S_ALL(), sb_H5S_ALL(), sb_H5P_DEFAULT(), values),
                  "cannot write \(name)", path: filePath)
    }

    public func write<T: H5Scalar>(_ values: [T]) throws {
        if values.isEmpty { return try write(UnsafePointer<T>(bitPattern: 8)!, count: 0) }
        try values.withUnsafeBufferPointer { try write($0.baseAddress!, count: $0.count) }
    }

    /// Writes rows `start ..< start + rows`, extending the dataset first if they lie past its end.
    public func writeRows<T: H5Scalar>(_ start: Int, count rows: Int, from values: UnsafePointer<T>) throws {
        var dims = shape
        guard !dims.isEmpty else { throw fail("cannot write rows into scalar dataset \(name)") }
        if rows == 0 { return }
        if start + rows > dims[0] {
            dims[0] = start + rows
            var newDims = dims.map { hsize_t($0) }
            try check(H5Dset_extent(id, &newDims), "cannot extend \(name) to \(dims[0]) rows", path: filePath)
        }
        let (file, memory) = try selection(start: start, rows: rows, dims: dims)
        defer { H5Sclose(file); H5Sclose(memory) }
        try check(H5Dwrite(id, T.h5Type.nativeType, memory, file, sb_H5P_DEFAULT(), values),
                  "cannot write rows of \(name)", path: filePath)
    }

    /// Changes the number of rows of an extendable dataset (used when resuming to drop
    /// rows past the last complete batch).
    public func resize(rows: Int) throws {
        var dims = shape.map { hsize_t($0) }
        dims[0] = hsize_t(rows)
        try check(H5Dset_extent(id, &dims), "cannot resize \(name) to \(rows) rows", path: filePath)
    }

    private func selection(start: Int, rows: Int, dims: [Int]) throws -> (file: hid_t, memory: hid_t) {
        let file = H5Dget_space(id)
        var offset = [hsize_t](repeating: 0, count: dims.count)
        offset[0] = hsize_t(start)
        var block = dims.map { hsize_t($0) }
        block[0] = hsize_t(rows)
        try check(H5Sselect_hyperslab(file, H5S_SELECT_SET, &offset, nil, &block, nil),
                  "bad row selection in \(name)", path: filePath)
        let memory = H5Screate_simple(Int32(block.count), &block, nil)
        return (file, memory)
    }
}

extension H5Group {
    /// Creates a dataset. `extendableRows` lets the first axis grow (chunked storage);
    /// `gzip` (0–9) turns on shuffle + deflate compression.
    @discardableResult
    public func createDataset(_ path: String, type: H5ElementType, shape: [Int],
                              extendableRows: Bool = false, chunkRows: Int? = nil,
                              gzip: Int? = nil) throws -> H5Dataset {
        var dims = shape.map { hsize_t($0) }
        var maxDims = dims
        if extendableRows { maxDims[0] = sb_H5S_UNLIMITED() }
        let space = H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(sb_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        if let slash = path.lastIndex(of: "/") { try createGroup(String(path[..<slash])) }
        H5Pset_obj_track_times(dcpl, false)
        // Values are always written before they are read: skip HDF5's fill pass.
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER)
        if extendableRows || gzip != nil {
            // Chunks of at most 1 MiB: HDF5's default chunk cache holds one whole chunk.
            let rowBytes = max(1, shape.dropFirst().reduce(1, *) * type.byteSize)
            let rows = max(1, min(chunkRows ?? (1 << 20) / rowBytes, (1 << 20) / rowBytes))
            var chunk = dims
            chunk[0] = hsize_t(extendableRows ? rows : max(1, min(rows, shape.first ?? 1)))
            for i in 0..<chunk.count where chunk[i] == 0 { chunk[i] = 1 }
            H5Pset_chunk(dcpl, Int32(chunk.count), &chunk)
            if let level = gzip {
                H5Pset_shuffle(dcpl)
                H5Pset_deflate(dcpl, UInt32(level))
            }
        }
        let did = try check(H5Dcreate2(id, path, type.nativeType, space, sb_H5P_DEFAULT(), dcpl, sb_H5P_DEFAULT()),
                            "cannot create dataset \(child(path))", path: filePath)
        return adopt(H5Dataset(id: did, filePath: filePath, name: child(path)))
    }

    public func openDataset(_ path: String) throws -> H5Dataset {
        guard exists(path) else { throw fail("missing dataset \(child(path))") }
        guard try kind(of: path) == .dataset else { throw fail("\(child(path)) is not a dataset") }
        let did = try check(H5Dopen2(id, path, sb_H5P_DEFAULT()), "cannot open dataset \(child(path))", path: filePath)
        return adopt(H5Dataset(id: did, filePath: filePath, name: child(path)))
    }

    /// Creates a fixed-shape dataset holding `values`.
    @discardableResult
    public func writeDataset<T: H5Scalar>(_ path: String, shape: [Int], values: UnsafePointer<T>) throws -> H5Dataset {
        let ds = try createDataset(path, type: T.h5Type, shape: shape)
        try ds.write(values, count: shape.reduce(1, *))
        return ds
    }

    @discardableResult
    public func writeDataset<T: H5Scalar>(_ path: String, shape: [Int], values: [T]) throws -> H5Dataset {
        if values.isEmpty { return try createDataset(path, type: T.h5Type, shape: shape) }
        return try values.withUnsafeBufferPointer { try writeDataset(path, shape: shape, values: $0.baseAddress!) }
    }
}
