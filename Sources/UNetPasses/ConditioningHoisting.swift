import UNetIR

/// Schedules conditioning steps (those that do not depend on any image input: the timestep
/// embedding MLP, per-block time projections, class-embedding projections) as early as their
/// operands allow. A residual block's `conv1 + proj(temb)` can then be fused into conv1's
/// epilogue, because the projection is computed before conv1 runs.
public struct ConditioningHoisting: GraphPass {
    public init() {}
    public var name: String { "hoist" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        let n = graph.steps.count
        var spatial = [Bool](repeating: false, count: n)
        for (i, s) in graph.steps.enumerated() {
            if case .input = s.op {
                spatial[i] = s.shape.count == 4
            } else {
                spatial[i] = s.inputs.contains { spatial[$0] }
            }
        }
        func small(_ i: Int) -> Bool {
            let s = graph.steps[i]
            if case .input = s.op { return false }
            return s.live && !spatial[i]
        }
        var done = [Bool](repeating: false, count: n)
        var order: [Int] = []
        var pending = (0..<n).filter(small)
        func emit(_ i: Int) {
            done[i] = true
            order.append(i)
        }
        // Graph inputs are available from the start.
        for (_, step, _) in graph.inputs where !done[step] { emit(step) }
        for i in 0..<n where !done[i] {
            emit(i)
            var progress = true
            while progress {
                progress = false
                for (k, t) in pending.enumerated() where !done[t] && graph.steps[t].inputs.allSatisfy({ done[$0] }) {
                    emit(t)
                    pending.remove(at: k)
                    progress = true
                    break
                }
            }
        }
        let moved = zip(order, 0..<n).filter { $0 != $1 }.count
        if moved > 0 { graph.reorder(order) }
        return moved
    }
}
