import UNetIR

/// Elementwise work a step applies to its own output before anyone reads it (a fused epilogue).
public enum Epilogue: Sendable, Equatable, Codable {
    case unary(UnaryOp)
    /// `out += operand`, same shape: a residual add.
    case add(operand: Int)
    /// `out[b, c, ...] += operand[b, c]`: a per-channel bias such as a time-embedding projection.
    case addChannel(operand: Int)
    /// `out = out * (1 + scale) + shift` per channel from operand `[B, 2C]`.
    case film(operand: Int)
    /// Records the output's statistics (per channel, per block of `statisticsBlock` pixels: sum and
    /// squared deviations) for the group/instance norms that read it, so they need not read it twice.
    /// Always last, after everything that changes the values.
    case statistics

    /// Pixels per statistics block: divides every tile width the kernels use, so each block is
    /// written by exactly one tile whatever the thread count.
    public static let statisticsBlock = 16

    /// The bounds of an epilogue a kernel can apply as one clamp in its stores: none (unbounded),
    /// or a single ReLU, ReLU6 or clamp; nil for any other.
    public static func clampBounds(_ ops: [Epilogue]) -> (lower: Float, upper: Float)? {
        guard let first = ops.first else { return (-.infinity, .infinity) }
        guard ops.count == 1, case .unary(let u) = first else { return nil }
        switch u {
        case .relu: return (0, .infinity)
        case .relu6: return (0, 6)
        case .clamp(let lo, let hi): return (lo.map(Float.init) ?? -.infinity, hi.map(Float.init) ?? .infinity)
        default: return nil
        }
    }
}

extension Epilogue {
    /// The operator name the epilogue stands for, as reports and drawings show it.
    public var name: String {
        switch self {
        case .unary(let u): Op.unary(u).name
        case .add: "add"
        case .addChannel: "add-channel"
        case .film: "film"
        case .statistics: "statistics"
        }
    }
}

/// How a convolution step computes, chosen by the compiler (`ConvolutionAlgorithmSelection`) and
/// recorded in the plan, so the runtime prepares its weights in the matching layout.
public enum ConvolutionAlgorithm: String, Sendable, Codable {
    /// im2col into GEMM panels (or the direct depthwise loop).
    case gemm
    /// Winograd F(4x4, 3x3): 3x3, stride 1, dilation 1, one group, output height a multiple of 4 and width of 16.
    case winograd4x4
}

/// One step of the optimized graph: an operator, its fused epilogue, and the weights it owns.
public struct Step: Sendable {
    public var name: String
    public var op: Op
    /// Value ids (= step ids) of the operands; epilogue operands are listed here too.
    public var inputs: [Int]
    /// How many of `inputs` the operator itself reads; the rest belong to the epilogue.
    public var operatorArity: Int
    public var shape: Shape
    public var epilogue: [Epilogue] = []
    /// In `OpSemantics.weights` order; nil for optional weights that are absent.
    public var weights: [ConstantTensor?]
    /// IR nodes this step absorbed (for reports and drawings).
    public var absorbed: [String] = []
    /// False once a pass removed the step; removed steps keep their slot so ids stay stable.
    public var live = true
    /// For convolutions: the algorithm the runtime uses.
    public var algorithm: ConvolutionAlgorithm = .gemm
    /// How the step's output lies in memory (`BlockedLayoutSelection`); its operator inputs are in
    /// the same layout, except for a reorder's.
    public var layout: ActivationLayout = .plain
    /// A step its only reader computes as it goes: a blocked depthwise convolution by the blocked
    /// 1x1 convolution after it, band by band (`DepthwisePointwiseFusion`), or a blocked norm by
    /// the self-attention or the 3x3 convolution after it, as they copy their input
    /// (`NormAttentionFusion`, `NormConvolutionFusion`), or a zero pad or a nearest upsampling by
    /// the 3x3 convolution after it, in its im2col (`PadConvolutionFusion`,
    /// `UpsampleConvolutionFusion`). It has no
    /// buffer and does not run itself; its reader reads its input.
    public var fusedIntoConsumer = false

    public var operatorInputs: ArraySlice<Int> { inputs.prefix(operatorArity) }

    public init(name: String, op: Op, inputs: [Int], operatorArity: Int, shape: Shape, epilogue: [Epilogue] = [],
                weights: [ConstantTensor?], absorbed: [String] = [], live: Bool = true, algorithm: ConvolutionAlgorithm = .gemm,
                layout: ActivationLayout = .plain, fusedIntoConsumer: Bool = false) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.operatorArity = operatorArity
        self.shape = shape
        self.epilogue = epilogue
        self.weights = weights
        self.absorbed = absorbed
        self.live = live
        self.algorithm = algorithm
        self.layout = layout
        self.fusedIntoConsumer = fusedIntoConsumer
    }
}

/// The graph the passes rewrite: steps in topological order, graph inputs and outputs.
public struct OptimizedGraph: Sendable {
    public var name: String
    public var steps: [Step]
    public var inputs: [(name: String, step: Int, role: String?)]
    public var outputs: [(name: String, step: Int)]
    /// A concat whose operands were told to write straight into their slice of its buffer.
    public var elidedConcats: Set<Int> = []
    /// Steps whose output is an attention-gate map, for `--dump-attention`.
    public var gateMapNames: Set<String> = []
    /// Steps whose output was pushed as a skip.
    public var skipSources: Set<Int> = []

    /// The unoptimized graph (`-O0`): one step per IR node, weights attached by name.
    public init(graph: Graph, weights: WeightSet) {
        name = graph.name
        steps = graph.nodes.map { node in
            let shapes = node.inputs.map { graph.nodes[$0].shape }
            let local = node.weightPrefix.map { prefix in
                OpSemantics.weights(of: node.op, inputShapes: shapes, outputShape: node.shape).map { w -> ConstantTensor? in
                    w.dtype == .f32 ? weights.tensors[prefix + "." + w.name] : nil
                }
            } ?? []
            return Step(name: node.name, op: node.op, inputs: node.inputs, operatorArity: node.inputs.count, shape: node.shape,
                        weights: local, absorbed: [])
        }
        inputs = graph.inputs.map { ($0.name, $0.node, $0.role) }
        outputs = graph.outputs.map { ($0.name, $0.node) }
        gateMapNames = Set(graph.gateMaps.map { graph.nodes[$0].name })
        skipSources = Set(graph.skipSources)
    }

    public init(name: String, steps: [Step], inputs: [(name: String, step: Int, role: String?)], outputs: [(name: String, step: Int)],
                elidedConcats: Set<Int>, gateMapNames: Set<String>) {
        self.name = name
        self.steps = steps
        self.inputs = inputs
        self.outputs = outputs
        self.elidedConcats = elidedConcats
        self.gateMapNames = gateMapNames
    }

    /// Live steps that read each value (operator or epilogue operand).
    public func consumers() -> [[Int]] {
        var users = [[Int]](repeating: [], count: steps.count)
        for (i, s) in steps.enumerated() where s.live {
            for v in s.inputs where !users[v].contains(i) { users[v].append(i) }
        }
        return users
    }

    public var outputSteps: Set<Int> { Set(outputs.map(\.step)) }

    /// Replaces every use of value `old` by `new` (in steps and outputs).
    public mutating func replaceUses(of old: Int, with new: Int) {
        for i in steps.indices where steps[i].live {
            steps[i].inputs = steps[i].inputs.map { $0 == old ? new : $0 }
        }
        outputs = outputs.map { ($0.name, $0.step == old ? new : $0.step) }
        if skipSources.remove(old) != nil { skipSources.insert(new) }
    }

    /// This graph with the weights of `other`, a graph of the same steps (a plan's manifest has none of its own).
    public func withWeights(of other: OptimizedGraph) -> OptimizedGraph {
        var copy = self
        for i in copy.steps.indices where i < other.steps.count { copy.steps[i].weights = other.steps[i].weights }
        return copy
    }

    /// Renumbers steps so they run in `order` (a topological order of all step ids).
    public mutating func reorder(_ order: [Int]) {
        var position = [Int](repeating: 0, count: steps.count)
        for (newID, old) in order.enumerated() { position[old] = newID }
        steps = order.map { old in
            var s = steps[old]
            s.inputs = s.inputs.map { position[$0] }
            return s
        }
        inputs = inputs.map { ($0.name, position[$0.step], $0.role) }
        outputs = outputs.map { ($0.name, position[$0.step]) }
        elidedConcats = Set(elidedConcats.map { position[$0] })
        skipSources = Set(skipSources.map { position[$0] })
    }

    public var liveSteps: [Step] { steps.filter { $0.live && !isInput($0) } }

    func isInput(_ s: Step) -> Bool { Self.isInputOp(s.op) }

    public static func isInputOp(_ op: Op) -> Bool {
        if case .input = op { return true }
        return false
    }

    public func flops(of step: Step) -> Int {
        OpSemantics.flops(of: step.op, inputShapes: step.operatorInputs.map { steps[$0].shape }, outputShape: step.shape)
    }
}
