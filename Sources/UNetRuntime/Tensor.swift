/// A dense float32 tensor in row-major (NCHW) order, 64-byte aligned.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    /// Set for views: the object that owns the memory (an arena, a mapped plan file), kept alive by the view.
    private let owner: AnyObject?

    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.owner = nil
    }

    /// A view of memory owned by `owner`; no copy, no deallocation.
    public init(shape: [Int], viewing data: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = data
        self.owner = owner
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: min(count, values.count)) }
        }
    }

    public convenience init(zeros shape: [Int]) {
        self.init(shape: shape)
        data.initialize(repeating: 0, count: count)
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(data).deallocate() }
    }

    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
}
