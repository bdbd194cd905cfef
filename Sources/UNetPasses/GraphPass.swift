import UNetIR

/// One rewrite of the optimized graph. Each pass lives in its own file and says what it changed.
public protocol GraphPass {
    /// Name used by `--print-after` and reports.
    var name: String { get }
    /// Rewrites `graph` in place; returns how many rewrites it made.
    func run(_ graph: inout OptimizedGraph) -> Int
}

/// Runs the passes in order; a hook sees the graph after each one (`--print-after`).
public struct PassManager {
    public var passes: [any GraphPass]

    public init(passes: [any GraphPass]) { self.passes = passes }

    /// The standard pipeline without the blocked layout (which needs AVX-512 or AVX2 kernels); `-O0` runs none of it.
    public static var standard: PassManager { standard(blockedLayout: false) }

    /// The standard pipeline; `blockedLayout` where the machine has the blocked-layout kernels.
    public static func standard(blockedLayout: Bool) -> PassManager { PassManager(passes: [
        DeadCodeElimination(),
        CommonSubexpressionElimination(),
        ConstantFolding(),
        BatchNormFolding(),
        AffineFolding(),
        PointwiseBeforeUpsample(),
        ConditioningHoisting(),
        EpilogueFusion(),
        ConcatElimination(),
        GroupNormStatistics(),
        ConvolutionAlgorithmSelection(),
        BlockedLayoutSelection(enabled: blockedLayout),
        DepthwisePointwiseFusion(),
        NormAttentionFusion(),
        PadConvolutionFusion(),
        NormConvolutionFusion(),
        UpsampleConvolutionFusion(),
        DeadCodeElimination(),
    ]) }

    public static var passNames: [String] { standard.passes.map(\.name) }

    /// Runs every pass; returns (pass name, rewrites) in order.
    @discardableResult
    public func run(_ graph: inout OptimizedGraph, after: ((String, OptimizedGraph) -> Void)? = nil) -> [(String, Int)] {
        var log: [(String, Int)] = []
        for pass in passes {
            let changes = pass.run(&graph)
            log.append((pass.name, changes))
            after?(pass.name, graph)
        }
        return log
    }
}
