// Element types we store, and the HDF5 native type for each.

import CHDF5

public enum H5ElementType: String, Sendable {
    case float32, float64, int32, int64, uint8

    var nativeType: hid_t {
        switch self {
        case .float32: sb_H5T_NATIVE_FLOAT()
        case .float64: sb_H5T_NATIVE_DOUBLE()
        case .int32: sb_H5T_NATIVE_INT32()
        case .int64: sb_H5T_NATIVE_INT64()
        case .uint8: sb_H5T_NATIVE_UINT8()
        }
    }

    var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float64, .int64: 8
        case .uint8: 1
        }
    }

    /// The element type of a stored HDF5 type, or nil for types we do not read (strings, compounds…).
    static func of(storedType type: hid_t) -> H5ElementType? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            return size == 4 ? .float32 : size == 8 ? .float64 : nil
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            if size == 1 && !signed { return .uint8 }
            if signed && size == 4 { return .int32 }
            if signed && size == 8 { return .int64 }
            return nil
        default:
            return nil
        }
    }
}

/// Swift element types that map onto an HDF5 native type.
public protocol H5Scalar { static var h5Type: H5ElementType { get } }
extension Float: H5Scalar { public static var h5Type: H5ElementType { .float32 } }
extension Double: H5Scalar { public static var h5Type: H5ElementType { .float64 } }
extension Int32: H5Scalar { public static var h5Type: H5ElementType { .int32 } }
extension Int64: H5Scalar { public static var h5Type: H5ElementType { .int64 } }
extension UInt8: H5Scalar { public static var h5Type: H5ElementType { .uint8 } }
