import Foundation
import UNetIR
import UNetPasses

/// Runs a program step by step on the thread pool. Every intermediate value lives at its planned
/// offset in one arena, allocated once and reused by every run.
public final class Executor {
    public let program: Program
    let pool: ThreadPool
    let arena: Tensor
    /// Per step: its output as a view into the arena (nil for graph inputs).
    let views: [Tensor?]
    /// Convolution weights in the layout of the step's algorithm, prepared once here.
    let packed: [ConvolutionKernel.PreparedWeights?]
    /// Self-attention steps on feature maps: their projections packed as 1x1 convolutions, once here.
    let attentionProjections: [AttentionKernel.PackedProjections?]
    /// Per step with a `.statistics` epilogue: its block statistics, read by the norms that consume it.
    let statistics: [Tensor?]
    /// Per step that computes the step it reads (`Step.fusedIntoConsumer`): what its kernel needs of it.
    let fusedInput: [FusedInput?]
    /// Plain steps that read their input in the blocked layout (`BlockedLayoutSelection.readsBlockedInput`).
    let blockedInput: [Bool]

    /// Per-step timing of a run, when profiling.
    public struct ProfileEntry: Sendable {
        public var node: String
        public var op: String
        public var seconds: Double
        public var flops: Int
    }

    public init(program: Program, threads: Int) {
        self.program = program
        self.pool = ThreadPool(threads: threads)
        let arena = Tensor(shape: [max(program.memory.arenaBytes / 4, 1)])
        self.arena = arena
        views = program.graph.steps.enumerated().map { i, step in
            guard step.live, let offset = program.memory.offsets[i] else { return nil }
            return Tensor(shape: step.shape, viewing: arena.data + offset / 4, owner: arena)
        }
        statistics = program.graph.steps.map { step in
            guard step.live, step.epilogue.contains(.statistics), step.shape.count == 4 else { return nil }
            let blocks = (step.shape[2] * step.shape[3] + Epilogue.statisticsBlock - 1) / Epilogue.statisticsBlock
            return Tensor(zeros: [step.shape[0] * step.shape[1] * blocks * 2])
        }
        packed = program.graph.steps.indices.map { i in
            guard let w = program.weights[i].first ?? nil else { return nil }
            return WeightPreparation.view(program.graph, step: i, stored: w, layout: program.layouts[i])
        }
        let steps = program.graph.steps, prepared = packed
        fusedInput = steps.indices.map { i in Executor.fusedInput(of: i, in: program, prepared: prepared) }
        blockedInput = steps.map { s in
            guard s.live, s.layout == .plain, let x = s.inputs.first, case .conv2d = s.op else { return false }
            return steps[x].layout == .blocked16
        }
        attentionProjections = program.graph.steps.indices.map { i in
            let step = program.graph.steps[i]
            guard step.live, case .attention(let a) = step.op, step.operatorArity == 1, step.shape.count == 4,
                  let weights = Executor.attentionWeights(a, program.weights[i]) else { return nil }
            return AttentionKernel.PackedProjections(a, channels: step.shape[1], weights: weights)
        }
    }

    public var threads: Int { pool.threads }
    public var graph: OptimizedGraph { program.graph }

    /// Runs the program; `inputs` must hold every graph input with its declared shape. Outputs are fresh tensors.
    public func run(inputs: [String: Tensor], profile: ((ProfileEntry) -> Void)? = nil,
                    attention: ((String, Tensor) -> Void)? = nil) throws(RuntimeError) -> [String: Tensor] {
        var outputs: [String: Tensor] = [:]
        for (name, id) in program.graph.outputs { outputs[name] = Tensor(shape: program.graph.steps[id].shape) }
        try run(inputs: inputs, into: outputs, profile: profile, attention: attention)
        return outputs
    }

    /// Runs the program writing each output into the tensor given for it (a loop reuses them: no allocation per run).
    public func run(inputs: [String: Tensor], into outputs: [String: Tensor], profile: ((ProfileEntry) -> Void)? = nil,
                    attention: ((String, Tensor) -> Void)? = nil) throws(RuntimeError) {
        let g = program.graph
        pool.wake()
        var values = views
        for (name, id, _) in g.inputs {
            guard let t = inputs[name] else { throw RuntimeError("missing input '\(name)'") }
            guard t.shape == g.steps[id].shape else {
                throw RuntimeError("input '\(name)' has shape \(OpSemantics.describe(t.shape)), the graph expects \(OpSemantics.describe(g.steps[id].shape))")
            }
            values[id] = t
        }
        for (i, step) in g.steps.enumerated() where step.live {
            if case .input = step.op { continue }
            if program.memory.inPlace.contains(i) || step.fusedIntoConsumer { continue }
            let start = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let fused = fusedInput[i]
            if let v = step.inputs.first, g.steps[v].fusedIntoConsumer, fused == nil {
                throw RuntimeError("internal: step '\(step.name)' reads '\(g.steps[v].name)', which it is to compute, but has no kernel that does")
            }
            var operands: [Tensor] = []
            for (slot, v) in step.inputs.enumerated() {
                // A step computed by its reader (a depthwise convolution, a norm, a pad, an upsampling): its input stands in for its output.
                let source = slot == 0 && g.steps[v].fusedIntoConsumer ? g.steps[v].inputs[0] : v
                guard let t = values[source] else { throw RuntimeError("internal: step '\(step.name)' reads a value with no storage") }
                operands.append(t)
            }
            guard let out = values[i] else { throw RuntimeError("internal: step '\(step.name)' has no storage") }
            var probabilities: Tensor?
            if attention != nil, case .attention(let a) = step.op {
                let tokens = step.shape.count == 4 ? step.shape[2] * step.shape[3] : step.shape[1]
                let keys = step.operatorArity > 1 ? operands[1].shape[1] : tokens
                probabilities = Tensor(shape: [step.shape[0], a.heads, tokens, keys])
            }
            let epilogue = step.epilogue.isEmpty ? nil : EpilogueContext(ops: step.epilogue, operands: operands, statistics: statistics[i]?.data)
            let handled: Bool
            if case .depthwise(let depthwise) = fused, case .blocked(let weights) = packed[i], case .conv2d(let c) = step.op {
                let bias = c.bias && program.weights[i].count > 1 ? program.weights[i][1] : nil
                handled = BlockedLayoutKernel.depthwisePointwise(depthwise, x: operands[0], weights: weights, bias: bias, out: out, pool: pool,
                                                                 epilogue: epilogue)
            } else if let projections = attentionProjections[i], case .attention(let a) = step.op {
                if step.layout == .blocked16 {
                    let norm = fused?.norm
                    AttentionKernel.runSpatialBlocked(a, x: operands[0], projections: projections, out: out, pool: pool,
                                                      probabilities: probabilities, norm: norm?.norm, statistics: norm.flatMap { statistics[$0.producer]?.data })
                    handled = false
                } else {
                    AttentionKernel.runSpatial(a, x: operands[0], projections: projections, out: out, pool: pool, epilogue: epilogue,
                                               probabilities: probabilities)
                    handled = true
                }
            } else if fused?.norm != nil || fused?.isUpsample == true, case .blocked(let weights) = packed[i], case .conv2d(let c) = step.op {
                let bias = c.bias && program.weights[i].count > 1 ? program.weights[i][1] : nil
                handled = BlockedLayoutKernel.conv2d(c, x: operands[0], weights: weights, bias: bias, out: out, pool: pool, epilogue: epilogue,
                                                     prologue: fused?.norm.map { ($0.norm, statistics[$0.producer]?.data) },
                                                     upsampled: fused?.isUpsample == true)
            } else {
                var op = step.op
                switch fused {
                case nil: break
                case .pad(let padded)?: op = padded
                // The kernels above are the ones that compute a depthwise step, a norm or an upsampling as they read.
                case .depthwise?, .norm?, .upsample?:
                    throw RuntimeError("internal: step '\(step.name)' is to compute the step it reads, but its kernel cannot")
                }
                handled = execute(op, layout: step.layout, operands: Array(operands.prefix(step.operatorArity)), weights: program.weights[i],
                                  out: out, epilogue: epilogue, probabilities: probabilities, packed: packed[i],
                                  inputStatistics: step.inputs.first.flatMap { statistics[$0]?.data }, blockedInput: blockedInput[i])
            }
            if let epilogue, !handled { EpilogueKernel.applyWhole(epilogue, out: out, layout: step.layout, pool: pool) }
            if let attention {
                if let probabilities { attention(step.name, probabilities) }
                // A gate's sigmoid may have been fused into the step before it: the step's output is then the map.
                if let gate = ([step.name] + step.absorbed).first(where: { g.gateMapNames.contains($0) }) { attention(gate, out) }
            }
            if let profile {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let depthwise: Step? = if case .depthwise = fused, let d = step.inputs.first { g.steps[d] } else { nil }
                profile(ProfileEntry(node: step.name, op: (depthwise == nil ? "" : "depthwise+") + step.op.name
                                        + (step.epilogue.isEmpty ? "" : "+" + step.epilogue.map(\.name).joined(separator: "+")),
                                     seconds: seconds, flops: g.flops(of: step) + (depthwise.map { g.flops(of: $0) } ?? 0)))
            }
        }
        for (name, id) in g.outputs {
            guard let v = values[id], let target = outputs[name] else { continue }
            guard target.shape == v.shape else {
                throw RuntimeError("output '\(name)' is \(OpSemantics.describe(v.shape)), the tensor given for it \(OpSemantics.describe(target.shape))")
            }
            target.data.update(from: v.data, count: v.count)
        }
    }

    /// Runs one operator; returns true when the kernel applied the epilogue itself.
    func execute(_ op: Op, layout: ActivationLayout, operands x: [Tensor], weights w: [Tensor?], out: Tensor, epilogue: EpilogueContext?,
                 probabilities: Tensor?, packed: ConvolutionKernel.PreparedWeights?, inputStatistics: UnsafeMutablePointer<Float>?,
                 blockedInput: Bool = false) -> Bool {
        func weight(_ i: Int) -> Tensor? { i < w.count ? w[i] : nil }
        // Weights were checked against the graph before the program was built.
        func required(_ i: Int) -> Tensor { weight(i) ?? Tensor(zeros: [1]) }
        switch op {
        case .input: break
        case .conv2d(let c):
            if case .blocked(let blocked) = packed {
                return BlockedLayoutKernel.conv2d(c, x: x[0], weights: blocked, bias: c.bias ? weight(1) : nil, out: out, pool: pool, epilogue: epilogue)
            }
            if case .blockedWinograd(let transformed) = packed {
                let bounds = BlockedLayoutKernel.fusedBounds(epilogue)
                BlockedWinogradConvolution.conv2d(x: x[0], weights: transformed, bias: c.bias ? weight(1) : nil, out: out, pool: pool,
                                                  lower: bounds?.0 ?? -.infinity, upper: bounds?.1 ?? .infinity)
                return bounds != nil
            }
            if case .winograd(let transformed) = packed {
                WinogradConvolution.conv2d(c, x: x[0], weights: transformed, bias: c.bias ? weight(1) : nil, out: out, pool: pool, epilogue: epilogue)
            } else {
                ConvolutionKernel.conv2d(c, x: x[0], weight: required(0), bias: c.bias ? weight(1) : nil, out: out, pool: pool, epilogue: epilogue,
                                         packed: packed?.panels, blockedInput: blockedInput)
            }
            return true
        case .convTranspose2d(let c):
            if case .blockedTransposed(let blocked) = packed {
                return BlockedLayoutKernel.convTranspose2x2(x: x[0], weights: blocked, bias: c.bias ? weight(1) : nil, out: out, pool: pool,
                                                            epilogue: epilogue)
            }
            ConvolutionKernel.convTranspose2d(c, x: x[0], weight: required(0), bias: c.bias ? weight(1) : nil, out: out, pool: pool,
                                              packed: packed?.panels)
        case .linear(_, let bias):
            DenseKernel.linear(x: x[0], weight: required(0), bias: bias ? weight(1) : nil, out: out, pool: pool)
        case .geglu:
            DenseKernel.geglu(x: x[0], weight: required(0), bias: required(1), out: out, pool: pool)
        case .matmul(let t):
            DenseKernel.matmul(a: x[0], b: x[1], transposeB: t, out: out, pool: pool)
        case .batchNorm(let eps):
            NormalizationKernel.batchNorm(eps: eps, x: x[0], weight: required(0), bias: required(1), mean: required(2), variance: required(3),
                                          out: out, pool: pool)
        case .groupNorm(let groups, let eps, let affine) where layout == .blocked16:
            NormalizationKernel.groupNormBlocked(groups: groups, eps: eps, x: x[0], weight: affine ? weight(0) : nil, bias: affine ? weight(1) : nil,
                                                 out: out, pool: pool, epilogue: epilogue, statistics: inputStatistics)
            return true
        case .instanceNorm(let eps, let affine) where layout == .blocked16:
            NormalizationKernel.groupNormBlocked(groups: x[0].shape[1], eps: eps, x: x[0], weight: affine ? weight(0) : nil,
                                                 bias: affine ? weight(1) : nil, out: out, pool: pool, epilogue: epilogue, statistics: inputStatistics)
            return true
        case .groupNorm(let groups, let eps, let affine):
            NormalizationKernel.groupNorm(groups: groups, eps: eps, x: x[0], weight: affine ? weight(0) : nil, bias: affine ? weight(1) : nil,
                                          out: out, pool: pool, epilogue: epilogue, statistics: inputStatistics)
            return true
        case .instanceNorm(let eps, let affine):
            NormalizationKernel.groupNorm(groups: x[0].shape[1], eps: eps, x: x[0], weight: affine ? weight(0) : nil,
                                          bias: affine ? weight(1) : nil, out: out, pool: pool, epilogue: epilogue, statistics: inputStatistics)
            return true
        case .layerNorm(let eps, let affine):
            NormalizationKernel.layerNorm(eps: eps, x: x[0], weight: affine ? weight(0) : nil, bias: affine ? weight(1) : nil, out: out, pool: pool)
        case .unary(let u): ElementwiseKernel.unary(u, x: x[0], out: out, pool: pool)
        case .softmax(let axis): ElementwiseKernel.softmax(axis: axis, x: x[0], out: out, pool: pool)
        case .binary(let b): ElementwiseKernel.binary(b, a: x[0], b: x[1], out: out, pool: pool)
        case .film: ElementwiseKernel.film(x: x[0], e: x[1], out: out, pool: pool)
        case .concat(let axis): LayoutKernel.concat(axis: axis, inputs: x, out: out, pool: pool)
        case .slice(let axis, let start, _): LayoutKernel.slice(axis: axis, start: start, x: x[0], out: out)
        case .reshape: LayoutKernel.copy(x[0], into: out)
        case .transpose(let perm): LayoutKernel.transpose(perm: perm, x: x[0], out: out, pool: pool)
        case .pool2d(let p):
            if layout == .blocked16 { BlockedLayoutKernel.maxPool(x: x[0], out: out, pool: pool) } else { ResamplingKernel.pool2d(p, x: x[0], out: out, pool: pool) }
        case .globalPool(let k): ResamplingKernel.globalPool(k, x: x[0], out: out)
        case .upsample(let u):
            if layout == .blocked16 { BlockedLayoutKernel.upsample(x: x[0], out: out, pool: pool) } else { ResamplingKernel.upsample(u, x: x[0], out: out, pool: pool) }
        case .pixelShuffle(let f): LayoutKernel.pixelShuffle(factor: f, x: x[0], out: out)
        case .channelShuffle(let g): LayoutKernel.channelShuffle(groups: g, x: x[0], out: out)
        case .pad(let p): LayoutKernel.pad(p, x: x[0], out: out, lanes: layout == .blocked16 ? 16 : 1, pool: pool)
        case .crop(let c): LayoutKernel.crop(c, x: x[0], out: out)
        case .timestepEmbedding(let t): ConditioningKernel.timestepEmbedding(t, x: x[0], out: out)
        case .labToRGB: ConditioningKernel.labToRGB(x: x[0], out: out)
        case .toTokens: LayoutKernel.tokens(x: x[0], out: out, toTokens: true, pool: pool)
        case .fromTokens: LayoutKernel.tokens(x: x[0], out: out, toTokens: false, pool: pool)
        case .reorder(let target): BlockedLayoutKernel.reorder(x: x[0], out: out, to: target, pool: pool)
        case .attention(let a):
            guard let weights = Executor.attentionWeights(a, w) else { break }
            AttentionKernel.run(a, x: x[0], context: x.count > 1 ? x[1] : nil, weights: weights, out: out, pool: pool, probabilities: probabilities)
        }
        return false
    }

    /// An attention step's weights by role. Order: to_q.weight, [to_q.bias], to_k.weight, [to_k.bias],
    /// to_v.weight, [to_v.bias], to_out.0.weight, [to_out.0.bias]; nil if one is missing (the
    /// weights were checked against the graph before the program was built).
    static func attentionWeights(_ a: Attention, _ w: [Tensor?]) -> (q: Tensor, qb: Tensor?, k: Tensor, kb: Tensor?, v: Tensor, vb: Tensor?, o: Tensor, ob: Tensor?)? {
        func weight(_ i: Int) -> Tensor? { i < w.count ? w[i] : nil }
        let biased = a.qkvBias, step = biased ? 2 : 1
        guard let q = weight(0), let k = weight(step), let v = weight(2 * step), let o = weight(3 * step) else { return nil }
        return (q, biased ? weight(1) : nil, k, biased ? weight(step + 1) : nil, v, biased ? weight(2 * step + 1) : nil,
                o, a.outBias ? weight(3 * step + 1) : nil)
    }
}
