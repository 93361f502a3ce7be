// The probe process that reads a file's metadata before the file is opened here: how it
// ending by a signal, by a timeout or normally becomes an error or a pass. Stand-in probes
// (shell commands) play the damaged cases, since libhdf5's own crashes depend on its version;
// the CLI's real probe on the fuzzed files is tested in Tests/python/test_fuzz_findings.py.

import Foundation
import Glibc
import Testing
import HDF5

@Suite("Metadata probe")
struct MetadataProbeTests {
    /// A valid HDF5 file of one attribute.
    func smallFile(_ dir: TemporaryDirectory, _ name: String) throws -> String {
        let path = dir.file(name)
        let file = try H5File(create: path)
        try file.setAttribute("format", "test")
        file.closeFile()
        return path
    }

    @Test("a probe killed by a signal refuses the file, naming it and the signal")
    func crash() throws {
        let dir = TemporaryDirectory()
        let path = try smallFile(dir, "crash.h5")
        #expect {
            try MetadataProbe.check(path, command: ["/bin/sh", "-c", "kill -SEGV $$"])
        } throws: { error in
            let e = error as? HDF5Error
            return e?.path == path && e?.message == "damaged file: the HDF5 library crashed reading its metadata (signal 11)"
        }
    }

    @Test("a probe still running at the timeout is killed and the file refused")
    func hang() throws {
        let dir = TemporaryDirectory()
        let path = try smallFile(dir, "hang.h5")
        let started = Date()
        #expect {
            try MetadataProbe.check(path, command: ["/bin/sh", "-c", "exec sleep 30"], timeoutMilliseconds: 300)
        } throws: { error in
            (error as? HDF5Error)?.message == "damaged file: the HDF5 library was still reading its metadata after 0.3 s"
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("a probe that exits passes the file, whatever its status; one that cannot start is skipped")
    func passes() throws {
        let dir = TemporaryDirectory()
        try MetadataProbe.check(try smallFile(dir, "a.h5"), command: ["/bin/true"])
        // An error is the real open's to report (the probe ignores errors).
        try MetadataProbe.check(try smallFile(dir, "b.h5"), command: ["/bin/false"])
        try MetadataProbe.check(try smallFile(dir, "c.h5"), command: [dir.file("no-such-program")])
        try MetadataProbe.check(try smallFile(dir, "d.h5"), command: nil)
    }

    @Test("the probe inherits no descriptor but the standard three")
    func closesDescriptors() throws {
        let dir = TemporaryDirectory()
        let path = try smallFile(dir, "g.h5")
        // A descriptor without close-on-exec, as libhdf5 opens its files: were the probe to keep
        // a copy, it would keep that file's lock too.
        let fd = open(path, O_RDONLY)
        #expect(fd > 2)
        defer { close(fd) }
        try MetadataProbe.check(path, command: ["/bin/sh", "-c", "[ -e /proc/self/fd/\(fd) ] && kill -SEGV $$; exit 0"])
    }

    @Test("a file that passed is not probed again until it changes")
    func cache() throws {
        let dir = TemporaryDirectory()
        let path = try smallFile(dir, "e.h5")
        try MetadataProbe.check(path, command: ["/bin/true"])
        // Same file, same state: no probe runs (this one would refuse it).
        try MetadataProbe.check(path, command: ["/bin/sh", "-c", "kill -SEGV $$"])
        // Rewritten (new size): probed again.
        let file = try H5File(open: path, mode: .readWrite)
        try file.setAttribute("more", String(repeating: "x", count: 5000))
        file.closeFile()
        #expect(throws: HDF5Error.self) {
            try MetadataProbe.check(path, command: ["/bin/sh", "-c", "kill -SEGV $$"])
        }
    }

    @Test("the probe's own reading survives a healthy file")
    func readsHealthyFile() throws {
        let dir = TemporaryDirectory()
        let path = try smallFile(dir, "f.h5")
        MetadataProbe.readAllMetadata(path)
        let file = try H5File(open: path)
        #expect(try file.stringAttribute("format") == "test")
    }
}
