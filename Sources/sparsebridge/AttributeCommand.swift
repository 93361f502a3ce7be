import ArgumentParser
import DePass
import Foundation
import Checkpoints
import Model

struct AttributeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "DePass: split the residual stream into components and attribute the next-token logit to them, exactly.")

    @Option(help: "Model file (.h5).") var model: String
    @Option(help: "The prompt.") var text: String
    @Option(help: "Target next token (one character).") var target: String
    @Option(help: "Alternative token: score the logit difference target − alt.") var alt: String?
    @Option(help: "token | head | neuron | subspace") var level = "token"
    @Option(help: "Layer for head, neuron and subspace levels.") var layer = 0
    @Option(help: "Neuron range for the neuron level, as START:END (default: every neuron, in chunks).") var neurons: String?
    @Option(help: "Basis for the subspace level, FILE.h5:DATASET ([r, d_model]).") var basis: String?
    @Option(help: "MLP rule: ratio | softmax") var rule: MLPRule = .softmax
    @Option(help: "Components to list.") var top = 10
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let loaded = try ModelLoader.load(model)
        let c = loaded.model.config
        let mlpRule = rule
        let tokens = Array(try loaded.tokenizer.encode(text).suffix(c.nCtx))
        guard !tokens.isEmpty else { throw CommandError("--text is empty") }
        func token(_ s: String, _ flag: String) throws -> Int32 {
            let t = try loaded.tokenizer.encode(s)
            guard t.count == 1 else { throw ValidationError("\(flag) must be exactly one token, got \(t.count)") }
            return t[0]
        }
        let targetToken = try token(target, "--target"), altToken = try alt.map { try token($0, "--alt") }
        guard (0..<c.nLayer).contains(layer) else { throw ValidationError("--layer must be between 0 and \(c.nLayer - 1)") }
        let run = try DecomposedForward(model: loaded.model, tokens: tokens, rule: mlpRule)
        var results: [Attribution] = []
        switch level {
        case "token":
            let (comps, start) = run.tokenComponents()
            results.append(try run.attribute(comps, from: start, target: targetToken, alternative: altToken))
        case "head":
            let (comps, start) = run.headComponents(layer: layer)
            results.append(try run.attribute(comps, from: start, target: targetToken, alternative: altToken))
        case "neuron":
            let range: Range<Int>
            if let neurons {
                let parts = neurons.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 2, parts[0] >= 0, parts[0] < parts[1], parts[1] <= c.dMLP else {
                    throw ValidationError("--neurons must be START:END within 0:\(c.dMLP)")
                }
                range = parts[0]..<parts[1]
            } else { range = 0..<c.dMLP }
            for chunk in DecomposedForward.neuronChunks(range, size: 64) {
                let (comps, sp) = run.neuronComponents(layer: layer, neurons: chunk)
                results.append(try run.attribute(comps, from: sp, target: targetToken, alternative: altToken))
            }
        case "subspace":
            guard let basis else { throw ValidationError("--level subspace needs --basis FILE.h5:DATASET") }
            let (comps, start) = try run.subspaceComponents(layer: layer, basis: try DecomposedForward.loadBasis(basis, width: c.dModel))
            results.append(try run.attribute(comps, from: start, target: targetToken, alternative: altToken))
        default:
            throw ValidationError("--level must be token, head, neuron or subspace")
        }
        // Neuron chunks each carry a "rest" and a bias; list the neurons themselves.
        var rows: [(String, Double)] = []
        for (i, r) in results.enumerated() {
            for (n, s) in zip(r.names, r.scores) where level != "neuron" || (n != "rest" && n != "bias") || i == results.count - 1 {
                rows.append((n, s))
            }
        }
        let ranked = rows.sorted { abs($0.1) > abs($1.1) }.prefix(top)
        let worst = results.map(\.worstRelativeError).max() ?? 0
        let total = results.last!.total
        if worst > Attribution.tolerance {
            FileHandle.standardError.write(Data(("warning: DePass is not exact here: relative error \(worst) exceeds "
                    + "\(Attribution.tolerance)\n").utf8))
        }
        if json {
            printJSON(.object(["level": .string(level), "target": .string(target), "alt": alt.map { .string($0) } ?? .null,
                               "total": .number(total), "max_relative_error": .number(Double(worst)),
                               "components": .array(ranked.map { .object(["name": .string($0.0), "score": .number($0.1)]) }),
                               "checks": .array(results.last!.checks.map {
                                   .object(["site": .string($0.site), "max_error": .number(Double($0.maxError)),
                                            "relative": .number(Double($0.relative))]) })]))
        } else {
            var table = Table(headers: ["component", alt == nil ? "logit" : "logit diff"])
            for (n, s) in ranked { table.rows.append([n, fmt(s)]) }
            print(table.render())
            print("total \(fmt(total)) (the model's own value); exactness: max relative error \(String(format: "%.1e", worst)) "
                    + "over \(results.last!.checks.count) sites")
        }
    }
}
