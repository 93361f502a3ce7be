// A Float32 tensor: a shape over one contiguous, 64-byte aligned buffer, row-major.
//
// Tensor is a class on purpose: the forward pass and the trainer keep large buffers and
// reuse them batch after batch, and hooks edit activations in place. A view (`reshaped`,
// `rows`) shares its parent's memory and keeps the parent alive.

public final class Tensor: CustomStringConvertible {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let parent: Tensor?
    /// A compressed copy of this weight matrix that `matmul` uses instead of BLAS
    /// (SparseMatrix.swift); nil for almost every tensor.
    public internal(set) var sparseForm: SparseMatrix?

    /// A new tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.data.initialize(repeating: 0, count: max(count, 1))
        self.parent = nil
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    public convenience init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        fill(value)
    }

    private init(view parent: Tensor, offset: Int, shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = parent.data + offset
        self.parent = parent
    }

    deinit {
        if parent == nil { UnsafeMutableRawPointer(data).deallocate() }
    }

    public var rank: Int { shape.count }

    /// The same elements under another shape of equal size (a view).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(view: self, offset: 0, shape: newShape)
    }

    /// Rows `range` of the first axis (a view).
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0])
        let rowSize = shape.dropFirst().reduce(1, *)
        return Tensor(view: self, offset: range.lowerBound * rowSize,
                      shape: [range.count] + shape.dropFirst())
    }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.copy(from: self)
        return t
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    public func toArray() -> [Float] { Array(buffer) }

    /// Largest absolute element difference; shapes must hold the same count.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(other.count == count)
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }

    public var maxAbs: Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i])) }
        return m
    }

    public var description: String { "Tensor\(shape)" }
}
