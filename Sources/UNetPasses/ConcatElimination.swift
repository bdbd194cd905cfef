import UNetIR

/// Zero-copy skip concatenation: when a channel concat's operands are each a contiguous block of
/// its output (batch 1), every producer writes straight into its slice and the concat does nothing.
public struct ConcatElimination: GraphPass {
    public init() {}
    public var name: String { "concat-elim" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var elided = 0
        let outputs = graph.outputSteps
        var claimed = Set<Int>()
        for c in graph.steps.indices where graph.steps[c].live && !graph.elidedConcats.contains(c) {
            guard case .concat(let axis) = graph.steps[c].op, graph.steps[c].epilogue.isEmpty else { continue }
            let shape = graph.steps[c].shape
            let a = axis < 0 ? axis + shape.count : axis
            guard shape[..<a].allSatisfy({ $0 == 1 }) else { continue }
            let operands = graph.steps[c].inputs
            let eligible = Set(operands).count == operands.count && operands.allSatisfy { v in
                let s = graph.steps[v]
                if case .input = s.op { return false }
                return s.live && !outputs.contains(v) && !claimed.contains(v) && !graph.elidedConcats.contains(v) && !Self.isView(s.op)
            }
            guard eligible else { continue }
            graph.elidedConcats.insert(c)
            claimed.formUnion(operands)
            elided += 1
        }
        return elided
    }

    /// Ops the memory planner turns into aliases of their operand.
    public static func isView(_ op: Op) -> Bool {
        switch op {
        case .reshape, .unary(.identity): return true
        default: return false
        }
    }
}
