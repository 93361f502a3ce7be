// AtomicOutput (write to a temporary, rename into place) and SHA-256 of files.

import Foundation
import Testing
import Support

@Suite("AtomicOutput")
struct AtomicOutputTests {
    @Test("the final path appears only at commit")
    func commit() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("result.h5")
        let output = try AtomicOutput(final)
        #expect(output.temporaryPath != final)
        #expect(output.temporaryPath.hasPrefix(dir.path + "/."))
        writeBytes([1, 2, 3], to: output.temporaryPath)
        #expect(output.temporaryExists)
        #expect(!fileExists(final))
        try output.commit()
        #expect(fileExists(final))
        #expect(!output.temporaryExists)
        #expect(FileManager.default.contents(atPath: final) == Data([1, 2, 3]))
        output.discard()  // after commit: a no-op, the result stays
        #expect(fileExists(final))
    }

    @Test("commit replaces an existing final file")
    func commitReplaces() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("out.txt")
        try "old".write(toFile: final, atomically: false, encoding: .utf8)
        let output = try AtomicOutput(final)
        try "new".write(toFile: output.temporaryPath, atomically: false, encoding: .utf8)
        #expect(try String(contentsOfFile: final, encoding: .utf8) == "old")
        try output.commit()
        #expect(try String(contentsOfFile: final, encoding: .utf8) == "new")
    }

    @Test("discard removes the temporary and never creates the final path")
    func discard() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("result.bin")
        let output = try AtomicOutput(final)
        writeBytes([1, 2, 3], to: output.temporaryPath)
        #expect(output.temporaryExists)
        output.discard()
        #expect(!output.temporaryExists)
        #expect(!fileExists(final))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    /// Creates an output, writes its temporary, and lets it go.
    static func abandon(_ final: String, resumable: Bool) throws -> String {
        let output = try AtomicOutput(final, resumable: resumable)
        writeBytes([9, 9, 9], to: output.temporaryPath)
        #expect(output.temporaryExists)
        return output.temporaryPath
    }

    @Test("deinit removes a non-resumable temporary but keeps a resumable one")
    func deinitBehaviour() throws {
        let dir = TemporaryDirectory()
        let plain = try Self.abandon(dir.file("a.h5"), resumable: false)
        #expect(!fileExists(plain))
        let resumable = try Self.abandon(dir.file("b.h5"), resumable: true)
        #expect(resumable == dir.file(".b.h5.partial"))
        #expect(fileExists(resumable))
        #expect(!fileExists(dir.file("a.h5")) && !fileExists(dir.file("b.h5")))
        // A later output of the same name finds it.
        #expect(try AtomicOutput(dir.file("b.h5"), resumable: true).temporaryExists)
    }

    @Test("a missing output folder is an error naming it")
    func missingFolder() {
        let dir = TemporaryDirectory()
        let final = dir.file("no/such/folder/x.h5")
        let error = #expect(throws: FileError.self) { _ = try AtomicOutput(final) }
        #expect(error?.path == final)
        #expect(error?.message.contains("does not exist") == true)
    }
}

@Suite("SHA256")
struct SHA256Tests {
    static func digest(of bytes: [UInt8], in dir: TemporaryDirectory, name: String = "data.bin") throws -> String {
        let path = dir.file(name)
        writeBytes(bytes, to: path)
        return try SHA256.hexDigest(ofFile: path)
    }

    @Test("FIPS 180-2 test vectors through files")
    func knownVectors() throws {
        let dir = TemporaryDirectory()
        #expect(try Self.digest(of: [], in: dir) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try Self.digest(of: Array("abc".utf8), in: dir) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try Self.digest(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), in: dir)
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // One million "a": more than one 1 MiB read.
        #expect(try Self.digest(of: [UInt8](repeating: 0x61, count: 1_000_000), in: dir)
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("streaming in uneven pieces gives the one-shot digest", arguments: [1, 7, 63, 64, 65, 1000])
    func streaming(piece: Int) {
        let bytes = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }
        var whole = SHA256()
        bytes.withUnsafeBytes { whole.update($0) }
        var pieces = SHA256()
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            bytes[start..<end].withUnsafeBytes { pieces.update($0) }
            start = end
        }
        let expected = whole.finalize()
        #expect(pieces.finalize() == expected)
        #expect(expected == "8b5fc0e9b559acd86a49017943707c53e283f26bb629cb20bce913bac9975c21")
    }

    @Test("a file over 1 MiB (several 1 MiB reads) agrees with Python's hashlib")
    func largeFile() throws {
        let dir = TemporaryDirectory()
        let count = (1 << 20) * 3 / 2 + 12_345
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        #expect(bytes.count == 1_585_209)
        let path = dir.file("big.bin")
        writeBytes(bytes, to: path)
        // From: python3 -c "import hashlib; n = (1 << 20) * 3 // 2 + 12345;
        //   print(hashlib.sha256(bytes(((i * 2654435761) >> 13) & 255 for i in range(n))).hexdigest())"
        // (Hard-coded rather than run here: a child process would inherit, and so hold, the
        // HDF5 file locks of tests running at the same time.)
        #expect(try SHA256.hexDigest(ofFile: path) == "dc32e5cac6a6cd0bb300f0bedaab385bb7dcd587ab70d3a785dbe930abdb9ed4")
    }

    @Test("a missing file is a FileError naming it")
    func missing() {
        let dir = TemporaryDirectory()
        let path = dir.file("nothing")
        let error = #expect(throws: FileError.self) { _ = try SHA256.hexDigest(ofFile: path) }
        #expect(error?.path == path)
    }
}
