import ArgumentParser
import Bridges
import DePass
import Foundation
import Steering
import Tasks
import Checkpoints
import Model
import Support

struct SteerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steer",
        abstract: "Steer the dense model by editing one sparse channel and mapping the edit through the bridge decoder.")

    @Option(help: "Dense model (.h5).") var dense: String
    @Option(help: "Sparse model (.h5).") var sparse: String
    @Option(help: "Bridge file (.h5).") var bridge: String
    @Option(help: "Task whose prompt pairs define the edit (pairs of equal length).") var task = "single_double_quote"
    @Option(help: "Bridge site (hook name).") var site: String
    @Option(help: "Sparse channel index, or 'auto' (the first by --rank).") var channel = "auto"
    @Option(help: "How 'auto' ranks channels: separation (Cohen's d of the pair difference at the last position) or effect (first-order change of the dense logit difference from the edit).")
    var rank: ChannelRanking = .separation
    @Option(help: "Strengths α as START:END:STEP.") var strengths = "0:1:0.1"
    @Option(help: "sparse (the sparse model's own activation) or encoded (the encoder applied to the dense one).")
    var source: SteeringSource = .sparse
    @Option(help: "none, or rms (times the dense/sparse RMS ratio).") var rescale: SteeringRescale = .none
    @Option(help: "Control edit: random (a random direction of the same norm).") var control = "random"
    @Option(help: "Held-out prompt pairs for the curve.") var pairs = 100
    @Flag(help: "DePass of the steered run: the steering component's share and its routes.") var attribute = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard control == "random" else { throw ValidationError("--control must be random") }
        let parts = strengths.split(separator: ":").compactMap { Double($0) }
        guard parts.count == 3, parts[2] > 0, parts[1] >= parts[0] else { throw ValidationError("--strengths must be START:END:STEP") }
        let alphas = stride(from: parts[0], through: parts[1] + parts[2] / 2, by: parts[2]).map { min($0, parts[1]) }
        let t = try TaskSuite.named(task)
        let b = try Bridge.load(bridge)
        let d = try ModelLoader.load(dense), s = try ModelLoader.load(sparse)
        let steerer = try Steerer(bridge: b, dense: d.model, sparse: s.model, site: site, source: source, rescale: rescale,
                                  bridgePath: bridge)
        // Channels are ranked on one set of pairs and the curve measured on another.
        let rankingPairs = SteeringPairs.ranking(t), heldout = SteeringPairs.heldout(t, count: pairs)
        let ranked = try steerer.rankChannels(pairs: rankingPairs, by: rank)
        let chosen: Int
        if channel == "auto" { chosen = ranked[0].channel } else {
            guard let c = Int(channel), (0..<s.model.config.dModel).contains(c) else {
                throw ValidationError("--channel must be 'auto' or between 0 and \(s.model.config.dModel - 1)")
            }
            chosen = c
        }
        let curve = try steerer.curve(pairs: heldout, channel: chosen, alphas: alphas)
        let attributionResult = attribute ? try steerer.attribute(pairs: Array(heldout.prefix(SteeringPairs.attributionCount)),
                                                                  channel: chosen, alpha: alphas.last!) : nil
        if json {
            print(try JSONValue.string(SteeringReport(site: site, channel: chosen, source: source.rawValue,
                                                      rescale: rescale.rawValue, rank: rank.rawValue,
                                                      ranked: ranked, curve: curve, attribution: attributionResult)))
            return
        }
        print("top channels at \(site) by \(rank.rawValue): " + ranked.prefix(5).map {
            "\($0.channel) (separation \(fmt($0.separation, 2)), predicted effect \(fmt($0.predictedEffect, 2)))" }.joined(separator: ", "))
        print("steering channel \(chosen), source \(source.rawValue), rescale \(rescale.rawValue), \(heldout.count) held-out pairs")
        var table = Table(headers: ["alpha", "mean P(target)", "logit diff", "flip rate", "control logit diff", "control flip rate"])
        for p in curve {
            table.rows.append([fmt(p.alpha, 2), fmt(p.meanProbability), fmt(p.meanLogitDiff), fmt(p.flipRate, 3),
                               fmt(p.controlMeanLogitDiff), fmt(p.controlFlipRate, 3)])
        }
        print(table.render())
        if let a = attributionResult {
            print("DePass at α = \(fmt(alphas.last!, 2)) over \(a.pairs) pairs: logit diff \(fmt(a.meanLogitDiff)), steering component \(fmt(a.meanSteeringScore)); max relative error \(String(format: "%.1e", a.worstRelativeError))")
            var routes = Table(headers: ["route of the steering component", "logit diff"])
            for r in a.meanRoutes.sorted(by: { abs($0.score) > abs($1.score) }).prefix(10) { routes.rows.append([r.name, fmt(r.score)]) }
            print(routes.render())
        }
    }
}
