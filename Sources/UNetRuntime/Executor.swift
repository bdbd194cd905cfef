import Foundation
import UNetIR

/// Runs a lowered graph node by node on the thread pool, freeing each intermediate after its last use.
public final class Executor {
    public let graph: Graph
    let pool: ThreadPool
    /// Per node, its weights in `OpSemantics.weights` order (nil for optional ones that are absent).
    let nodeWeights: [[Tensor?]]
    let lastUse: [Int]

    /// Per-node timing of the last run, when profiling.
    public struct ProfileEntry: Sendable {
        public var node: String
        public var op: String
        public var seconds: Double
        public var flops: Int
    }

    public init(graph: Graph, weights: WeightSet, threads: Int) throws(RuntimeError) {
        let check = weights.check(against: graph)
        if !check.errors.isEmpty { throw RuntimeError(check.errors.joined(separator: "\n")) }
        self.graph = graph
        self.pool = ThreadPool(threads: threads)
        var perNode: [[Tensor?]] = []
        for node in graph.nodes {
            let specs = node.weightPrefix.map { prefix in
                OpSemantics.weights(of: node.op, inputShapes: node.inputs.map { graph.nodes[$0].shape }, outputShape: node.shape)
                    .map { (prefix + "." + $0.name, $0) }
            } ?? []
            perNode.append(specs.map { name, spec in
                spec.dtype == .f32 ? weights.tensors[name] : nil
            })
        }
        nodeWeights = perNode
        var last = [Int](repeating: -1, count: graph.nodes.count)
        for node in graph.nodes { for input in node.inputs { last[input] = max(last[input], node.id) } }
        for (_, id) in graph.outputs { last[id] = Int.max }
        lastUse = last
    }

    public var threads: Int { pool.threads }

    /// Runs the graph; `inputs` must hold every graph input with its declared shape.
    public func run(inputs: [String: Tensor], profile: ((ProfileEntry) -> Void)? = nil,
                    attention: ((String, Tensor) -> Void)? = nil) throws(RuntimeError) -> [String: Tensor] {
        var values = [Tensor?](repeating: nil, count: graph.nodes.count)
        for (name, id, _) in graph.inputs {
            guard let t = inputs[name] else { throw RuntimeError("missing input '\(name)'") }
            let expected = graph.nodes[id].shape
            guard t.shape == expected else {
                throw RuntimeError("input '\(name)' has shape \(OpSemantics.describe(t.shape)), the graph expects \(OpSemantics.describe(expected))")
            }
            values[id] = t
        }
        for node in graph.nodes {
            if case .input = node.op { continue }
            let start = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            var operands: [Tensor] = []
            for i in node.inputs {
                guard let v = values[i] else { throw RuntimeError("internal: value of '\(graph.nodes[i].name)' was released early") }
                operands.append(v)
            }
            let out = Tensor(shape: node.shape)
            var probabilities: Tensor?
            if attention != nil, case .attention(let a) = node.op {
                let tokens = node.shape.count == 4 ? node.shape[2] * node.shape[3] : node.shape[1]
                let keys = operands.count > 1 ? operands[1].shape[1] : tokens
                probabilities = Tensor(shape: [node.shape[0], a.heads, tokens, keys])
            }
            execute(node, operands: operands, weights: nodeWeights[node.id], out: out, probabilities: probabilities)
            values[node.id] = out
            if let attention {
                if let probabilities { attention(node.name, probabilities) }
                if graph.gateMaps.contains(node.id) { attention(node.name, out) }
            }
            for i in node.inputs where lastUse[i] == node.id { values[i] = nil }
            if let profile {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                profile(ProfileEntry(node: node.name, op: node.op.name, seconds: seconds, flops: graph.flops(of: node)))
            }
        }
        var outputs: [String: Tensor] = [:]
        for (name, id) in graph.outputs { outputs[name] = values[id] }
        return outputs
    }

    func execute(_ node: Node, operands x: [Tensor], weights w: [Tensor?], out: Tensor, probabilities: Tensor? = nil) {
        func weight(_ i: Int) -> Tensor? { i < w.count ? w[i] : nil }
        // Weight order is OpSemantics.weights: the first is always present when the op has weights.
        func required(_ i: Int) -> Tensor { weight(i) ?? Tensor(zeros: [1]) }
        switch node.op {
        case .input: break
        case .conv2d(let c):
            ConvolutionKernel.conv2d(c, x: x[0], weight: required(0), bias: c.bias ? weight(1) : nil, out: out, pool: pool)
        case .convTranspose2d(let c):
            ConvolutionKernel.convTranspose2d(c, x: x[0], weight: required(0), bias: c.bias ? weight(1) : nil, out: out, pool: pool)
        case .linear(_, let bias):
            DenseKernel.linear(x: x[0], weight: required(0), bias: bias ? weight(1) : nil, out: out, pool: pool)
        case .geglu:
            DenseKernel.geglu(x: x[0], weight: required(0), bias: required(1), out: out, pool: pool)
        case .matmul(let t):
            DenseKernel.matmul(a: x[0], b: x[1], transposeB: t, out: out, pool: pool)
        case .batchNorm(let eps):
            NormalizationKernel.batchNorm(eps: eps, x: x[0], weight: required(0), bias: required(1), mean: required(2), variance: required(3),
                                          out: out, pool: pool)
        case .groupNorm(let groups, let eps, let affine):
            NormalizationKernel.groupNorm(groups: groups, eps: eps, x: x[0], weight: affine ? weight(0) : nil, bias: affine ? weight(1) : nil,
                                          out: out, pool: pool)
        case .instanceNorm(let eps, let affine):
            NormalizationKernel.groupNorm(groups: x[0].shape[1], eps: eps, x: x[0], weight: affine ? weight(0) : nil,
                                          bias: affine ? weight(1) : nil, out: out, pool: pool)
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
        case .pool2d(let p): ResamplingKernel.pool2d(p, x: x[0], out: out, pool: pool)
        case .globalPool(let k): ResamplingKernel.globalPool(k, x: x[0], out: out)
        case .upsample(let u): ResamplingKernel.upsample(u, x: x[0], out: out, pool: pool)
        case .pixelShuffle(let f): LayoutKernel.pixelShuffle(factor: f, x: x[0], out: out)
        case .channelShuffle(let g): LayoutKernel.channelShuffle(groups: g, x: x[0], out: out)
        case .pad(let p): LayoutKernel.pad(p, x: x[0], out: out, pool: pool)
        case .crop(let c): LayoutKernel.crop(c, x: x[0], out: out)
        case .timestepEmbedding(let t): ConditioningKernel.timestepEmbedding(t, x: x[0], out: out)
        case .labToRGB: ConditioningKernel.labToRGB(x: x[0], out: out)
        case .toTokens: LayoutKernel.tokens(x: x[0], out: out, toTokens: true, pool: pool)
        case .fromTokens: LayoutKernel.tokens(x: x[0], out: out, toTokens: false, pool: pool)
        case .attention(let a):
            let q = a.qkvBias
            // Weight order: to_q.weight, [to_q.bias], to_k.weight, [to_k.bias], to_v.weight, [to_v.bias], to_out.0.weight, [to_out.0.bias].
            let step = q ? 2 : 1
            AttentionKernel.run(a, x: x[0], context: x.count > 1 ? x[1] : nil,
                                weights: (required(0), q ? weight(1) : nil, required(step), q ? weight(step + 1) : nil,
                                          required(2 * step), q ? weight(2 * step + 1) : nil, required(3 * step), a.outBias ? weight(3 * step + 1) : nil),
                                out: out, pool: pool, probabilities: probabilities)
        }
    }
}
