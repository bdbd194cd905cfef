import UNetSpec

/// A tensor shape; every dimension is positive and the element count is bounded by `Limits`.
public typealias Shape = [Int]

/// Where a node came from, so IR-level errors point back into the graph file.
public struct Origin: Sendable {
    public var path: String
    public var location: SourceLocation?

    public init(path: String, location: SourceLocation?) {
        self.path = path
        self.location = location
    }
}

/// One IR node: an operator applied to earlier nodes' outputs, producing one tensor.
public struct Node: Sendable {
    public var id: Int
    /// Unique, human-readable name (the step's scoped name).
    public var name: String
    public var op: Op
    public var inputs: [Int]
    public var shape: Shape
    /// `state_dict` prefix of this node's weights (`encoders.0.conv1`); nil when it has none.
    public var weightPrefix: String?
    public var origin: Origin
}

/// A weight tensor the graph expects, named by its PyTorch `state_dict` path.
public struct WeightSpec: Sendable, Equatable {
    public enum DType: String, Sendable { case f32 = "F32", i64 = "I64" }
    public var name: String
    public var shape: Shape
    public var dtype: DType
    /// Buffers (running statistics) are loaded but are not trainable parameters.
    public var isBuffer: Bool
    /// Present in PyTorch checkpoints but not needed (`num_batches_tracked`).
    public var isOptional: Bool
}

/// The lowered graph: nodes in topological order, graph inputs and named outputs.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node] = []
    /// Node ids of `.input` nodes, in declaration order, with their roles.
    public var inputs: [(name: String, node: Int, role: String?)] = []
    public var outputs: [(name: String, node: Int)] = []
    /// Nodes whose output is an attention-gate map (the sigmoid inside a decoder's `gate`), for `--dump-attention`.
    public var gateMaps: [Int] = []
    /// Nodes whose output was pushed as a ModularUNet skip (drawn as dashed edges to their decoder).
    public var skipSources: [Int] = []

    public init(name: String) { self.name = name }

    /// Weight tensors of every node, in node order.
    public var weights: [WeightSpec] {
        nodes.flatMap { node in
            node.weightPrefix.map { prefix in
                OpSemantics.weights(of: node.op, inputShapes: node.inputs.map { nodes[$0].shape }, outputShape: node.shape)
                    .map { WeightSpec(name: prefix + "." + $0.name, shape: $0.shape, dtype: $0.dtype,
                                      isBuffer: $0.isBuffer, isOptional: $0.isOptional) }
            } ?? []
        }
    }

    public func flops(of node: Node) -> Int {
        OpSemantics.flops(of: node.op, inputShapes: node.inputs.map { nodes[$0].shape }, outputShape: node.shape)
    }

    /// Saturates at Int.max; lowering rejects graphs above `Graph.maxFLOPs` anyway.
    public var totalFLOPs: Int { nodes.reduce(0) { OpSemantics.sum($0, flops(of: $1)) } }

    /// 10^16 FLOP per run: a thousand times a Stable Diffusion UNet at 1024x1024.
    public static let maxFLOPs = 10_000_000_000_000_000

    /// Bytes of every weight and buffer as float32 (saturating), what the runtime will hold.
    public var weightBytes: Int {
        let elements = weights.reduce(0) { OpSemantics.sum($0, OpSemantics.elementCount($1.shape) ?? Int.max) }
        return OpSemantics.sum(elements, elements, elements, elements)
    }

    /// Trainable parameters (buffers excluded), as PyTorch's `sum(p.numel() for p in parameters())`.
    public var parameterCount: Int {
        weights.filter { !$0.isBuffer }.reduce(0) { OpSemantics.sum($0, OpSemantics.elementCount($1.shape) ?? Int.max) }
    }
}
