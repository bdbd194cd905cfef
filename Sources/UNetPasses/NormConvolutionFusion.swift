import UNetIR

/// Fuses a GroupNorm (or InstanceNorm), with the activation fused after it, into the blocked 3x3
/// convolution that is its only reader when that convolution runs by im2col (the small maps of a
/// diffusion UNet's resnets: GroupNorm, SiLU, 3x3). The im2col copies every input block nine
/// times anyway; it normalises and activates each block once into the thread's scratch and copies
/// the taps from there, so the normalised map is never written and read back. Separately, the
/// norms of 8x8 and 4x4 maps took 5-15 µs each, and at two threads 1-3 µs longer than at one:
/// run alone, a step reads half its input from the other core's cache.
///
/// Runs after `BlockedLayoutSelection` and `ConvolutionAlgorithmSelection`, whose layouts and
/// algorithms it reads, and `GroupNormStatistics`: the norm's moments still come from its
/// producer's block statistics.
public struct NormConvolutionFusion: GraphPass {
    public init() {}

    public var name: String { "norm-convolution-fusion" }

    /// Whether blocked norm step `norm` may be computed by blocked step `conv`, its reader: a norm
    /// followed by activations only, read once as the operator input of a 3x3 that runs by im2col.
    /// The plan loader checks the same of a plan's steps.
    public static func fusible(_ norm: Step, into conv: Step) -> Bool {
        guard norm.live, conv.live, norm.layout == .blocked16, conv.layout == .blocked16, norm.inputs.count == 1, norm.operatorArity == 1,
              norm.shape.count == 4, norm.epilogue.allSatisfy({ if case .unary = $0 { true } else { false } }) else { return false }
        switch norm.op {
        case .groupNorm, .instanceNorm: break
        default: return false
        }
        guard case .conv2d(let c) = conv.op, c.groups == 1, c.kernel == (3, 3), c.dilation == (1, 1), conv.algorithm == .gemm,
              BlockedLayoutSelection.blockedKernelApplies(conv.op, input: norm.shape, output: conv.shape, algorithm: conv.algorithm),
              conv.operatorArity >= 1, let first = conv.inputs.first else { return false }
        return conv.inputs.filter { $0 == first }.count == 1
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        graph.fuseIntoReaders { step, reader, _ in Self.fusible(step, into: reader) }
    }
}
