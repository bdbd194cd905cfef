import UNetIR

/// Removes steps whose value no output depends on.
public struct DeadCodeElimination: GraphPass {
    public init() {}
    public var name: String { "dce" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var needed = [Bool](repeating: false, count: graph.steps.count)
        var stack = graph.outputs.map(\.step)
        while let v = stack.popLast() {
            if needed[v] { continue }
            needed[v] = true
            stack.append(contentsOf: graph.steps[v].inputs)
        }
        var removed = 0
        for i in graph.steps.indices where graph.steps[i].live && !needed[i] {
            if case .input = graph.steps[i].op { continue }
            graph.steps[i].live = false
            removed += 1
        }
        return removed
    }
}
