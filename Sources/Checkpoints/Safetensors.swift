// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then
// the raw little-endian tensor bytes. The reader trusts nothing in the header: offsets,
// sizes, overlaps and dtypes are all checked before any byte is read as a tensor.

import Foundation
import HDF5
import Tensors
import Model
import Support

public struct SafetensorsEntry {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    public let begin: Int
    public let end: Int
}

public struct SafetensorsFile {
    public let path: String
    public let entries: [SafetensorsEntry]   // in file-offset order
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    static let elementSizes = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    public init(path: String) throws {
        func bad(_ m: String) -> CheckpointError { .badFile(path: path, ParameterMessage(m)) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw bad("no such file") }
        guard !isDir.boolValue else { throw bad("is a directory, not a safetensors file") }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw bad("cannot read file")
        }
        try self.init(data: data, path: path)
    }

    /// Parses a safetensors file's bytes; `path` names it in errors. Also the fuzzing entry point.
    public init(data: Data, path: String) throws {
        self.path = path
        func bad(_ m: String) -> CheckpointError { .badFile(path: path, ParameterMessage(m)) }
        // Offsets below count from 0; a slice of a larger Data would not.
        let data = data.startIndex == 0 ? data : Data(data)
        self.data = data
        guard data.count >= 8 else { throw bad("too short for a safetensors header (\(data.count) bytes)") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw bad("header length \(headerLength) exceeds the file size \(data.count)")
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = data.count - dataStart
        guard let json = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)),
              let header = json as? [String: Any] else {
            throw bad("header is not a JSON object (not a safetensors file?)")
        }
        var meta: [String: String] = [:]
        var list: [SafetensorsEntry] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw bad("__metadata__ value \(k) is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                  let shape = (e["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (e["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2, shape.count == (e["shape"] as? [Any])?.count else {
                throw bad("tensor \(name): entry needs dtype, shape and data_offsets [begin, end]")
            }
            guard let size = Self.elementSizes[dtype] else { throw bad("tensor \(name): unsupported dtype \(dtype)") }
            guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else { throw bad("tensor \(name): bad shape \(shape)") }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
            }
            guard !overflow, count <= Int.max / 8 else { throw bad("tensor \(name): shape \(shape) is too large") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw bad("tensor \(name): data_offsets [\(begin), \(end)] fall outside the \(dataSize) data bytes")
            }
            guard end - begin == count * size else {
                throw bad("tensor \(name): data_offsets span \(end - begin) bytes but \(dtype) \(shape) needs \(count * size)")
            }
            list.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        list.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.end < $1.end) }
        for (a, b) in zip(list, list.dropFirst()) where b.begin < a.end {
            throw bad("tensors \(a.name) and \(b.name) overlap in the data section")
        }
        entries = list
        metadata = meta
    }

    public func entry(_ name: String) -> SafetensorsEntry? { entries.first { $0.name == name } }

    /// The tensor converted to Float32. Integer dtypes are refused.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else { throw CheckpointError.badFile(path: path, "missing tensor \(name)") }
        let t = Tensor(zeros: e.shape)
        let n = t.count
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress! + dataStart + e.begin
            switch e.dtype {
            case "F32":
                for i in 0..<n { t.data[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case "F64":
                for i in 0..<n { t.data[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            case "BF16":
                for i in 0..<n { t.data[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            case "F16":
                for i in 0..<n { t.data[i] = halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            default:
                throw CheckpointError.badFile(path: path, "tensor \(name) has integer dtype \(e.dtype), expected floating point")
            }
        }
        return t
    }

    /// Writes Float32 tensors (in the given order) and string metadata, atomically.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]]
            offset += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad so tensor data starts aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors {
            for i in 0..<t.count { withUnsafeBytes(of: t.data[i].bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        let output = try AtomicOutput(path)
        do {
            try out.write(to: URL(fileURLWithPath: output.temporaryPath))
            try output.commit()
        } catch let e as FileError {
            throw e
        } catch {
            output.discard()
            // The system's words for a full disk, as the HDF5 writers report it.
            let full = (error as? CocoaError)?.code == .fileWriteOutOfSpace
            throw CheckpointError.badFile(path: path,
                                          "cannot write: \(full ? String(cString: strerror(ENOSPC)) : error.localizedDescription)")
        }
    }
}

/// IEEE half → single precision (subnormals, infinities and NaN included).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        let value = Float(mantissa) * Float(sign == 0 ? 1 : -1) / 16_777_216  // 2^-24
        return value
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}
