import UNetIR

/// Merges steps that compute the same thing: same operator, same operands, same weights (by identity).
///
/// A diffusion UNet computes `silu(temb)` once per residual block; after this pass it is computed once.
public struct CommonSubexpressionElimination: GraphPass {
    public init() {}
    public var name: String { "cse" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var merged = 0
        var seen: [String: Int] = [:]
        for i in graph.steps.indices where graph.steps[i].live {
            let step = graph.steps[i]
            if case .input = step.op { continue }
            let weightIDs = step.weights.map { $0.map { "\(ObjectIdentifier($0).hashValue)" } ?? "-" }
            let key = "\(step.op)|\(step.inputs)|\(step.operatorArity)|\(step.epilogue)|\(weightIDs)"
            if let first = seen[key] {
                graph.replaceUses(of: i, with: first)
                graph.steps[first].absorbed.append(step.name)
                graph.steps[i].live = false
                merged += 1
            } else {
                seen[key] = i
            }
        }
        return merged
    }
}
