import ArgumentParser
import HDF5

/// Hidden: what the CLI runs in a separate process before it opens an HDF5 file
/// (`MetadataProbe`): reads the file's metadata, so that a crash or hang inside libhdf5 on
/// a damaged file happens here and not in the command the user ran.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-hdf5", abstract: "Read every object header and attribute of an HDF5 file (used internally).",
        shouldDisplay: false)

    @Argument(help: "The file.")
    var file: String

    func run() throws {
        MetadataProbe.readAllMetadata(file)
    }
}
