import UNetIR
import UNetPasses
import UNetRuntime

/// Options of one compilation.
public struct CompileOptions: Sendable {
    /// false is `-O0`: one step per IR node, no fusion; memory is still planned.
    public var optimize = true
    /// Memory the model may claim; checked before weights are read and before the arena is allocated.
    public var budget = MemoryBudget()
    /// Channel-blocked regions (`BlockedLayoutSelection`): by default where this machine has the kernels.
    public var blockedLayout = WeightPreparation.blockedLayoutAvailable
    public init(optimize: Bool = true, budget: MemoryBudget = MemoryBudget(), blockedLayout: Bool = WeightPreparation.blockedLayoutAvailable) {
        self.optimize = optimize
        self.budget = budget
        self.blockedLayout = blockedLayout
    }
}

/// The optimizer driver: IR plus weights in, optimized graph and memory plan out.
public enum Compiler {
    public struct Result: Sendable {
        public var graph: OptimizedGraph
        public var memory: MemoryPlan
        /// (pass, rewrites) in the order they ran.
        public var log: [(String, Int)]
    }

    public static func compile(_ graph: Graph, weights: WeightSet, options: CompileOptions = CompileOptions(),
                               after: ((String, OptimizedGraph) -> Void)? = nil) -> Result {
        var optimized = OptimizedGraph(graph: graph, weights: weights)
        var log: [(String, Int)] = []
        if options.optimize { log = PassManager.standard(blockedLayout: options.blockedLayout).run(&optimized, after: after) }
        return Result(graph: optimized, memory: MemoryPlan.plan(optimized), log: log)
    }

    /// Weights read from a file, as the compiler's constants.
    public static func constants(_ tensors: [String: Tensor]) -> WeightSet {
        WeightSet(tensors: tensors.mapValues { ConstantTensor(shape: $0.shape, values: $0.values) })
    }
}
