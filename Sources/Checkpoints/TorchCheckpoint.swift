// A PyTorch checkpoint (`torch.save(state_dict, "final_model.pt")`, the zip format of
// PyTorch ≥ 1.6): a zip archive `<name>/data.pkl` (the pickled dict of tensors),
// `<name>/byteorder`, and one raw little-endian storage per `<name>/data/<key>`.
// The pickle goes through the restricted unpickler (TorchPickle.swift); tensors are read
// from their storages only when asked for, converted to Float32, strides honoured.

import Foundation
import Tensors
import Model
import Support

public struct TorchCheckpoint: TensorArchive {
    public let path: String
    private let archive: ZipArchive
    private let prefix: String
    /// The state_dict's tensors in file order.
    private let refs: [(name: String, tensor: TorchTensorRef)]

    public init(path: String) throws {
        self.path = path
        func bad(_ m: String) -> CheckpointError { .badFile(path: path, ParameterMessage(m)) }
        if let handle = FileHandle(forReadingAtPath: path) {
            let head = handle.readData(ofLength: 2)
            try? handle.close()
            // The legacy format is a bare pickle stream (protocol 2 opens with 0x80 0x02).
            if head.elementsEqual([0x80, 0x02]) {
                throw bad("a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch")
            }
        }
        archive = try ZipArchive(path: path)
        guard let pickle = archive.entries.filter({ $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") })
            .min(by: { $0.name.count < $1.name.count }) else {
            throw bad("no data.pkl in the archive (not a PyTorch checkpoint)")
        }
        prefix = String(pickle.name.dropLast("data.pkl".count))
        if let order = archive.entry(prefix + "byteorder") {
            let value = String(decoding: try archive.read(order), as: UTF8.self)
            guard value == "little" else { throw bad("byteorder is \(value); only little-endian checkpoints are read") }
        }
        refs = try TorchPickle.stateDict(try archive.read(pickle), path: path)
    }

    public var tensorNames: [String] { refs.map(\.name) }

    public func shape(of name: String) -> [Int]? { refs.first { $0.name == name }?.tensor.shape }

    /// The tensor as contiguous Float32 (float64, float16 and bfloat16 storages converted).
    public func tensor(_ name: String) throws -> Tensor {
        func bad(_ m: String) -> CheckpointError { .badFile(path: path, "tensor \(name): \(m)") }
        guard let ref = refs.first(where: { $0.name == name })?.tensor else {
            throw CheckpointError.badFile(path: path, "missing tensor \(name)")
        }
        let storage = ref.storage
        guard let entry = archive.entry(prefix + "data/" + storage.key) else { throw bad("storage \(storage.key) is missing") }
        let size: Int
        switch storage.dtype {
        case .float32: size = 4
        case .float64: size = 8
        case .float16, .bfloat16: size = 2
        }
        guard entry.size == storage.count * size else {
            throw bad("storage \(storage.key) holds \(entry.size) bytes, \(storage.count) elements need \(storage.count * size)")
        }
        let (count, overflow) = ref.shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
        }
        guard !overflow, count <= max(storage.count, 1) else { throw bad("more elements than its storage (expanded views are not read)") }
        let bytes = try archive.read(entry)
        let out = Tensor(zeros: ref.shape)
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress
            func element(_ i: Int) -> Float {
                switch storage.dtype {
                case .float32: return Float(bitPattern: UInt32(littleEndian: base!.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .float64: return Float(Double(bitPattern: UInt64(littleEndian: base!.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                case .float16: return halfToFloat(UInt16(littleEndian: base!.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .bfloat16: return Float(bitPattern: UInt32(UInt16(littleEndian: base!.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            }
            // Walk the view in row-major order: `index` counts dimensions like an odometer.
            var index = [Int](repeating: 0, count: ref.shape.count)
            var at = ref.offset
            for i in 0..<count {
                out.data[i] = element(at)
                var d = ref.shape.count - 1
                while d >= 0 {
                    index[d] += 1; at += ref.strides[d]
                    if index[d] < ref.shape[d] { break }
                    at -= ref.strides[d] * ref.shape[d]; index[d] = 0; d -= 1
                }
            }
        }
        return out
    }
}
