// A steering run as `steer --json` prints it: the setting, the best-ranked channels, the
// curve (the study's results.json holds the same SteeringPoint), and DePass of the steered run.

import Support

public struct SteeringReport: Codable, Sendable {
    public struct RankedChannel: Codable, Sendable {
        public var channel: Int
        public var separation: Double
        public var predictedEffect: Double
        enum CodingKeys: String, CodingKey { case channel, separation, predictedEffect = "predicted_effect" }
    }

    public struct Route: Codable, Sendable {
        public var route: String
        public var score: Double
    }

    public struct Attribution: Codable, Sendable {
        public var pairs: Int
        public var meanLogitDiff: Double
        public var steeringScore: Double
        public var maxRelativeError: Double
        public var routes: [Route]
        enum CodingKeys: String, CodingKey {
            case pairs, meanLogitDiff = "mean_logit_diff", steeringScore = "steering_score", maxRelativeError = "max_relative_error", routes
        }

        public init(_ a: SteeringAttribution) {
            pairs = a.pairs; meanLogitDiff = a.meanLogitDiff; steeringScore = a.meanSteeringScore
            maxRelativeError = Double(a.worstRelativeError)
            routes = a.meanRoutes.map { Route(route: $0.name, score: $0.score) }
        }
    }

    public var site: String
    public var channel: Int
    public var source: String
    public var rescale: String
    public var rank: String
    public var topChannels: [RankedChannel]
    public var curve: [SteeringPoint]
    /// Absent unless asked for.
    public var attribution: Attribution?

    enum CodingKeys: String, CodingKey { case site, channel, source, rescale, rank, topChannels = "top_channels", curve, attribution }

    public init(site: String, channel: Int, source: String, rescale: String, rank: String, ranked: [ChannelScore],
                curve: [SteeringPoint], attribution: SteeringAttribution?) {
        self.site = site; self.channel = channel; self.source = source; self.rescale = rescale; self.rank = rank
        topChannels = ranked.prefix(5).map { RankedChannel(channel: $0.channel, separation: $0.separation,
                                                           predictedEffect: $0.predictedEffect) }
        self.curve = curve
        self.attribution = attribution.map(Attribution.init)
    }
}
