// DePass (decomposed forward pass): the residual stream split into K additive components
// plus one bias component, carried through the rest of the model with everything
// nonlinear frozen from one real forward pass — attention patterns, norm scales, MLP
// coefficients, AbsTopK masks — so that every component goes only through linear maps
// and the components always sum to the true hidden state (and, at the end, the true
// logits). DESIGN.md gives the rules; this file holds the state and the entry points.

import Tensors
import Model
import Support

/// How an MLP neuron's output is shared among components.
public enum MLPRule: String, Sendable, CaseIterable {
    /// o_k = ((ñ_k W_in) ⊙ m / h) W_out: each component keeps the neuron's gain m/h.
    case ratio
    /// Neuron i's output m_i is split by softmax_k(z_{k,i} / τ), z_{k,i} = ñ_k · W_in[:, i]
    /// (the DePass authors' default, τ = 0.1); components with z = 0 take no share.
    case softmax
}

/// Where in the model the decomposition starts: the residual stream entering `layer`'s
/// attention (`.beforeAttention`), entering its MLP (`.beforeMLP`), or after the block.
public struct StartPoint: Equatable, Sendable {
    public enum Stage: Sendable { case beforeAttention, beforeMLP, afterBlock }
    public let layer: Int
    public let stage: Stage
    public init(layer: Int, stage: Stage) { self.layer = layer; self.stage = stage }

    /// The hook name of the residual stream at this point.
    public func hook(nLayer: Int) -> HookPoint {
        switch stage {
        case .beforeAttention: return .residPre(layer)
        case .beforeMLP: return .residMid(layer)
        case .afterBlock: return .residPost(layer)
        }
    }
}

/// K named components and the bias component, each [T, d_model] for one sequence.
public final class Components {
    public let names: [String]          // K names; the bias component comes last, unnamed
    public let seqLen: Int
    public let width: Int
    /// [(K + 1) · T, width], component-major; row block K is the bias component.
    public let data: Tensor
    /// The component credited with the bigram table's logits (the one holding the current
    /// token's embedding), or nil for the bias component.
    public var bigramOwner: ((_ position: Int) -> Int)?

    public init(names: [String], seqLen: Int, width: Int) {
        self.names = names
        self.seqLen = seqLen
        self.width = width
        data = Tensor(zeros: [(names.count + 1) * seqLen, width])
    }

    public var count: Int { names.count + 1 }      // including bias
    public var biasIndex: Int { names.count }

    /// Component k as a [T, width] view.
    public func component(_ k: Int) -> Tensor { data.rows((k * seqLen)..<((k + 1) * seqLen)) }

    /// An independent copy (the same names, values and bigram owner).
    public func copy() -> Components {
        let c = Components(names: names, seqLen: seqLen, width: width)
        c.data.data.update(from: data.data, count: data.count)
        c.bigramOwner = bigramOwner
        return c
    }

    /// Σ_k components, [T, width].
    public func sum() -> Tensor {
        let out = Tensor(zeros: [seqLen, width])
        for k in 0..<count { Kernels.add(component(k).data, into: out.data, count: seqLen * width) }
        return out
    }
}

/// The DePass module's one error type.
public struct DePassError: UserFacingError {
    public let text: ParameterMessage
    public init(_ text: ParameterMessage) { self.text = text }
    public var message: String { text.description }
    public var description: String { message }
    public func message(naming name: (String) -> String) -> String { text.rendered(naming: name) }
}
