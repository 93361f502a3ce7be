// The one hook mechanism. A hook function receives a view of the live activation buffer
// at its hook point, shaped per batch ([B, T, …], see `HookPoint.shape`); reading it
// captures, writing into it replaces or adds. Hooks run in the order they were added.

import Tensors

public struct HookContext {
    public let point: HookPoint
    /// The activation, [B, T, …] (pattern: [B, n_head, T, T]). Writes change the forward pass.
    public let activation: Tensor
    public let batch: Int
    public let seqLen: Int
    /// The input tokens, [B·T].
    public let tokens: UnsafeBufferPointer<Int32>
}

public final class Hooks {
    public typealias Function = (HookContext) throws -> Void
    private var functions: [HookPoint: [Function]] = [:]

    public init() {}

    public var points: Set<HookPoint> { Set(functions.keys) }
    public var isEmpty: Bool { functions.isEmpty }

    /// The latest hooked point in execution order (the forward pass may stop after it).
    public var lastOrder: Int? { functions.keys.map(\.order).max() }

    public func contains(_ point: HookPoint) -> Bool { functions[point] != nil }

    public func add(_ point: HookPoint, _ function: @escaping Function) {
        functions[point, default: []].append(function)
    }

    /// Replaces the activation with `value` (same shape as the activation).
    public func replace(_ point: HookPoint, with value: Tensor) {
        add(point) { ctx in
            precondition(value.count == ctx.activation.count, "replacement for \(point) has \(value.shape)")
            ctx.activation.copy(from: value)
        }
    }

    /// Adds `delta` to the activation (same shape, or one row broadcast to every token).
    public func addDelta(_ point: HookPoint, _ delta: Tensor) {
        add(point) { ctx in
            let n = ctx.activation.count
            if delta.count == n {
                Kernels.add(delta.data, into: ctx.activation.data, count: n)
            } else {
                precondition(n % delta.count == 0, "delta for \(point) has \(delta.shape)")
                Kernels.addBias(delta.data, to: ctx.activation.data, rows: n / delta.count, width: delta.count)
            }
        }
    }

    public func run(_ point: HookPoint, _ activation: Tensor, batch: Int, seqLen: Int,
             tokens: UnsafeBufferPointer<Int32>) throws {
        guard let list = functions[point] else { return }
        let ctx = HookContext(point: point, activation: activation, batch: batch, seqLen: seqLen, tokens: tokens)
        for f in list { try f(ctx) }
    }
}
