// The output lock taken by AtomicOutput, and folder outputs swapped in whole.

import Foundation
import Glibc
import Testing
import Support

@Suite("Output lock")
struct OutputLockTests {
    @Test("a lock held elsewhere refuses the writer, naming the output and the holder")
    func refusedWhileHeld() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("acts.h5")
        // flock conflicts between two open descriptions even within one process: this stands
        // in for another sparsebridge process.
        let fd = open(dir.file(".acts.h5.lock"), O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        let pid = Array("424242\n".utf8)
        #expect(pwrite(fd, pid, pid.count, 0) == pid.count)
        #expect {
            _ = try AtomicOutput(final)
        } throws: { error in
            let e = error as? FileError
            return e?.path == final && e?.message.contains("is being written by another sparsebridge process (pid 424242)") == true
        }
        #expect(!fileExists(final))
        flock(fd, LOCK_UN)
        let output = try AtomicOutput(final)
        writeBytes([1], to: output.temporaryPath)
        try output.commit()
        #expect(fileExists(final))
    }

    @Test("the lock file lives while an output is open, is shared by one process's outputs, and goes at the end")
    func lifetime() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("model.h5"), lock = dir.file(".model.h5.lock")
        let reservation = try AtomicOutput(final)
        #expect(fileExists(lock))
        #expect(try String(contentsOfFile: lock, encoding: .utf8) == "\(getpid())\n")
        // The same output under another spelling is the same lock, not a conflict.
        let writer = try AtomicOutput(dir.path + "/./model.h5")
        writeBytes([7], to: writer.temporaryPath)
        try writer.commit()
        #expect(fileExists(lock), "the reservation still holds it")
        reservation.discard()
        #expect(!fileExists(lock))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.h5"])
    }

    @Test("temporaries of dead writers go when the lock is taken; a resumable one stays")
    func staleTemporaries() throws {
        let dir = TemporaryDirectory()
        writeBytes([1], to: dir.file(".a.h5.partial-99999999"))
        try FileManager.default.createDirectory(atPath: dir.file(".a.h5.partial-99999998.old"), withIntermediateDirectories: false)
        writeBytes([2], to: dir.file(".a.h5.partial"))
        writeBytes([3], to: dir.file(".a.h5.partial-notes"))
        writeBytes([4], to: dir.file(".b.h5.partial-99999999"))
        let output = try AtomicOutput(dir.file("a.h5"))
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(names == [".a.h5.partial", ".a.h5.partial-notes", ".b.h5.partial-99999999", ".a.h5.lock"])
        output.discard()
    }

    @Test("removing an output clears what killed writers of it left")
    func remove() throws {
        let dir = TemporaryDirectory()
        writeBytes([1], to: dir.file(".m.h5.checkpoint.h5"))
        writeBytes([2], to: dir.file("..m.h5.checkpoint.h5.partial-99999999"))
        writeBytes([], to: dir.file("..m.h5.checkpoint.h5.lock"))
        try AtomicOutput.remove(dir.file(".m.h5.checkpoint.h5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test("a folder output is built aside and replaces an older folder whole")
    func folder() throws {
        let dir = TemporaryDirectory()
        let final = dir.file("run")
        try FileManager.default.createDirectory(atPath: final, withIntermediateDirectories: false)
        writeBytes([1], to: final + "/old.json")
        let output = try AtomicOutput(final, folder: true)
        writeBytes([2], to: output.temporaryPath + "/results.json")
        #expect(try FileManager.default.contentsOfDirectory(atPath: final) == ["old.json"])
        try output.commit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: final) == ["results.json"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["run"])

        let failed = try AtomicOutput(final, folder: true)
        writeBytes([3], to: failed.temporaryPath + "/results.json")
        failed.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["run"])
        #expect(FileManager.default.contents(atPath: final + "/results.json") == Data([2]))
    }
}
