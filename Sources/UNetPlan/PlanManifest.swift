import UNetIR
import UNetPasses
import UNetSpec

/// How a weight's floats are stored in a plan: as the operator declares it, or already in the
/// layout its kernel reads, so loading maps it instead of repacking it.
public enum WeightLayout: String, Codable, Sendable {
    /// `OpSemantics.weights` order and shape.
    case plain
    /// A convolution's filters in GEMM microkernel panels: `[group][panel][cin/groups * kh * kw][panelRows]`.
    case gemmPanels
    /// A Winograd F(4x4, 3x3) convolution's transformed filters `G g Gᵀ`: `[36][panel][cin][panelRows]`.
    case winogradPanels
    /// The same filters for the channel-blocked layout's kernel: `[36][cout / 16][cin][16]`.
    case winogradBlocked
    /// Any other blocked-layout convolution's filters, 16 output channels innermost:
    /// `[cout / 16][K][16]` with `K` the kernel's reduction, `cin * kh * kw` (tap-major for a 3x3
    /// on blocked channels, which runs by im2col) or 9 for a depthwise 3x3. A permutation of the
    /// plain filters; plans before it stored them plain, which loading still accepts.
    case blocked

    /// Floats a weight of logical `shape` (`[cout, cin/groups, kh, kw]`) takes in this layout, for
    /// convolutions of `groups` groups; nil when the layout does not apply to such a shape.
    public func storedCount(shape: [Int], groups: Int, panelRows: Int) -> Int? {
        switch self {
        case .plain: return OpSemantics.elementCount(shape)
        case .blocked:
            guard shape.count == 4, shape[0] >= 16, shape[0] % 16 == 0, shape.allSatisfy({ $0 >= 1 }) else { return nil }
            return OpSemantics.elementCount(shape)
        case .winogradBlocked:
            guard shape.count == 4, groups == 1, shape[0] >= 16, shape[0] % 16 == 0, shape[1] >= 1, shape[2] == 3, shape[3] == 3 else { return nil }
            return OpSemantics.elementCount([36, shape[0], shape[1]])
        case .gemmPanels, .winogradPanels:
            // Every product is checked: the shape comes from an untrusted plan.
            guard shape.count == 4, groups >= 1, panelRows >= 1, shape.allSatisfy({ $0 >= 1 }), shape[0] % groups == 0,
                  let k = OpSemantics.elementCount(Array(shape[1...])) else { return nil }
            let panels = shape[0] / groups / panelRows + (shape[0] / groups % panelRows == 0 ? 0 : 1)
            if self == .winogradPanels {
                guard groups == 1, shape[2] == 3, shape[3] == 3 else { return nil }
                return OpSemantics.elementCount([36, panels, shape[1], panelRows])
            }
            return OpSemantics.elementCount([groups, panels, k, panelRows])
        }
    }
}

/// Everything in a plan file except the weight bytes: steps, bindings, memory plan, and where each weight sits.
public struct PlanManifest: Codable, Sendable {
    /// A weight's place in the weight section: byte offset (64-byte aligned), logical shape and the
    /// layout it is stored in; float32 little-endian.
    public struct WeightRef: Codable, Sendable, Equatable {
        public var offset: Int
        public var shape: [Int]
        public var layout: WeightLayout
        /// Floats stored: the shape's element count for `.plain`, more for padded panels.
        public var storedCount: Int
        public var count: Int { shape.reduce(1, *) }

        public init(offset: Int, shape: [Int], layout: WeightLayout = .plain, storedCount: Int? = nil) {
            self.offset = offset
            self.shape = shape
            self.layout = layout
            self.storedCount = storedCount ?? shape.reduce(1, *)
        }
    }

    public struct PlanStep: Codable, Sendable {
        public var name: String
        public var op: Op
        public var inputs: [Int]
        public var operatorArity: Int
        public var shape: [Int]
        public var epilogue: [Epilogue]
        public var weights: [WeightRef?]
        public var absorbed: [String]
        public var live: Bool
        public var algorithm: ConvolutionAlgorithm
        /// nil: plain.
        public var layout: ActivationLayout?
        /// nil: false (`Step.fusedIntoConsumer`).
        public var fusedIntoConsumer: Bool?
    }

    public struct Binding: Codable, Sendable {
        public var name: String
        public var step: Int
        public var role: String?
        public var shape: [Int]
    }

    public var name: String
    /// Instruction set the weights were packed for and the kernels the plan expects.
    public var isa: String
    /// Rows of the GEMM microkernel panels the prepared weights were packed for.
    public var panelRows: Int
    public var compilerVersion: String
    public var steps: [PlanStep]
    public var inputs: [Binding]
    public var outputs: [Binding]
    public var elidedConcats: [Int]
    public var gateMapNames: [String]
    public var memory: MemoryPlan
    /// (pass, rewrites) as they ran.
    public var passLog: [[String]]
    public var weightBytes: Int

    /// The optimized graph described by the manifest; weights are left out (the runtime maps them from the file).
    public func graph() -> OptimizedGraph {
        let steps = steps.map {
            Step(name: $0.name, op: $0.op, inputs: $0.inputs, operatorArity: $0.operatorArity, shape: $0.shape, epilogue: $0.epilogue,
                 weights: $0.weights.map { _ in nil }, absorbed: $0.absorbed, live: $0.live, algorithm: $0.algorithm,
                 layout: $0.layout ?? .plain, fusedIntoConsumer: $0.fusedIntoConsumer ?? false)
        }
        return OptimizedGraph(name: name, steps: steps, inputs: inputs.map { ($0.name, $0.step, $0.role) },
                              outputs: outputs.map { ($0.name, $0.step) }, elidedConcats: Set(elidedConcats), gateMapNames: Set(gateMapNames))
    }

    /// Checks every index and size in the manifest, so a corrupt or hostile file cannot make the runtime read out of bounds.
    public func validate() -> String? {
        let n = steps.count
        guard inputs.allSatisfy({ $0.step >= 0 && $0.step < n }), outputs.allSatisfy({ $0.step >= 0 && $0.step < n }) else {
            return "a binding names a step that does not exist"
        }
        guard memory.offsets.count == n else { return "the memory plan does not cover every step" }
        for (i, s) in steps.enumerated() {
            guard s.inputs.allSatisfy({ $0 >= 0 && $0 < i }), s.operatorArity <= s.inputs.count,
                  s.shape.count <= Limits.maxRank, s.shape.allSatisfy({ $0 >= 0 && Int64($0) <= Limits.maxDimension }),
                  let elements = OpSemantics.elementCount(s.shape) else {
                return "step \(i) ('\(s.name)') is malformed"
            }
            if s.live, case .input = s.op {} else if s.live {
                // A step fused into its reader has no output buffer (checked with its reader below).
                if s.fusedIntoConsumer != true {
                    guard let offset = memory.offsets[i], offset >= 0, offset % 4 == 0, offset + elements * 4 <= memory.arenaBytes else {
                        return "step \(i) ('\(s.name)') has no valid place in the arena"
                    }
                }
                if let problem = s.op.parameterProblem { return "step \(i) ('\(s.name)'): \(problem)" }
                if s.algorithm == .winograd4x4 {
                    guard case .conv2d(let c) = s.op, s.operatorArity >= 1,
                          ConvolutionAlgorithmSelection.winogradApplies(c, input: steps[s.inputs[0]].shape, output: s.shape) else {
                        return "step \(i) ('\(s.name)') asks for a Winograd convolution its shapes do not allow"
                    }
                }
                if let layout = s.layout, layout != .plain {
                    guard s.operatorArity >= 1,
                          BlockedLayoutSelection.blockedKernelApplies(s.op, input: steps[s.inputs[0]].shape, output: s.shape,
                                                                      algorithm: s.algorithm, inputs: s.operatorArity) else {
                        return "step \(i) ('\(s.name)') asks for a blocked-layout kernel its shapes do not allow"
                    }
                }
                do {
                    let shape = try OpSemantics.outputShape(of: s.op, inputs: s.inputs.prefix(s.operatorArity).map { steps[$0].shape })
                    guard shape == s.shape else { return "step \(i) ('\(s.name)') records a shape its operator does not produce" }
                } catch {
                    return "step \(i) ('\(s.name)'): \(error.message)"
                }
                // Epilogue kernels index operands by the output's batch, channel and pixel: their shapes must match it.
                for e in s.epilogue {
                    let operand: Int
                    let fits: (Shape) -> Bool
                    let channels = s.shape.count >= 2 ? s.shape[0] * s.shape[1] : -1
                    switch e {
                    case .unary: continue
                    case .statistics:
                        guard s.shape.count == 4 else { return "step \(i) ('\(s.name)') gathers statistics of a tensor that is not NCHW" }
                        continue
                    case .add(let k): operand = k; fits = { $0 == s.shape }
                    case .addChannel(let k): operand = k; fits = { OpSemantics.elementCount($0) == channels }
                    case .film(let k): operand = k; fits = { OpSemantics.elementCount($0) == 2 * channels }
                    }
                    guard operand >= s.operatorArity && operand < s.inputs.count, fits(steps[s.inputs[operand]].shape) else {
                        return "step \(i) ('\(s.name)') has a bad epilogue operand"
                    }
                }
                let expected = OpSemantics.weights(of: s.op, inputShapes: s.inputs.prefix(s.operatorArity).map { steps[$0].shape }, outputShape: s.shape)
                guard s.weights.count == expected.count || s.weights.isEmpty && expected.isEmpty else {
                    return "step \(i) ('\(s.name)') has \(s.weights.count) weights, its operator takes \(expected.count)"
                }
                for (index, (w, spec)) in zip(s.weights, expected).enumerated() {
                    guard let w else {
                        if spec.isOptional || spec.dtype != .f32 { continue }
                        return "step \(i) ('\(s.name)') lacks its weight '\(spec.name)'"
                    }
                    guard w.shape == spec.shape else { return "step \(i) ('\(s.name)') has a weight of the wrong shape" }
                    // Plans store every convolution's filters in the layout its kernel reads: Winograd
                    // (panels or blocks), GEMM panels or blocks, plain for plain-layout depthwise ones
                    // (read directly); everything else plain. Older plans kept blocked filters plain.
                    var layouts: Set<WeightLayout> = [.plain]
                    var groups = 1
                    if index == 0, case .conv2d(let c) = s.op {
                        groups = c.groups
                        let inputChannels = steps[s.inputs[0]].shape[1]
                        let blocked = (s.layout ?? .plain) == .blocked16
                        if s.algorithm == .winograd4x4 {
                            layouts = [blocked ? .winogradBlocked : .winogradPanels]
                        } else if blocked {
                            layouts = [.blocked, .plain]
                        } else if !(inputChannels / c.groups == 1 && c.out / c.groups == 1) {
                            layouts = [.gemmPanels]
                        }
                    }
                    guard layouts.contains(w.layout), (1...64).contains(panelRows),
                          let stored = w.layout.storedCount(shape: w.shape, groups: groups, panelRows: panelRows), w.storedCount == stored else {
                        return "step \(i) ('\(s.name)') has weights stored in a layout or size its kernel does not read"
                    }
                    guard w.offset >= 0, w.offset % 64 == 0, w.offset <= weightBytes, w.storedCount <= (weightBytes - w.offset) / 4 else {
                        return "step \(i) ('\(s.name)') has a weight outside the weight section"
                    }
                }
            }
        }
        // Every step reads its operator inputs in the layout its kernel takes and its epilogue
        // operands in its own (a kernel given the other one would read channels from the wrong
        // places), and outputs are plain.
        let g = graph()
        for (i, s) in g.steps.enumerated() where s.live {
            guard let x = s.inputs.first, s.operatorArity >= 1, !OptimizedGraph.isInputOp(s.op) else { continue }
            let readable = s.inputs.indices.allSatisfy { slot in
                g.steps[s.inputs[slot]].layout == BlockedLayoutSelection.inputLayout(of: s, slot: slot, firstInput: g.steps[x])
            }
            guard readable else {
                return "step \(i) ('\(s.name)') reads a value in a layout its kernel does not read"
            }
        }
        if let output = outputs.first(where: { g.steps[$0.step].layout != .plain }) { return "output '\(output.name)' is not in the plain layout" }
        // Steps computed by their reader: a depthwise step by the 1x1 step that reads it once, a norm by its attention or 3x3, a pad or an upsampling by its 3x3.
        let fused = steps.indices.filter { steps[$0].live && steps[$0].fusedIntoConsumer == true }
        if !fused.isEmpty {
            let users = g.consumers()
            let outputSteps = Set(outputs.map(\.step))
            for i in fused {
                guard users[i].count == 1, !outputSteps.contains(i), !elidedConcats.contains(i), let x = g.steps[i].inputs.first,
                      g.steps[users[i][0]].inputs.first == i, !g.steps[users[i][0]].fusedIntoConsumer,
                      DepthwisePointwiseFusion.fusible(g.steps[i], into: g.steps[users[i][0]], input: g.steps[x].shape)
                        || NormAttentionFusion.fusible(g.steps[i], into: g.steps[users[i][0]])
                        || PadConvolutionFusion.fusible(g.steps[i], into: g.steps[users[i][0]], input: g.steps[x].shape)
                        || NormConvolutionFusion.fusible(g.steps[i], into: g.steps[users[i][0]])
                        || UpsampleConvolutionFusion.fusible(g.steps[i], into: g.steps[users[i][0]], input: g.steps[x].shape) else {
                    return "step \(i) ('\(steps[i].name)') is marked as computed by its reader, which cannot compute it"
                }
            }
        }
        return nil
    }
}
