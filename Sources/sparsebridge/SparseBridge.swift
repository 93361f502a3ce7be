// The `sparsebridge` command. Each subcommand lives in its own file and is a thin layer
// over a library call; errors print as one line on stderr with a non-zero exit.

import ArgumentParser
import Foundation
import Tensors

@main
struct SparseBridge: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "sparsebridge",
        abstract: "Bridges between a dense transformer and a weight-sparse one, for interpretability research.",
        subcommands: [InitCommand.self, InfoCommand.self, RunCommand.self, CaptureCommand.self,
                      ConvertCommand.self, ExportCommand.self, TokenizeCommand.self, GradCommand.self, TasksCommand.self, TrainCommand.self, FitCommand.self, SpliceCommand.self, AttributeCommand.self, SteerCommand.self, FaithfulnessCommand.self, CircuitCommand.self, DilutionCommand.self, DemoCommand.self])

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
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error where isOurError(error) {
            FileHandle.standardError.write(Data("sparsebridge: error: \(error)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
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
        }
    }
}
