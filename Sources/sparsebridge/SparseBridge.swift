// The `sparsebridge` command. Each subcommand lives in its own file and is a thin layer
// over a library call; errors print as one line on stderr with a non-zero exit.

import ArgumentParser
import Cluster
import Foundation
import HDF5
import Tensors
import Support

@main
struct SparseBridge: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "sparsebridge",
        abstract: "Bridges between a dense transformer and a weight-sparse one, for interpretability research.",
        subcommands: [InitCommand.self, InfoCommand.self, RunCommand.self, CaptureCommand.self,
                      ConvertCommand.self, ExportCommand.self, TokenizeCommand.self, GradCommand.self, TasksCommand.self, TrainCommand.self, FitCommand.self, SpliceCommand.self, AttributeCommand.self, SteerCommand.self, FaithfulnessCommand.self, CircuitCommand.self, PlantCommand.self, DilutionCommand.self, DemoCommand.self, ProbeCommand.self])

    @Flag(name: .long, help: "Print the version and the BLAS kernel in use.")
    var version = false

    func run() throws {
        if version {
            print("sparsebridge \(SparseBridge.version)")
            print(BLASRuntime.summary)
        } else {
            print(SparseBridge.helpMessage())
        }
    }

    static func main() {
        // Before anything else: OpenBLAS must be loaded with a kernel that suits this CPU.
        BLASRuntime.ensureCoreType()
        // Every HDF5 file is read first by a process of its own: libhdf5 crashes or hangs on
        // some damaged files, and then that process dies, not this one (MetadataProbe).
        MetadataProbe.command = [executablePath, "probe-hdf5"]
        do {
            var command = try parseAsRoot()
            // Any other command started as several processes would run whole in each of them.
            if Cluster.launchedProcesses > 1 && !(command is CaptureCommand || command is FitCommand) {
                fail("only capture and fit run as one job of several processes; start this command without mpirun")
            }
            try command.run()
            Cluster.current?.finish()
        } catch let error as UserFacingError {
            fail(error.message(naming: flag))
        } catch {
            // One process of several ends the whole job, so that no rank waits forever for it
            // and no output is made from a part of the work.
            if let group = Cluster.current, group.size > 1 { fail(message(for: error)) }
            exit(withError: error)
        }
    }

    /// This program's own file, for starting it again as a probe.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("sparsebridge: error: \(Cluster.rankPrefix)\(oneLine(message))\n".utf8))
        if let group = Cluster.current, group.size > 1 { group.abort(code: 1) }
        // Not exit(): HDF5's exit handler closes whatever is still open and crashes on a file
        // whose close already failed (a full disk). Writers close or discard their files as the
        // error unwinds, so only stdout is left to flush.
        fflush(stdout)
        _exit(1)
    }
}

/// Options every subcommand that computes takes.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for BLAS and our own loops (default: all cores).")
    var threads: Int?

    func apply() throws {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be positive") }
            BLASRuntime.threads = threads
        } else if Cluster.localProcesses > 1, ProcessInfo.processInfo.environment["SPARSEBRIDGE_THREADS"] == nil {
            // Processes of one job on one host share its cores rather than each taking all.
            BLASRuntime.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / Cluster.localProcesses)
        }
    }
}
