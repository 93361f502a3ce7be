// Attributes on files, groups and datasets: UTF-8 strings (variable length, as h5py
// writes them; fixed-length ones are read too), integers, floats and numeric arrays.

import CHDF5

public enum H5AttributeValue: Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case ints([Int])
    case doubles([Double])
}

extension H5Object {
    public func hasAttribute(_ key: String) -> Bool { H5Aexists(id, key) > 0 }

    public func attributeNames() throws -> [String] {
        var names: [String] = []
        var info = H5O_info_t()
        try check(H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "cannot list attributes of \(name)", path: filePath)
        for i in 0..<info.num_attrs {
            let len = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, sb_H5P_DEFAULT())
            try check(len, "cannot read an attribute name of \(name)", path: filePath)
            var buffer = [CChar](repeating: 0, count: Int(len) + 1)
            H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, sb_H5P_DEFAULT())
            names.append(String(cString: buffer))
        }
        return names
    }

    private func replaceAttribute(_ key: String, type: hid_t, dims: [Int]?) throws -> hid_t {
        if H5Aexists(id, key) > 0 { H5Adelete(id, key) }
        let space: hid_t
        if var d = dims?.map({ hsize_t($0) }) {
            space = H5Screate_simple(Int32(d.count), &d, nil)
        } else {
            space = H5Screate(H5S_SCALAR)
        }
        defer { H5Sclose(space) }
        return try check(H5Acreate2(id, key, type, space, sb_H5P_DEFAULT(), sb_H5P_DEFAULT()),
                         "cannot create attribute \(key) on \(name)", path: filePath)
    }

    public func setAttribute(_ key: String, _ value: String) throws {
        let type = H5Tcopy(sb_H5T_C_S1())
        defer { H5Tclose(type) }
        H5Tset_size(type, sb_H5T_VARIABLE())
        H5Tset_cset(type, H5T_CSET_UTF8)
        let aid = try replaceAttribute(key, type: type, dims: nil)
        defer { H5Aclose(aid) }
        try value.withCString { cstr in
            var pointer: UnsafePointer<CChar>? = cstr
            try check(H5Awrite(aid, type, &pointer), "cannot write attribute \(key) on \(name)", path: filePath)
        }
    }

    public func setAttribute(_ key: String, _ value: Int) throws {
        try setNumeric(key, [Int64(value)], dims: nil)
    }

    public func setAttribute(_ key: String, _ value: Double) throws {
        try setNumeric(key, [value], dims: nil)
    }

    public func setAttribute(_ key: String, _ values: [Int]) throws {
        try setNumeric(key, values.map { Int64($0) }, dims: [values.count])
    }

    public func setAttribute(_ key: String, _ values: [Double]) throws {
        try setNumeric(key, values, dims: [values.count])
    }

    private func setNumeric<T: H5Scalar>(_ key: String, _ values: [T], dims: [Int]?) throws {
        let aid = try replaceAttribute(key, type: T.h5Type.nativeType, dims: dims)
        defer { H5Aclose(aid) }
        _ = try values.withUnsafeBufferPointer { buf in
            try check(H5Awrite(aid, T.h5Type.nativeType, buf.baseAddress), "cannot write attribute \(key) on \(name)", path: filePath)
        }
    }

    /// Reads any attribute we know how to represent.
    public func attribute(_ key: String) throws -> H5AttributeValue {
        guard H5Aexists(id, key) > 0 else { throw fail("missing attribute \(key) on \(name)") }
        let aid = try check(H5Aopen(id, key, sb_H5P_DEFAULT()), "cannot open attribute \(key) on \(name)", path: filePath)
        defer { H5Aclose(aid) }
        let type = H5Aget_type(aid)
        defer { H5Tclose(type) }
        let space = H5Aget_space(aid)
        defer { H5Sclose(space) }
        let n = Int(H5Sget_simple_extent_npoints(space))
        let isScalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
        guard n >= 0, !isScalar || n == 1 else { throw fail("attribute \(key) on \(name) has a damaged dataspace") }

        if H5Tget_class(type) == H5T_STRING {
            guard n == 1 else { throw fail("attribute \(key) on \(name) is an array of strings") }
            if H5Tis_variable_str(type) > 0 {
                let memType = H5Tcopy(sb_H5T_C_S1())
                defer { H5Tclose(memType) }
                H5Tset_size(memType, sb_H5T_VARIABLE())
                H5Tset_cset(memType, H5Tget_cset(type))
                var pointer: UnsafeMutablePointer<CChar>? = nil
                try check(H5Aread(aid, memType, &pointer), "cannot read attribute \(key) on \(name)", path: filePath)
                defer { if let p = pointer { H5free_memory(p) } }
                return .string(pointer.map { String(cString: $0) } ?? "")
            }
            let size = H5Tget_size(type)
            var bytes = [UInt8](repeating: 0, count: size + 1)
            try check(H5Aread(aid, type, &bytes), "cannot read attribute \(key) on \(name)", path: filePath)
            let end = bytes.firstIndex(of: 0) ?? size
            return .string(String(decoding: bytes[..<end], as: UTF8.self))
        }
        switch H5ElementType.of(storedType: type) {
        case .float32?, .float64?:
            var values = [Double](repeating: 0, count: n)
            try check(H5Aread(aid, sb_H5T_NATIVE_DOUBLE(), &values), "cannot read attribute \(key) on \(name)", path: filePath)
            return isScalar ? .double(values[0]) : .doubles(values)
        case .int32?, .int64?, .uint8?:
            var values = [Int64](repeating: 0, count: n)
            try check(H5Aread(aid, sb_H5T_NATIVE_INT64(), &values), "cannot read attribute \(key) on \(name)", path: filePath)
            return isScalar ? .int(Int(values[0])) : .ints(values.map { Int($0) })
        case nil:
            throw fail("attribute \(key) on \(name) has an unsupported type")
        }
    }

    public func stringAttribute(_ key: String) throws -> String {
        guard case .string(let s) = try attribute(key) else { throw fail("attribute \(key) on \(name) is not a string") }
        return s
    }

    public func intAttribute(_ key: String) throws -> Int {
        switch try attribute(key) {
        case .int(let v): return v
        case .ints(let v) where v.count == 1: return v[0]
        default: throw fail("attribute \(key) on \(name) is not an integer")
        }
    }

    public func doubleAttribute(_ key: String) throws -> Double {
        switch try attribute(key) {
        case .double(let v): return v
        case .int(let v): return Double(v)
        case .doubles(let v) where v.count == 1: return v[0]
        default: throw fail("attribute \(key) on \(name) is not a number")
        }
    }
}
