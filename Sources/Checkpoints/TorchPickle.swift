// A restricted unpickler for the `data.pkl` of a PyTorch checkpoint. A pickle is a program
// for a stack machine, and a general unpickler imports and calls whatever the program
// names — so loading an untrusted `.pt` with Python's pickle can run any code. This one
// executes nothing: it knows only the opcodes a state_dict uses, and of the `GLOBAL`s only
// the three that rebuild tensors (an OrderedDict, `torch._utils._rebuild_tensor_v2`, and the
// float storage classes); it builds plain values from them and refuses everything else
// with one line naming the opcode or global and its byte offset.

import Foundation
import Model

/// A dict or list: reference types, as in Python, so a memoised container sees later SETITEMs.
final class PickleDict { var items: [(key: PickleValue, value: PickleValue)] = [] }
final class PickleList { var items: [PickleValue] = [] }

// Nesting is bounded so that tearing the values down (recursively) cannot exhaust the stack:
// tuples are immutable and carry their depth; dicts and lists may be filled after they are
// nested, so the machine empties them one by one before it returns.

/// Where a tensor's elements live: `archive/data/<key>` in the zip.
struct TorchStorage: Equatable {
    enum DType: String { case float32 = "FloatStorage", float64 = "DoubleStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage" }
    let key: String
    let dtype: DType
    let count: Int
}

/// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)`, not yet materialised.
struct TorchTensorRef {
    let storage: TorchStorage
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String)
    case tuple([PickleValue], depth: Int)
    case dict(PickleDict)
    case list(PickleList)
    /// One of the allowed globals (by qualified name), not yet called.
    case global(String)
    case storage(TorchStorage)
    case tensor(TorchTensorRef)
    case mark
}

enum TorchPickle {
    static let orderedDict = "collections.OrderedDict"
    static let rebuildTensor = "torch._utils._rebuild_tensor_v2"
    static let allowedGlobals: Set<String> = Set([orderedDict, rebuildTensor] + ["FloatStorage", "DoubleStorage", "HalfStorage",
                                                                                 "BFloat16Storage"].map { "torch." + $0 })

    /// Runs the pickle program and returns its result. `path` names the file in errors.
    static let maxTupleDepth = 32

    /// Runs the pickle program, which must produce a dict of tensors (a state_dict), and
    /// returns its entries in order. `path` names the file in errors.
    static func stateDict(_ bytes: Data, path: String) throws -> [(name: String, tensor: TorchTensorRef)] {
        var machine = Machine(bytes: [UInt8](bytes), path: path)
        defer { machine.releaseContainers() }
        guard case .dict(let dict) = try machine.run() else {
            throw CheckpointError.badFile(path: path, "the pickle holds no dict of tensors (not a state_dict)")
        }
        return try dict.items.map { key, value in
            guard case .string(let name) = key else { throw CheckpointError.badFile(path: path, "state_dict key is not a string") }
            guard case .tensor(let ref) = value else { throw CheckpointError.badFile(path: path,
                                                                                     "state_dict entry \(name) is not a tensor") }
            return (name, ref)
        }
    }

    struct Machine {
        let bytes: [UInt8]
        let path: String
        var pos = 0
        var stack: [PickleValue] = []
        var memo: [Int: PickleValue] = [:]
        /// Every dict and list made, emptied one by one at the end (see the note above).
        var containers: [AnyObject] = []

        func fail(_ m: String) -> CheckpointError { .badFile(path: path, "pickle: \(m)") }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, pos + n <= bytes.count else { throw fail("truncated at byte \(pos)") }
            defer { pos += n }
            return bytes[pos..<(pos + n)]
        }

        mutating func uint(_ n: Int) throws -> Int {
            try take(n).reversed().reduce(0) { $0 << 8 | Int($1) }
        }

        mutating func line() throws -> String {
            guard let end = bytes[pos...].firstIndex(of: 0x0a) else { throw fail("unterminated GLOBAL at byte \(pos)") }
            defer { pos = end + 1 }
            return String(decoding: bytes[pos..<end], as: UTF8.self)
        }

        mutating func pop() throws -> PickleValue {
            guard let v = stack.popLast() else { throw fail("stack underflow at byte \(pos)") }
            if case .mark = v { throw fail("unexpected MARK at byte \(pos)") }
            return v
        }

        /// The items pushed since the last MARK, which is removed.
        mutating func popToMark() throws -> [PickleValue] {
            guard let m = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else {
                throw fail("no MARK before byte \(pos)")
            }
            let items = Array(stack[(m + 1)...])
            stack.removeSubrange(m...)
            return items
        }

        mutating func string(_ length: Int) throws -> String {
            guard let s = String(bytes: try take(length), encoding: .utf8) else { throw fail("invalid UTF-8 at byte \(pos)") }
            return s
        }

        mutating func global(_ module: String, _ name: String, at offset: Int) throws -> PickleValue {
            let qualified = module + "." + name
            guard TorchPickle.allowedGlobals.contains(qualified) else {
                throw fail("refused global \(qualified) at byte \(offset): only a tensor state_dict is read (OrderedDict, "
                        + "_rebuild_tensor_v2, float storages); nothing is imported or run")
            }
            return .global(qualified)
        }

        mutating func run() throws -> PickleValue {
            while true {
                let offset = pos
                let op = try take(1).first!
                switch op {
                case 0x80: _ = try take(1)                                    // PROTO
                case 0x95: _ = try take(8)                                    // FRAME
                case 0x28: stack.append(.mark)                                // MARK
                case 0x2e: return try pop()                                   // STOP
                case 0x29: stack.append(.tuple([], depth: 1))                 // EMPTY_TUPLE
                case 0x74: stack.append(try tuple(try popToMark(), at: offset))  // TUPLE
                case 0x85, 0x86, 0x87:                                        // TUPLE1/2/3
                    var items: [PickleValue] = []
                    for _ in 0..<Int(op - 0x84) { items.insert(try pop(), at: 0) }
                    stack.append(try tuple(items, at: offset))
                case 0x7d: stack.append(.dict(newDict()))                     // EMPTY_DICT
                case 0x5d:                                                    // EMPTY_LIST
                    let list = PickleList()
                    containers.append(list)
                    stack.append(.list(list))
                case 0x73:                                                    // SETITEM
                    let value = try pop(), key = try pop()
                    try dictOnTop(offset).items.append((key, value))
                case 0x75:                                                    // SETITEMS
                    let items = try popToMark()
                    guard items.count % 2 == 0 else { throw fail("odd SETITEMS at byte \(offset)") }
                    let dict = try dictOnTop(offset)
                    for i in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[i], items[i + 1])) }
                case 0x61:                                                    // APPEND
                    let v = try pop()
                    try listOnTop(offset).items.append(v)
                case 0x65:                                                    // APPENDS
                    let items = try popToMark()
                    try listOnTop(offset).items += items
                case 0x58: stack.append(.string(try string(try uint(4))))    // BINUNICODE
                case 0x8c: stack.append(.string(try string(try uint(1))))    // SHORT_BINUNICODE
                case 0x8d: stack.append(.string(try string(try uint(8))))    // BINUNICODE8
                case 0x4a: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
                case 0x4b: stack.append(.int(try uint(1)))                    // BININT1
                case 0x4d: stack.append(.int(try uint(2)))                    // BININT2
                case 0x8a:                                                    // LONG1
                    let n = try uint(1)
                    guard n <= 8 else { throw fail("integer of \(n) bytes at byte \(offset)") }
                    let raw = try take(n)
                    var v = raw.reversed().reduce(Int(0)) { $0 << 8 | Int($1) }
                    if n > 0, n < 8, raw.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                    stack.append(.int(v))
                case 0x47:                                                    // BINFLOAT (big-endian)
                    stack.append(.float(Double(bitPattern: UInt64(try take(8).reduce(0) { $0 << 8 | Int($1) }))))
                case 0x4e: stack.append(.none)                                // NONE
                case 0x88: stack.append(.bool(true))                          // NEWTRUE
                case 0x89: stack.append(.bool(false))                         // NEWFALSE
                case 0x71: memo[try uint(1)] = try top(offset)                // BINPUT
                case 0x72: memo[try uint(4)] = try top(offset)                // LONG_BINPUT
                case 0x94: memo[memo.count] = try top(offset)                 // MEMOIZE
                case 0x68, 0x6a:                                              // BINGET, LONG_BINGET
                    let i = try uint(op == 0x68 ? 1 : 4)
                    guard let v = memo[i] else { throw fail("memo \(i) is empty at byte \(offset)") }
                    stack.append(v)
                case 0x63:                                                    // GLOBAL
                    let module = try line(), name = try line()
                    stack.append(try global(module, name, at: offset))
                case 0x93:                                                    // STACK_GLOBAL
                    guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                        throw fail("STACK_GLOBAL without strings at byte \(offset)")
                    }
                    stack.append(try global(module, name, at: offset))
                case 0x51: stack.append(try persistentLoad(try pop(), at: offset))  // BINPERSID
                case 0x52:                                                    // REDUCE
                    let args = try pop(), callable = try pop()
                    stack.append(try call(callable, args, at: offset))
                case 0x62:                                                    // BUILD
                    // Only state_dict's `_metadata` (module versions) arrives here; it is data, kept out.
                    let state = try pop()
                    guard case .dict = try top(offset), case .dict = state else {
                        throw fail("BUILD on something other than a dict at byte \(offset)")
                    }
                default:
                    throw fail(String(format: "unsupported opcode 0x%02x at byte %d (not a tensor state_dict)", op, offset))
                }
            }
        }

        func tuple(_ items: [PickleValue], at offset: Int) throws -> PickleValue {
            let depth = 1 + items.map { if case .tuple(_, let d) = $0 { return d }; return 0 }.max()!
            guard depth <= TorchPickle.maxTupleDepth else {
                throw fail("tuples nested deeper than \(TorchPickle.maxTupleDepth) at byte \(offset)")
            }
            return .tuple(items, depth: depth)
        }

        mutating func newDict() -> PickleDict {
            let dict = PickleDict()
            containers.append(dict)
            return dict
        }

        mutating func releaseContainers() {
            stack.removeAll()
            memo.removeAll()
            for c in containers {
                (c as? PickleDict)?.items.removeAll()
                (c as? PickleList)?.items.removeAll()
            }
            containers.removeAll()
        }

        func top(_ offset: Int) throws -> PickleValue {
            guard let v = stack.last else { throw fail("stack underflow at byte \(offset)") }
            return v
        }

        func dictOnTop(_ offset: Int) throws -> PickleDict {
            guard case .dict(let d) = try top(offset) else { throw fail("SETITEM on a non-dict at byte \(offset)") }
            return d
        }

        func listOnTop(_ offset: Int) throws -> PickleList {
            guard case .list(let l) = try top(offset) else { throw fail("APPEND on a non-list at byte \(offset)") }
            return l
        }

        /// `('storage', torch.XStorage, key, location, numel)` → a storage reference.
        func persistentLoad(_ pid: PickleValue, at offset: Int) throws -> PickleValue {
            guard case .tuple(let t, _) = pid, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
                  case .string(let key) = t[2], case .int(let count) = t[4], count >= 0,
                  let dtype = TorchStorage.DType(rawValue: String(type.dropFirst("torch.".count))) else {
                throw fail("unsupported persistent id at byte \(offset) (expected a float storage)")
            }
            return .storage(TorchStorage(key: key, dtype: dtype, count: count))
        }

        mutating func call(_ callable: PickleValue, _ args: PickleValue, at offset: Int) throws -> PickleValue {
            guard case .global(let name) = callable, case .tuple(let a, _) = args else {
                throw fail("REDUCE on something other than an allowed global at byte \(offset)")
            }
            switch name {
            case orderedDict:
                guard a.isEmpty else { throw fail("OrderedDict with arguments at byte \(offset)") }
                return .dict(newDict())
            case rebuildTensor:
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                guard (6...7).contains(a.count), case .storage(let storage) = a[0], case .int(let start) = a[1],
                      case .tuple(let size, _) = a[2], case .tuple(let stride, _) = a[3] else {
                    throw fail("malformed _rebuild_tensor_v2 arguments at byte \(offset)")
                }
                let shape = size.compactMap { if case .int(let v) = $0 { return v }; return nil }
                let strides = stride.compactMap { if case .int(let v) = $0 { return v }; return nil }
                guard shape.count == size.count, strides.count == shape.count, start >= 0,
                      shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
                    throw fail("malformed tensor size or stride at byte \(offset)")
                }
                // The last element the view reaches must lie inside the storage (overflow-checked:
                // the numbers come from the file).
                if !shape.contains(0) {
                    var last = start, overflow = false
                    for (n, s) in zip(shape, strides) {
                        let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
                        let (sum, o2) = last.addingReportingOverflow(step)
                        last = sum; overflow = overflow || o1 || o2
                    }
                    guard !overflow, last < storage.count else { throw fail("tensor view runs past its storage at byte \(offset)") }
                }
                return .tensor(TorchTensorRef(storage: storage, offset: start, shape: shape, strides: strides))
            default:
                throw fail("\(name) cannot be called at byte \(offset)")
            }
        }
    }
}
