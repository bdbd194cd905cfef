import UNetIR
import UNetPasses
import UNetPlan

/// What the executor runs: the optimized steps, their memory plan and their weights as run-time tensors.
public final class Program: @unchecked Sendable {
    public let graph: OptimizedGraph
    public let memory: MemoryPlan
    /// Per step, in `OpSemantics.weights` order.
    public let weights: [[Tensor?]]
    /// Per step, the layout of its first weight: a plan stores convolution filters already prepared.
    public let layouts: [WeightLayout]

    public init(graph: OptimizedGraph, memory: MemoryPlan, weights: [[Tensor?]], layouts: [WeightLayout]? = nil) {
        self.graph = graph
        self.memory = memory
        self.weights = weights
        self.layouts = layouts ?? graph.steps.map { _ in .plain }
    }

    /// Copies the compiler's constant tensors into run-time tensors.
    public convenience init(graph: OptimizedGraph, memory: MemoryPlan) {
        let weights = graph.steps.map { step in
            step.weights.map { w in w.map { Tensor(shape: $0.shape, values: $0.values) } }
        }
        self.init(graph: graph, memory: memory, weights: weights)
    }
}
