import UNetIR

/// Puts runs of depthwise, 1x1 and 3x3 convolutions (Winograd ones, and im2col ones of any stride
/// on small maps) and 2x2 transposed ones, with their pooling, padding, nearest upsampling,
/// zero-copy concatenations, GroupNorms and self-attentions, and their epilogues (per-channel time
/// embeddings, FiLM and GroupNorm statistics included), in the channel-blocked layout NCHW16c,
/// with reorder steps only where such a region meets the rest of the graph.
///
/// In the plain layout a 1x1 convolution reads its K input channels at a plane's distance from
/// each other: at 256x256 that is 256 KB, so every channel's rows land in the same L1 and L2 sets,
/// and the input has to be packed into GEMM panels first (on MobileUNet's 256x256 levels the pack
/// took a quarter of the convolution's time). Blocked, a pixel's 16 channels are one 64-byte
/// vector: the 1x1 kernel broadcasts them straight from the input against 16-channel filter
/// vectors, and the depthwise kernel does one vector FMA per tap and pixel with no edge lanes.
///
/// Only where the CPU has the blocked kernels (AVX-512 or AVX2): elsewhere the pass is off.
public struct BlockedLayoutSelection: GraphPass {
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }
    public var name: String { "blocked-layout" }

    /// A region must have this many steps to pay for the reorders at its edges.
    static let minimumRegion = 4

    /// Output pixels of the largest 3x3 convolution the blocked im2col kernel computes: maps too
    /// small for Winograd (a UNet's 8x8 bottleneck), whose im2col stays in L2.
    static let maximumIm2colPixels = 1024

    /// Input channels of a 3x3 convolution that reads a plain input and writes blocks (an image stem).
    static let maximumPlainInputChannels = 8

    /// Whether a blocked step reads its operator input in the plain layout: a 3x3 convolution from
    /// a few channels (an image) straight to blocks, so a region can start at the stem without a reorder.
    public static func readsPlainInput(_ op: Op, input: Shape) -> Bool {
        guard case .conv2d(let c) = op, input.count == 4, input[1] % 16 != 0 else { return false }
        return c.groups == 1 && c.kernel == (3, 3) && c.stride == (1, 1) && c.pad == (1, 1) && c.dilation == (1, 1)
            && input[1] <= maximumPlainInputChannels
    }

    /// Whether a plain step reads its operator input in the blocked layout: a 1x1 head to at most 4
    /// channels (`Conv2D.isFewOutputsHead`) on blocked channels, so a region can end at the head
    /// without a reorder (its kernel transposes the blocks in registers).
    public static func readsBlockedInput(_ op: Op, input: Shape, output: Shape) -> Bool {
        guard case .conv2d(let c) = op, input.count == 4, output.count == 4, input.allSatisfy({ $0 > 0 }), output.allSatisfy({ $0 > 0 }) else {
            return false
        }
        return input[1] % 16 == 0 && c.isFewOutputsHead(pixels: output[2] * output[3])
    }

    /// The layout step `s` reads its operator inputs in, given its first input's layout.
    public static func operatorInputLayout(of s: Step, firstInput input: Step) -> ActivationLayout {
        if case .reorder(let target) = s.op { return target == .blocked16 ? .plain : .blocked16 }
        if s.layout == .blocked16 && readsPlainInput(s.op, input: input.shape) { return .plain }
        if s.layout == .plain && input.layout == .blocked16 && s.inputs.count == 1 && readsBlockedInput(s.op, input: input.shape, output: s.shape) {
            return .blocked16
        }
        return s.layout
    }

    /// Whether the blocked kernels compute an operator (reading `input` as the first of `inputs`
    /// operator inputs, computing by `algorithm`): the shapes they handle.
    public static func blockedKernelApplies(_ op: Op, input: Shape, output: Shape, algorithm: ConvolutionAlgorithm = .gemm,
                                            inputs: Int = 1) -> Bool {
        // No empty dimension: the kernels split work by batch, blocks and rows.
        guard input.count == 4, output.count == 4, input.allSatisfy({ $0 > 0 }), output.allSatisfy({ $0 > 0 }), output[1] % 16 == 0 else {
            return false
        }
        if readsPlainInput(op, input: input) { return output[2] == input[2] && output[3] == input[3] }
        guard input[1] % 16 == 0 else { return false }
        switch op {
        case .conv2d(let c):
            if c.isPointwise && c.groups == 1 { return true }
            if algorithm == .winograd4x4 {
                return c.pad == (1, 1) && ConvolutionAlgorithmSelection.winogradApplies(c, input: input, output: output)
            }
            if c.groups == 1 && c.kernel == (3, 3) && c.dilation == (1, 1) {
                return output[2] * output[3] <= maximumIm2colPixels
            }
            return c.groups == input[1] && c.out == input[1] && c.kernel == (3, 3) && c.stride == (1, 1) && c.pad == (1, 1)
                && c.dilation == (1, 1)
        case .convTranspose2d(let c):
            return c.kernel == (2, 2) && c.stride == (2, 2) && c.pad == (0, 0) && c.outputPadding == (0, 0) && c.dilation == (1, 1)
                && c.groups == 1 && output[2] == 2 * input[2] && output[3] == 2 * input[3]
        case .pool2d(let p):
            return p.kind == .max && p.kernel == (2, 2) && p.stride == (2, 2) && p.pad == (0, 0)
                && output[2] == input[2] / 2 && output[3] == input[3] / 2
        case .upsample(let u):
            return u.mode == .nearest && output[2] == 2 * input[2] && output[3] == 2 * input[3]
        case .concat(let axis):
            return axis == 1 || axis == -3
        case .groupNorm, .instanceNorm, .pad:
            // Per-channel statistics and spatial moves of whole 16-channel pixels.
            return true
        case .attention:
            // Self-attention on the map (no context): its projections are 1x1 convolutions.
            return inputs == 1
        case .reorder:
            return true
        default:
            return false
        }
    }

    /// Whether epilogue operand `slot` of step `s` is a per-channel vector (`addChannel`, `film`):
    /// `[B, C]`-like, indexed by channel alone, so it is read plain whatever the step's layout.
    public static func isChannelOperand(_ s: Step, slot: Int) -> Bool {
        s.epilogue.contains { e in
            switch e {
            case .addChannel(let k), .film(let k): return k == slot
            case .unary, .add, .statistics: return false
            }
        }
    }

    /// The layout step `s` reads its input in slot `slot`: an operator input in
    /// `operatorInputLayout`'s, a per-channel epilogue operand plain, any other epilogue operand (a
    /// residual, of the output's shape) in the step's own.
    public static func inputLayout(of s: Step, slot: Int, firstInput input: Step) -> ActivationLayout {
        if slot < s.operatorArity { return operatorInputLayout(of: s, firstInput: input) }
        return isChannelOperand(s, slot: slot) ? .plain : s.layout
    }

    /// A region must also have this many convolutions per reorder at its edges: a reorder moves a
    /// whole tensor, and a region cut by several (a residual block between two attention steps of a
    /// diffusion UNet) is slower blocked than plain.
    static let convolutionsPerReorder = 2

    /// The reorders region `members` would need: values from outside that members read in blocks
    /// (a stem reads its image plain), members' values read plain outside (a head reads its blocks)
    /// and members that are graph outputs.
    func reorders(of members: Set<Int>, in graph: OptimizedGraph, users: [[Int]]) -> Int {
        var incoming = Set<Int>(), outgoing = Set<Int>()
        for m in members {
            let s = graph.steps[m]
            for (slot, v) in s.inputs.enumerated() where !members.contains(v) {
                let stem = slot < s.operatorArity && Self.readsPlainInput(s.op, input: graph.steps[v].shape)
                if !stem && !Self.isChannelOperand(s, slot: slot) { incoming.insert(v) }
            }
            for u in users[m] where !members.contains(u) {
                let reader = graph.steps[u]
                let head = reader.inputs.count == 1 && Self.readsBlockedInput(reader.op, input: s.shape, output: reader.shape)
                if !head { outgoing.insert(m) }
            }
        }
        let outputs = graph.outputs.filter { members.contains($0.step) }.map(\.step)
        return incoming.count + outgoing.union(outputs).count
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        guard enabled else { return 0 }
        let users = graph.consumers()
        // Candidates: the kernels apply, and epilogue operands are residuals of the output's shape or per-channel vectors.
        var blocked = Set<Int>()
        for (i, s) in graph.steps.enumerated() where s.live {
            guard let x = s.operatorInputs.first,
                  s.inputs.indices.dropFirst(s.operatorArity).allSatisfy({ graph.steps[s.inputs[$0]].shape == s.shape || Self.isChannelOperand(s, slot: $0) })
            else { continue }
            if case .concat = s.op {
                guard graph.elidedConcats.contains(i),
                      s.inputs.allSatisfy({ graph.steps[$0].shape.count == 4 && graph.steps[$0].shape[1] % 16 == 0 }) else { continue }
            } else if case .reorder = s.op {
                continue
            }
            guard Self.blockedKernelApplies(s.op, input: graph.steps[x].shape, output: s.shape, algorithm: s.algorithm, inputs: s.operatorArity)
            else { continue }
            blocked.insert(i)
        }
        // An elided concat's operands write into its buffer: all of them share its layout.
        var changed = true
        while changed {
            changed = false
            for c in graph.elidedConcats where graph.steps[c].live {
                let members = [c] + graph.steps[c].inputs
                if members.contains(where: { !blocked.contains($0) }) && members.contains(where: { blocked.contains($0) }) {
                    blocked.subtract(members)
                    changed = true
                }
            }
        }
        // Regions (connected through blocked-to-blocked edges) too small to pay for their reorders stay plain.
        var region = [Int: Int]()
        for start in blocked.sorted() where region[start] == nil {
            var stack = [start], members: [Int] = []
            region[start] = start
            while let v = stack.popLast() {
                members.append(v)
                let neighbours = graph.steps[v].inputs + users[v]
                for u in neighbours where blocked.contains(u) && region[u] == nil {
                    region[u] = start
                    stack.append(u)
                }
            }
            let convolutions = members.filter {
                switch graph.steps[$0].op {
                case .conv2d, .convTranspose2d: return true
                default: return false
                }
            }.count
            let tooFewConvolutions = convolutions < 2
                || convolutions < Self.convolutionsPerReorder * reorders(of: Set(members), in: graph, users: users)
            if members.count < Self.minimumRegion || tooFewConvolutions {
                // Concat groups leave together: removing part of one would split its buffer's layout.
                var drop = Set(members)
                for c in graph.elidedConcats where drop.contains(c) || graph.steps[c].inputs.contains(where: drop.contains) {
                    drop.insert(c)
                    drop.formUnion(graph.steps[c].inputs)
                }
                blocked.subtract(drop)
            }
        }
        guard !blocked.isEmpty else { return 0 }
        for i in blocked { graph.steps[i].layout = .blocked16 }

        // Reorders where a value is read in the other layout: one per value and layout, placed just
        // before its first reader, so it lives no longer than it must.
        var reorderOf = [Int: Int]()  // key: value * 2 + (target blocked ? 1 : 0)
        var insertBefore = [Int: [Int]]()
        let original = graph.steps.count
        for i in 0..<original where graph.steps[i].live {
            let s = graph.steps[i]
            if graph.elidedConcats.contains(i) && blocked.contains(i) { continue }
            guard let first = s.inputs.first else { continue }
            for (slot, v) in s.inputs.enumerated() {
                let wanted = Self.inputLayout(of: s, slot: slot, firstInput: graph.steps[first])
                guard graph.steps[v].layout != wanted else { continue }
                let key = v * 2 + (wanted == .blocked16 ? 1 : 0)
                let r: Int
                if let existing = reorderOf[key] {
                    r = existing
                } else {
                    r = graph.steps.count
                    let source = graph.steps[v]
                    graph.steps.append(Step(name: source.name + (wanted == .blocked16 ? ".to_blocked" : ".to_plain"), op: .reorder(to: wanted),
                                            inputs: [v], operatorArity: 1, shape: source.shape, weights: [], layout: wanted))
                    reorderOf[key] = r
                    insertBefore[i, default: []].append(r)
                }
                graph.steps[i].inputs[slot] = r
            }
        }
        // A graph output must be plain.
        for (k, output) in graph.outputs.enumerated() where graph.steps[output.step].layout == .blocked16 {
            let key = output.step * 2
            if reorderOf[key] == nil {
                let source = graph.steps[output.step]
                reorderOf[key] = graph.steps.count
                graph.steps.append(Step(name: source.name + ".to_plain", op: .reorder(to: .plain), inputs: [output.step], operatorArity: 1,
                                        shape: source.shape, weights: []))
                insertBefore[original, default: []].append(reorderOf[key] ?? 0)
            }
            graph.outputs[k].step = reorderOf[key] ?? output.step
        }
        var order: [Int] = []
        for i in 0..<original {
            order += insertBefore[i] ?? []
            order.append(i)
        }
        order += insertBefore[original] ?? []
        graph.reorder(order)
        return blocked.count
    }
}
