// A reader for the zip archives `torch.save` writes: every entry stored (not compressed),
// found through the central directory at the end of the file (zip64 records included, as
// large checkpoints need them). Compressed or encrypted entries are refused rather than
// decoded: PyTorch never writes them, and inflating would need zlib in this module.
// Every offset and size is checked against the file before it is used, and an entry's
// bytes are checked against its CRC-32 when read.

import Foundation
import Model
import Support

public struct ZipEntry: Sendable {
    public let name: String
    public let size: Int
    /// Where the entry's bytes start in the file (after its local header).
    let dataOffset: Int
    let crc32: UInt32
}

public struct ZipArchive {
    public let path: String
    public let entries: [ZipEntry]
    private let data: Data

    public init(path: String) throws {
        self.path = path
        func bad(_ m: String) -> CheckpointError { .badFile(path: path, ParameterMessage(m)) }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw bad("cannot read file")
        }
        self.data = data
        let bytes = ByteReader(data: data, path: path)

        // End of central directory: 22 bytes plus a comment of up to 65535, at the very end.
        let searchStart = max(0, data.count - 22 - 65_535)
        guard let eocd = stride(from: data.count - 22, through: searchStart, by: -1).first(where: {
            bytes.u32($0) == 0x0605_4b50
        }) else { throw bad("not a zip archive (no end-of-central-directory record); not a PyTorch checkpoint") }
        var count = Int(bytes.u16(eocd + 10))
        var directorySize = Int(bytes.u32(eocd + 12))
        var directoryOffset = Int(bytes.u32(eocd + 16))
        if count == 0xffff || directorySize == 0xffff_ffff || directoryOffset == 0xffff_ffff {
            // zip64: a locator just before the EOCD points at the zip64 EOCD record.
            let locator = eocd - 20
            guard locator >= 0, bytes.u32(locator) == 0x0706_4b50 else { throw bad("zip64 locator missing") }
            let record = try bytes.int64(locator + 8)
            guard record >= 0, record + 56 <= data.count, bytes.u32(record) == 0x0606_4b50 else {
                throw bad("zip64 end-of-central-directory record missing")
            }
            count = try bytes.int64(record + 32)
            directorySize = try bytes.int64(record + 40)
            directoryOffset = try bytes.int64(record + 48)
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset + directorySize <= data.count,
              count <= directorySize / 46 else {
            throw bad("central directory lies outside the file")
        }

        var list: [ZipEntry] = []
        var p = directoryOffset
        for _ in 0..<count {
            guard p + 46 <= directoryOffset + directorySize, bytes.u32(p) == 0x0201_4b50 else {
                throw bad("corrupt central directory entry at byte \(p)")
            }
            let flags = bytes.u16(p + 8), method = bytes.u16(p + 10)
            let crc = bytes.u32(p + 16)
            var compressed = Int(bytes.u32(p + 20)), size = Int(bytes.u32(p + 24))
            let nameLength = Int(bytes.u16(p + 28)), extraLength = Int(bytes.u16(p + 30))
            let commentLength = Int(bytes.u16(p + 32))
            var localOffset = Int(bytes.u32(p + 42))
            guard p + 46 + nameLength + extraLength + commentLength <= data.count else { throw bad("corrupt central directory") }
            let name = String(decoding: data[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            // zip64 extra field (id 1): the 64-bit values of the fields set to 0xffffffff, in order.
            var q = p + 46 + nameLength
            let extraEnd = q + extraLength
            while q + 4 <= extraEnd {
                let id = bytes.u16(q), length = Int(bytes.u16(q + 2))
                if id == 1 {
                    var r = q + 4
                    if size == 0xffff_ffff { size = try bytes.int64(r); r += 8 }
                    if compressed == 0xffff_ffff { compressed = try bytes.int64(r); r += 8 }
                    if localOffset == 0xffff_ffff { localOffset = try bytes.int64(r) }
                }
                q += 4 + length
            }
            if flags & 1 != 0 { throw bad("entry \(name) is encrypted") }
            guard method == 0 else {
                throw bad("entry \(name) is compressed (method \(method)); only stored entries are read, as torch.save writes them")
            }
            guard compressed == size else { throw bad("entry \(name): stored sizes disagree") }
            guard localOffset >= 0, localOffset + 30 <= data.count, bytes.u32(localOffset) == 0x0403_4b50 else {
                throw bad("entry \(name): local header missing")
            }
            let dataOffset = localOffset + 30 + Int(bytes.u16(localOffset + 26)) + Int(bytes.u16(localOffset + 28))
            guard size >= 0, dataOffset + size <= data.count else { throw bad("entry \(name) runs past the end of the file") }
            list.append(ZipEntry(name: name, size: size, dataOffset: dataOffset, crc32: crc))
            p += 46 + nameLength + extraLength + commentLength
        }
        entries = list
    }

    public func entry(_ name: String) -> ZipEntry? { entries.first { $0.name == name } }

    /// An entry's bytes, checked against its CRC-32.
    public func read(_ entry: ZipEntry) throws -> Data {
        let bytes = data.subdata(in: entry.dataOffset..<(entry.dataOffset + entry.size))
        guard CRC32.checksum(bytes) == entry.crc32 else {
            throw CheckpointError.badFile(path: path, "entry \(entry.name) fails its CRC-32 check (file damaged)")
        }
        return bytes
    }
}

/// Little-endian reads at byte offsets the caller has bounds-checked (u16/u32 return 0 past the end).
struct ByteReader {
    let data: Data
    let path: String

    func u16(_ at: Int) -> UInt16 {
        guard at >= 0, at + 2 <= data.count else { return 0 }
        return UInt16(data[data.startIndex + at]) | UInt16(data[data.startIndex + at + 1]) << 8
    }

    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }

    /// A 64-bit size or offset; values that cannot be one are an error.
    func int64(_ at: Int) throws -> Int {
        guard at >= 0, at + 8 <= data.count else { throw CheckpointError.badFile(path: path, "zip record truncated") }
        let v = UInt64(u32(at)) | UInt64(u32(at + 4)) << 32
        guard v < UInt64(Int.max / 2) else { throw CheckpointError.badFile(path: path, "zip size or offset \(v) is out of range") }
        return Int(v)
    }
}

enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
    }

    static func checksum(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        data.withUnsafeBytes { raw in
            for byte in raw { c = table[Int((c ^ UInt32(byte)) & 0xff)] ^ (c >> 8) }
        }
        return c ^ 0xffff_ffff
    }
}
