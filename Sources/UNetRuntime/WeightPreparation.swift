import UNetIR
import UNetPasses
import UNetPlan

/// Convolution filters in the layout their kernel reads (GEMM panels, Winograd-domain panels),
/// prepared once: when a program is loaded from a graph, or when a plan is written, so that
/// loading the plan maps them as they are.
public enum WeightPreparation {
    /// Rows of this machine's microkernel panels: what prepared weights in a plan are packed for.
    public static var panelRows: Int { GEMM.mr }

    /// Whether this machine has the channel-blocked layout's kernels (AVX-512 or AVX2).
    public static var blockedLayoutAvailable: Bool { BlockedLayoutKernel.available }

    /// The graph as this machine runs it: Winograd convolutions become GEMM ones where the CPU has
    /// no Winograd kernels, so a plan written here records what its prepared weights are.
    public static func runnable(_ graph: OptimizedGraph) -> OptimizedGraph {
        guard !WinogradConvolution.available else { return graph }
        var g = graph
        for i in g.steps.indices where g.steps[i].algorithm == .winograd4x4 { g.steps[i].algorithm = .gemm }
        return g
    }

    /// Step `i`'s filters in its kernel's layout, from the plain `weight` (GEMM or Winograd panels,
    /// blocked-layout filters, a transposed convolution's GEMM panels or blocks); nil for convolutions that
    /// read plain weights (plain-layout depthwise) and for every other operator.
    static func prepare(_ graph: OptimizedGraph, step i: Int, weight: Tensor) -> ConvolutionKernel.PreparedWeights? {
        let step = graph.steps[i]
        if step.live, case .convTranspose2d(let c) = step.op, let input = step.inputs.first {
            if step.layout == .blocked16 {
                return .blockedTransposed(BlockedLayoutKernel.TransposedWeights(weight: weight, inputChannels: graph.steps[input].shape[1],
                                                                                outputChannels: c.out))
            }
            return .panels(ConvolutionKernel.PackedWeights(transposed: c, weight: weight, inputChannels: graph.steps[input].shape[1]))
        }
        guard step.live, case .conv2d(let c) = step.op, let input = step.inputs.first else { return nil }
        let cin = graph.steps[input].shape[1]
        if step.layout == .blocked16 {
            if step.algorithm == .winograd4x4 {
                return .blockedWinograd(BlockedWinogradConvolution.Weights(weight: weight, outputChannels: c.out, inputChannels: cin))
            }
            return .blocked(BlockedLayoutKernel.Weights(c, weight: weight, inputChannels: cin))
        }
        if cin / c.groups == 1 && c.out / c.groups == 1 { return nil }
        if step.algorithm == .winograd4x4 && WinogradConvolution.available {
            return .winograd(WinogradConvolution.TransformedWeights(weight: weight, outputChannels: c.out, inputChannels: cin))
        }
        return .panels(ConvolutionKernel.PackedWeights(c, weight: weight, inputChannels: cin))
    }

    /// Filters already prepared in `layout` (read from a plan), viewed without a copy.
    static func view(_ graph: OptimizedGraph, step i: Int, stored: Tensor, layout: WeightLayout) -> ConvolutionKernel.PreparedWeights? {
        let step = graph.steps[i]
        // Transposed convolutions' filters are stored plain and packed here.
        if case .convTranspose2d = step.op { return layout == .plain ? prepare(graph, step: i, weight: stored) : nil }
        guard step.live, case .conv2d(let c) = step.op, let input = step.inputs.first else { return nil }
        let cin = graph.steps[input].shape[1]
        switch layout {
        case .plain: return prepare(graph, step: i, weight: stored)
        case .gemmPanels: return .panels(ConvolutionKernel.PackedWeights(c, packed: stored, inputChannels: cin))
        case .winogradPanels: return .winograd(WinogradConvolution.TransformedWeights(transformed: stored, outputChannels: c.out, inputChannels: cin))
        case .winogradBlocked: return .blockedWinograd(BlockedWinogradConvolution.Weights(transformed: stored))
        case .blocked: return .blocked(BlockedLayoutKernel.Weights(prepared: stored))
        }
    }

    /// What a plan stores for step `i`'s first weight: its prepared form, or nil to keep it plain.
    public static func planWeight(_ graph: OptimizedGraph, step i: Int) -> PlanFormat.PreparedWeight? {
        // Only convolutions' filters are stored prepared; transposed ones are packed at load.
        guard case .conv2d = graph.steps[i].op, let constant = graph.steps[i].weights.first ?? nil,
              let prepared = prepare(graph, step: i, weight: Tensor(shape: constant.shape, values: constant.values)) else { return nil }
        switch prepared {
        case .panels(let p): return PlanFormat.PreparedWeight(layout: .gemmPanels, values: p.storage.values)
        case .winograd(let w): return PlanFormat.PreparedWeight(layout: .winogradPanels, values: w.storage.values)
        case .blockedWinograd(let w): return PlanFormat.PreparedWeight(layout: .winogradBlocked, values: w.storage.values)
        // Stored prepared so that loading maps them: prepared at load, the plain filters read to
        // make them stayed resident beside them (the DDPM UNet's RSS 311 -> 385 MiB, its load 47 -> 100 ms).
        case .blocked(let w): return PlanFormat.PreparedWeight(layout: .blocked, values: w.storage.values)
        case .blockedTransposed: return nil
        }
    }
}
