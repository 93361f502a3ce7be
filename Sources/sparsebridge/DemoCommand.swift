import ArgumentParser
import Foundation
import Study
import Model

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole study on the shipped models: tasks, bridges, steering, DePass, circuits, context dilution.")

    @Option(help: "Run folder for results.json and data.h5.") var out = "runs/demo"
    @Option(help: "Also write the notebook here ('' to skip).") var notebook = "notebooks-export/demo.ipynb"
    @Flag(help: "Fewer prompts and tokens (about a minute).") var quick = false
    @Option(help: "Dense model.") var dense = "models/dense.h5"
    @Option(help: "Sparse model.") var sparse = "models/sparse.h5"
    @Option(help: "Bridge.") var bridge = "bridges/default.h5"
    @Option(help: "Demo settings (steering site, dilution lengths).") var settings = "models/demo.json"
    @Option(help: "Folder of circuit files from `sparsebridge circuit`.") var circuits = "circuits"
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        var o = DemoOptions()
        o.out = out; o.quick = quick; o.dense = dense; o.sparse = sparse; o.bridge = bridge; o.settings = settings; o.circuits = circuits
        let started = Date()
        let r = try Demo.run(o) { line in FileHandle.standardError.write(Data(("[\(fmt(Date().timeIntervalSince(started), 0)) s] "
                + "\(line)\n").utf8)) }
        print(DemoSummary.text(r))
        if !notebook.isEmpty {
            try NotebookExport.write(run: out, out: notebook)
            print("notebook: \(notebook)")
        }
    }
}
