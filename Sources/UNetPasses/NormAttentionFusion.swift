import UNetIR

/// Fuses the GroupNorm (or InstanceNorm) in front of a blocked spatial self-attention into it
/// (diffusers' `Attention` with its `group_norm`). The blocked attention copies its input from
/// channel blocks into the plain matrix its Q, K, V projection reads anyway; the norm's per-channel
/// scale and shift are applied in that copy, so the normalised map is never written to memory and
/// read back, and the step that wrote it, bound by memory on a map that fits in L2, is gone. On
/// the DDPM UNet at two threads such a norm took 0.02-0.025 ms, slower than at one thread (half
/// its input lies in the other core's cache).
///
/// Runs after `BlockedLayoutSelection`, whose layouts it reads, and `GroupNormStatistics`: the
/// norm's moments still come from its producer's block statistics.
public struct NormAttentionFusion: GraphPass {
    public init() {}

    public var name: String { "norm-attention-fusion" }

    /// Whether blocked norm step `norm` may be computed by blocked step `attention`, its reader:
    /// a norm with nothing fused after it, read once as the only operator input of a self-attention
    /// on a feature map. The plan loader checks the same of a plan's steps.
    public static func fusible(_ norm: Step, into attention: Step) -> Bool {
        guard norm.live, attention.live, norm.layout == .blocked16, attention.layout == .blocked16, norm.epilogue.isEmpty,
              norm.inputs.count == 1, norm.operatorArity == 1, norm.shape.count == 4, attention.shape == norm.shape else { return false }
        switch norm.op {
        case .groupNorm, .instanceNorm: break
        default: return false
        }
        guard case .attention = attention.op, attention.operatorArity == 1, let first = attention.inputs.first else { return false }
        return attention.inputs.filter { $0 == first }.count == 1
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        graph.fuseIntoReaders { step, reader, _ in Self.fusible(step, into: reader) }
    }
}
