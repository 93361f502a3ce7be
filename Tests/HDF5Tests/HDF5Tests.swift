// The HDF5 wrapper: datasets of every element type, extendable and compressed datasets,
// attributes, groups, and the errors for missing, foreign and damaged files.

import Foundation
import Testing
import HDF5

@Suite("HDF5 datasets")
struct HDF5DatasetTests {
    @Test("every element type round-trips through a closed and reopened file")
    func elementTypes() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("types.h5")
        let f32: [Float] = [0, -0.0, 1.5, -2.25, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        let f64: [Double] = [.pi, -1e300, .leastNonzeroMagnitude, 0.1]
        let i32: [Int32] = [.min, -1, 0, 1, .max, 42]
        let i64: [Int64] = [.min, .max, -7, 1 << 40, 3]
        let u8: [UInt8] = [0, 1, 127, 128, 254, 255, 9, 10]
        do {
            let file = try H5File(create: path)
            try file.writeDataset("f32", shape: [2, 3], values: f32)
            try file.writeDataset("f64", shape: [4], values: f64)
            try file.writeDataset("i32", shape: [3, 2], values: i32)
            try file.writeDataset("i64", shape: [5], values: i64)
            try file.writeDataset("nested/deeper/u8", shape: [2, 2, 2], values: u8)
            file.closeFile()
        }
        let file = try H5File(open: path)
        let checks: [(String, H5ElementType, [Int])] = [("f32", .float32, [2, 3]), ("f64", .float64, [4]),
                                                         ("i32", .int32, [3, 2]), ("i64", .int64, [5]),
                                                         ("nested/deeper/u8", .uint8, [2, 2, 2])]
        for (name, type, shape) in checks {
            let ds = try file.openDataset(name)
            #expect(ds.elementType == type, "\(name)")
            #expect(ds.shape == shape, "\(name)")
            #expect(ds.count == shape.reduce(1, *))
        }
        let readF32 = try file.openDataset("f32").read(as: Float.self)
        #expect(readF32.map(\.bitPattern) == f32.map(\.bitPattern))  // -0.0 and the subnormal survive bit for bit
        #expect(try file.openDataset("f64").read(as: Double.self) == f64)
        #expect(try file.openDataset("i32").read(as: Int32.self) == i32)
        #expect(try file.openDataset("i64").read(as: Int64.self) == i64)
        #expect(try file.openDataset("nested/deeper/u8").read(as: UInt8.self) == u8)
        // Float64 data read as Float32 converts (both floating point).
        #expect(try file.openDataset("f64").read(as: Float.self) == f64.map { Float($0) })
    }

    @Test("an extendable dataset grows by appended pieces; any row range reads back")
    func extendableRows() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("rows.h5")
        let width = 3
        // Row r holds r·10 + column.
        func rowsData(_ range: Range<Int>) -> [Float] { range.flatMap { r in (0..<width).map { Float(r * 10 + $0) } } }
        do {
            let file = try H5File(create: path)
            let ds = try file.createDataset("acts", type: .float32, shape: [0, width], extendableRows: true, chunkRows: 4)
            #expect(ds.shape == [0, width])
            // Pieces that start and end inside chunks of 4 rows.
            for piece in [0..<5, 5..<7, 7..<17] {
                try rowsData(piece).withUnsafeBufferPointer { try ds.writeRows(piece.lowerBound, count: piece.count,
                                                                               from: $0.baseAddress!) }
                #expect(ds.shape == [piece.upperBound, width])
            }
            // Overwriting rows inside the dataset does not grow it.
            try rowsData(2..<4).withUnsafeBufferPointer { try ds.writeRows(2, count: 2, from: $0.baseAddress!) }
            #expect(ds.shape == [17, width])
            file.closeFile()
        }
        let file = try H5File(open: path)
        let ds = try file.openDataset("acts")
        #expect(ds.shape == [17, width])
        #expect(try ds.read(as: Float.self) == rowsData(0..<17))
        for start in 0...17 {
            for count in 0...(17 - start) {
                var out = [Float](repeating: -1, count: max(1, count * width))
                try out.withUnsafeMutableBufferPointer { try ds.readRows(start, count: count, into: $0.baseAddress!) }
                if count > 0 { #expect(out == rowsData(start..<(start + count)), "rows \(start)..<\(start + count)") }
            }
        }
        var out = [Float](repeating: 0, count: 3 * width)
        let error = #expect(throws: HDF5Error.self) {
            try out.withUnsafeMutableBufferPointer { try ds.readRows(15, count: 3, into: $0.baseAddress!) }
        }
        #expect(error?.message.contains("outside") == true)
        #expect(error?.path == path)
    }

    @Test("resize drops trailing rows and keeps the rest")
    func resize() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("resize.h5")
        let values = (0..<40).map { Int32($0) }
        do {
            let file = try H5File(create: path)
            let ds = try file.createDataset("t", type: .int32, shape: [0, 4], extendableRows: true)
            try values.withUnsafeBufferPointer { try ds.writeRows(0, count: 10, from: $0.baseAddress!) }
            try ds.resize(rows: 6)
            #expect(ds.shape == [6, 4])
            file.closeFile()
        }
        let file = try H5File(open: path, mode: .readWrite)
        let ds = try file.openDataset("t")
        #expect(ds.shape == [6, 4])
        #expect(try ds.read(as: Int32.self) == Array(values[0..<24]))
        // Appending after a resize continues at the new end.
        let more: [Int32] = [100, 101, 102, 103]
        try more.withUnsafeBufferPointer { try ds.writeRows(6, count: 1, from: $0.baseAddress!) }
        #expect(try ds.read(as: Int32.self) == Array(values[0..<24]) + more)
    }

    @Test("datasets and groups keep their file open after the file object is gone")
    func childrenOutliveFileObject() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("owned.h5")
        do {
            let file = try H5File(create: path)
            try file.writeDataset("g/x", shape: [3], values: [Float](arrayLiteral: 1, 2, 3))
            file.closeFile()
        }
        // No variable holds the file: only the dataset / group keeps it alive.
        #expect(try H5File(open: path).openDataset("g/x").read(as: Float.self) == [1, 2, 3])
        let group = try H5File(open: path).openGroup("g")
        #expect(try group.children() == ["x"])
        let ds = try group.openDataset("x")
        #expect(try ds.read(as: Float.self) == [1, 2, 3])
        // An explicit close still closes everything opened from the file.
        let file = try H5File(open: path)
        let held = try file.openDataset("g/x")
        file.closeFile()
        #expect(throws: HDF5Error.self) { _ = try held.read(as: Float.self) }
    }

    @Test("a fixed-size dataset refuses rows past its end")
    func fixedSizeCannotGrow() throws {
        let dir = TemporaryDirectory()
        let file = try H5File(create: dir.file("fixed.h5"))
        let ds = try file.writeDataset("x", shape: [2, 2], values: [Float](repeating: 1, count: 4))
        let values = [Float](repeating: 2, count: 4)
        #expect(throws: HDF5Error.self) {
            try values.withUnsafeBufferPointer { try ds.writeRows(1, count: 2, from: $0.baseAddress!) }
        }
        #expect(throws: HDF5Error.self) { try ds.write([Float](repeating: 0, count: 3)) }
        #expect(try ds.read(as: Float.self) == [1, 1, 1, 1])
    }

    @Test("gzip datasets round-trip and are actually compressed")
    func gzip() throws {
        let dir = TemporaryDirectory()
        let rows = 1000, width = 100
        let values = (0..<(rows * width)).map { Float($0 % 7) }
        let plainPath = dir.file("plain.h5"), zipPath = dir.file("zip.h5")
        for (path, level) in [(plainPath, nil), (zipPath, 6)] as [(String, Int?)] {
            let file = try H5File(create: path)
            let ds = try file.createDataset("x", type: .float32, shape: [rows, width], gzip: level)
            try ds.write(values)
            let grow = try file.createDataset("grow", type: .float32, shape: [0, width], extendableRows: true, gzip: level)
            try values.withUnsafeBufferPointer { p in
                try grow.writeRows(0, count: 600, from: p.baseAddress!)
                try grow.writeRows(600, count: 400, from: p.baseAddress! + 600 * width)
            }
            file.closeFile()
        }
        for path in [plainPath, zipPath] {
            let file = try H5File(open: path)
            #expect(try file.openDataset("x").read(as: Float.self) == values)
            #expect(try file.openDataset("grow").read(as: Float.self) == values)
        }
        let raw = 2 * rows * width * 4
        #expect(fileSize(plainPath) >= raw)
        #expect(fileSize(zipPath) < raw / 10, "gzip file is \(fileSize(zipPath)) bytes for \(raw) raw")
    }

    @Test("reading across the float/integer divide is refused")
    func typeMismatch() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("mismatch.h5")
        let file = try H5File(create: path)
        try file.writeDataset("floats", shape: [3], values: [Float](arrayLiteral: 1.5, 2.5, 3.5))
        try file.writeDataset("ints", shape: [2], values: [Int64](arrayLiteral: 1, 2))
        let error = #expect(throws: HDF5Error.self) { _ = try file.openDataset("floats").read(as: Int32.self) }
        #expect(error?.message.contains("float32") == true && error?.message.contains("int32") == true)
        #expect(error?.path == path)
        #expect(throws: HDF5Error.self) { _ = try file.openDataset("ints").read(as: Float.self) }
        var out = [Int32](repeating: 0, count: 3)
        #expect(throws: HDF5Error.self) {
            try out.withUnsafeMutableBufferPointer { try file.openDataset("floats").readRows(0, count: 3, into: $0.baseAddress!) }
        }
    }
}

@Suite("HDF5 attributes and groups")
struct HDF5AttributeTests {
    @Test("attributes of every kind round-trip on the file, groups and datasets")
    func roundTrip() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("attrs.h5")
        let text = "ü—λ and \"quotes\" {json: [1, 2]}"
        do {
            let file = try H5File(create: path)
            let group = try file.createGroup("g/h")
            let ds = try file.writeDataset("g/data", shape: [1], values: [Float](arrayLiteral: 0))
            for object in [file as H5Object, group, ds] {
                try object.setAttribute("text", text)
                try object.setAttribute("empty", "")
                try object.setAttribute("count", -12_345_678_901)
                try object.setAttribute("ratio", 0.1)
                try object.setAttribute("dims", [3, -1, 1 << 40])
                try object.setAttribute("weights", [1.5, -2.25, 1e-300])
                try object.setAttribute("no_ints", [Int]())
            }
            // Setting again replaces, even with another type.
            try file.setAttribute("count", "now a string")
            file.closeFile()
        }
        let file = try H5File(open: path)
        for object in [file as H5Object, try file.openGroup("g/h"), try file.openDataset("g/data")] {
            #expect(try object.attribute("text") == .string(text))
            #expect(try object.stringAttribute("text") == text)
            #expect(try object.attribute("empty") == .string(""))
            #expect(try object.attribute("ratio") == .double(0.1))
            #expect(try object.doubleAttribute("ratio") == 0.1)
            #expect(try object.attribute("dims") == .ints([3, -1, 1 << 40]))
            #expect(try object.attribute("weights") == .doubles([1.5, -2.25, 1e-300]))
            #expect(try object.attribute("no_ints") == .ints([]))
            #expect(Set(try object.attributeNames()) == ["text", "empty", "count", "ratio", "dims", "weights", "no_ints"])
            #expect(object.hasAttribute("text") && !object.hasAttribute("txt"))
        }
        #expect(try file.attribute("count") == .string("now a string"))
        let group = try file.openGroup("g/h")
        #expect(try group.intAttribute("count") == -12_345_678_901)
        #expect(try group.doubleAttribute("count") == -12_345_678_901)
        #expect(throws: HDF5Error.self) { _ = try group.stringAttribute("count") }
        #expect(throws: HDF5Error.self) { _ = try group.intAttribute("ratio") }
    }

    @Test("a missing attribute throws an error naming the file and the key")
    func missingAttribute() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("noattr.h5")
        let file = try H5File(create: path)
        try file.setAttribute("present", 1)
        let error = #expect(throws: HDF5Error.self) { _ = try file.attribute("absent") }
        #expect(error?.path == path)
        #expect(error?.message.contains("absent") == true)
        #expect(error?.description.hasPrefix(path) == true)
    }

    @Test("children, exists on nested paths, kind(of:), delete")
    func navigation() throws {
        let dir = TemporaryDirectory()
        let file = try H5File(create: dir.file("tree.h5"))
        try file.createGroup("a/b")
        try file.writeDataset("a/b/c", shape: [2], values: [Int32](arrayLiteral: 1, 2))
        try file.writeDataset("a/d", shape: [1], values: [Double](arrayLiteral: 1))
        try file.writeDataset("e", shape: [1], values: [UInt8](arrayLiteral: 1))
        try file.createGroup("Z")  // uppercase sorts first

        #expect(try file.children() == ["Z", "a", "e"])
        #expect(try file.openGroup("a").children() == ["b", "d"])
        #expect(try file.openGroup("a/b").children() == ["c"])
        #expect(try file.openGroup("Z").children() == [])

        #expect(file.exists("a") && file.exists("a/b") && file.exists("a/b/c") && file.exists("a/d"))
        #expect(file.exists("/a/b/c"))
        #expect(!file.exists("a/b/x") && !file.exists("x/y/z") && !file.exists("a/x/c"))
        #expect(!file.exists("a/b/c/d"))  // below a dataset
        #expect(!file.exists(""))
        #expect(try file.openGroup("a").exists("b/c"))

        #expect(try file.kind(of: "a") == .group)
        #expect(try file.kind(of: "a/b") == .group)
        #expect(try file.kind(of: "a/b/c") == .dataset)
        #expect(try file.kind(of: "e") == .dataset)
        #expect(throws: HDF5Error.self) { _ = try file.kind(of: "nope") }

        let notDataset = #expect(throws: HDF5Error.self) { _ = try file.openDataset("a/b") }
        #expect(notDataset?.message.contains("not a dataset") == true)
        let missing = #expect(throws: HDF5Error.self) { _ = try file.openDataset("a/zz") }
        #expect(missing?.message.contains("/a/zz") == true)
        #expect(throws: HDF5Error.self) { _ = try file.openGroup("q") }

        try file.delete("e")
        #expect(!file.exists("e"))
        #expect(try file.children() == ["Z", "a"])
    }
}

@Suite("HDF5 errors")
struct HDF5ErrorTests {
    @Test("a missing path is \"no such file\"")
    func missingFile() {
        let dir = TemporaryDirectory()
        let path = dir.file("absent.h5")
        let error = #expect(throws: HDF5Error.self) { _ = try H5File(open: path) }
        #expect(error == HDF5Error(path: path, message: "no such file"))
    }

    @Test("a text file or a folder is \"not an HDF5 file\"")
    func notHDF5() {
        let dir = TemporaryDirectory()
        let path = dir.file("notes.h5")
        try! "just some text\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: HDF5Error.self) { _ = try H5File(open: path) }
        #expect(error == HDF5Error(path: path, message: "not an HDF5 file"))
        let empty = dir.file("empty.h5")
        writeBytes([], to: empty)
        #expect(throws: HDF5Error.self) { _ = try H5File(open: empty) }
        let folder = #expect(throws: HDF5Error.self) { _ = try H5File(open: dir.path) }
        #expect(folder?.message.contains("directory") == true)
    }

    /// Opens the file and reads every dataset in it.
    static func readEverything(_ path: String) throws -> Int {
        let file = try H5File(open: path)
        var total = 0
        for name in try file.children() {
            total += try file.openDataset(name).read(as: Float.self).count
        }
        return total
    }

    @Test("a truncated file throws an HDF5Error instead of crashing", arguments: ["half", "100 bytes", "most"])
    func truncated(_ how: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("whole.h5")
        do {
            let file = try H5File(create: path)
            try file.setAttribute("format", "test")
            try file.writeDataset("a", shape: [100, 100], values: (0..<10_000).map { Float($0) })
            try file.writeDataset("b", shape: [50, 100], values: (0..<5_000).map { Float(-$0) })
            file.closeFile()
        }
        #expect(try Self.readEverything(path) == 15_000)
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let keep = how == "half" ? bytes.count / 2 : how == "most" ? bytes.count - 16 : 100
        let cut = dir.file("cut.h5")
        writeBytes(Array(bytes.prefix(keep)), to: cut)
        let error = #expect(throws: HDF5Error.self) { _ = try Self.readEverything(cut) }
        #expect(error?.path == cut)
    }
}
