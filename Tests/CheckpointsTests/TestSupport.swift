import Foundation
@_exported import ModelFixtures
import Model
import Testing

/// Every parameter equal, bit for bit, under the same names in the same order.
func expectSameWeights(_ a: TransformerWeights, _ b: TransformerWeights, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.config == b.config, sourceLocation: sourceLocation)
    #expect(a.parameters.map(\.name) == b.parameters.map(\.name), sourceLocation: sourceLocation)
    for (p, q) in zip(a.parameters, b.parameters) {
        #expect(p.tensor.shape == q.tensor.shape, "\(p.name)", sourceLocation: sourceLocation)
        #expect(p.tensor.toArray().map(\.bitPattern) == q.tensor.toArray().map(\.bitPattern), "\(p.name)", sourceLocation: sourceLocation)
    }
}
