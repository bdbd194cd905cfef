import UNetIR

/// Fuses a nearest 2x upsampling into the blocked 3x3 convolution that is its only reader when
/// that convolution runs by im2col (a diffusion UNet's upsampler on its smallest map): the im2col
/// reads each tap of the upsampled map from the pixel it repeats, so the upsampled map, four times
/// the input, is never written. Separately, the 4x4-to-8x8 upsampling of the DDPM UNet took 4 µs,
/// and about 1 µs longer at two threads than at one.
///
/// Runs after `BlockedLayoutSelection` and `ConvolutionAlgorithmSelection`, whose layouts and
/// algorithms it reads.
public struct UpsampleConvolutionFusion: GraphPass {
    public init() {}

    public var name: String { "upsample-convolution-fusion" }

    /// Whether blocked upsampling step `upsample` may be computed by blocked step `conv`, its
    /// reader: a nearest 2x upsampling read once as the operator input of a 3x3 that runs by
    /// im2col. The plan loader checks the same of a plan's steps.
    public static func fusible(_ upsample: Step, into conv: Step, input: Shape) -> Bool {
        guard upsample.live, conv.live, upsample.layout == .blocked16, conv.layout == .blocked16, upsample.epilogue.isEmpty,
              upsample.inputs.count == 1, upsample.operatorArity == 1, case .upsample(let u) = upsample.op, u.mode == .nearest,
              input.count == 4, upsample.shape.count == 4, upsample.shape[2] == 2 * input[2], upsample.shape[3] == 2 * input[3],
              BlockedLayoutSelection.blockedKernelApplies(upsample.op, input: input, output: upsample.shape),
              case .conv2d(let c) = conv.op, c.groups == 1, c.kernel == (3, 3), c.dilation == (1, 1), conv.algorithm == .gemm,
              BlockedLayoutSelection.blockedKernelApplies(conv.op, input: upsample.shape, output: conv.shape, algorithm: conv.algorithm),
              conv.operatorArity >= 1, let first = conv.inputs.first else { return false }
        return conv.inputs.filter { $0 == first }.count == 1
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        graph.fuseIntoReaders { step, reader, input in Self.fusible(step, into: reader, input: input) }
    }
}
