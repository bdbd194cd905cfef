import UNetIR

/// Constant folding of operator attributes.
///
/// Weights are bound to the operators that use them, so the graph has no free-standing constant
/// subgraphs to evaluate (weight-only arithmetic is folded by `BatchNormFolding` and
/// `AffineFolding`). What is left to fold at compile time are operators whose effect their
/// constant attributes already decide:
/// - operators that are the identity for their operand's shape (`scale(1, 0)`, a reshape or
///   transpose that changes nothing, zero padding, a full-size crop or slice, 1x upsampling,
///   a 1x1 stride-1 pool, a one-operand concat, `to_tokens` undone by `from_tokens`, ...) are removed;
/// - chains of constant maps become one: `scale` of `scale`, `reshape` of `reshape`, `transpose`
///   of `transpose`, `clamp` of `clamp`.
public struct ConstantFolding: GraphPass {
    public init() {}
    public var name: String { "const-fold" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var folded = 0
        var changed = true
        while changed {
            changed = false
            let outputs = graph.outputSteps
            let users = graph.consumers()
            for i in graph.steps.indices where graph.steps[i].live && graph.steps[i].epilogue.isEmpty {
                let step = graph.steps[i]
                guard let p = step.inputs.first, step.operatorArity == step.inputs.count else { continue }
                if let source = identitySource(step, in: graph) {
                    // An output that would become a graph input needs a step to copy it: keep the step.
                    if outputs.contains(i), case .input = graph.steps[source].op { continue }
                    graph.replaceUses(of: i, with: source)
                    graph.steps[i].live = false
                    if case .input = graph.steps[source].op {} else { graph.steps[source].absorbed.append(step.name) }
                    folded += 1
                    changed = true
                    continue
                }
                // Chains: the first map must be used only here, so removing it changes nothing else.
                let first = graph.steps[p]
                guard first.live, first.epilogue.isEmpty, users[p] == [i], !outputs.contains(p), first.inputs.count == 1,
                      let merged = compose(first.op, then: step.op, input: graph.steps[first.inputs[0]].shape, output: step.shape) else { continue }
                graph.steps[i].op = merged
                graph.steps[i].inputs = first.inputs
                graph.steps[i].absorbed += [first.name] + first.absorbed
                graph.steps[p].live = false
                folded += 1
                changed = true
            }
        }
        return folded
    }

    /// The value a step merely passes through, or nil when it computes something.
    func identitySource(_ step: Step, in graph: OptimizedGraph) -> Int? {
        let x = step.inputs[0]
        let input = graph.steps[x].shape
        func same() -> Int? { input == step.shape ? x : nil }
        switch step.op {
        case .unary(.identity), .unary(.scale(1, 0)), .reshape, .crop, .pixelShuffle(1), .channelShuffle(1), .globalPool:
            return same()
        case .transpose(let perm):
            return perm == Array(perm.indices) ? x : nil
        case .slice(_, let start, _):
            return start == 0 ? same() : nil
        case .pad(let p):
            return p.left == 0 && p.right == 0 && p.top == 0 && p.bottom == 0 ? x : nil
        case .upsample:
            // Nearest and bilinear resampling to the same size reproduce the input exactly.
            return same()
        case .pool2d(let p):
            return p.kernel == (1, 1) && p.stride == (1, 1) && p.pad == (0, 0) ? same() : nil
        case .concat:
            return step.inputs.count == 1 ? x : nil
        case .fromTokens:
            // from_tokens(to_tokens(y), ref) is y when the shapes agree.
            guard case .toTokens = graph.steps[x].op, graph.steps[x].live, graph.steps[x].epilogue.isEmpty else { return nil }
            let y = graph.steps[x].inputs[0]
            return graph.steps[y].shape == step.shape ? y : nil
        case .toTokens:
            guard case .fromTokens = graph.steps[x].op, graph.steps[x].live, graph.steps[x].epilogue.isEmpty else { return nil }
            let tokens = graph.steps[x].inputs[0]
            return graph.steps[tokens].shape == step.shape ? tokens : nil
        case .input, .conv2d, .convTranspose2d, .linear, .matmul, .batchNorm, .groupNorm, .layerNorm, .instanceNorm, .unary, .softmax,
             .binary, .film, .pixelShuffle, .channelShuffle, .timestepEmbedding, .attention, .geglu, .labToRGB, .reorder:
            // A reorder keeps the values but not the bytes: its consumers read the other layout.
            return nil
        }
    }

    /// `second ∘ first` as one operator, when both are constant maps of the same kind.
    func compose(_ first: Op, then second: Op, input: Shape, output: Shape) -> Op? {
        switch (first, second) {
        case (.unary(.scale(let f1, let o1)), .unary(.scale(let f2, let o2))):
            return .unary(.scale(factor: f1 * f2, offset: o1 * f2 + o2))
        case (.reshape, .reshape):
            return .reshape(shape: output)
        case (.transpose(let p1), .transpose(let p2)):
            return .transpose(perm: p2.map { p1[$0] })
        case (.unary(.clamp(let lo1, let hi1)), .unary(.clamp(let lo2, let hi2))):
            // clamp(clamp(x, l1, h1), l2, h2) = clamp(x, max(l1, l2), min(h1, h2)) when the ranges overlap.
            let lo = [lo1, lo2].compactMap { $0 }.max(), hi = [hi1, hi2].compactMap { $0 }.min()
            if let lo, let hi, lo > hi { return nil }
            return .unary(.clamp(min: lo, max: hi))
        default:
            return nil
        }
    }
}
