import UNetIR

/// Chooses how each convolution computes: Winograd F(4x4, 3x3) for the 3x3 stride-1 convolutions
/// that dominate UNets, where it pays, and im2col GEMM elsewhere.
///
/// Winograd does a quarter of the multiplies, but every 4x4 output tile costs an input and an output
/// transform, and the transformed filters take four times the memory (and plan bytes) of the plain
/// ones. So it needs enough channels to amortise the transforms (at least 16 in and out) and at
/// least 16 tiles (a 16x16 map, whose 16 tiles run through the 12x16 microkernel: on the DDPM UNet
/// that took the 16x16 convolutions from about 150 to 230 GFLOP/s-equivalent, and the plan from
/// 177 to 270 MB). Smaller maps (8x8 has 4 tiles, and a width that is not a multiple of 16) and
/// the 3-channel stem stay direct.
public struct ConvolutionAlgorithmSelection: GraphPass {
    public init() {}
    public var name: String { "conv-algo" }

    static let minimumChannels = 16
    static let minimumTiles = 16

    /// The shapes the Winograd kernel handles: what a plan may ask for (checked when it is loaded).
    public static func winogradApplies(_ c: Conv2D, input: Shape, output: Shape) -> Bool {
        guard c.kernel == (3, 3), c.stride == (1, 1), c.dilation == (1, 1), c.groups == 1,
              input.count == 4, output.count == 4, input[0] == output[0], output[1] == c.out else { return false }
        let (ho, wo) = (output[2], output[3])
        // The outputs tile exactly, and tile columns come in groups of four (the kernel's 16 lanes).
        return ho % 4 == 0 && wo % 16 == 0 && ho == input[2] + 2 * c.pad.0 - 2 && wo == input[3] + 2 * c.pad.1 - 2
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var chosen = 0
        for i in graph.steps.indices where graph.steps[i].live {
            guard case .conv2d(let c) = graph.steps[i].op, let x = graph.steps[i].inputs.first else { continue }
            let input = graph.steps[x].shape, output = graph.steps[i].shape
            guard Self.winogradApplies(c, input: input, output: output), input[1] >= Self.minimumChannels, c.out >= Self.minimumChannels,
                  output[2] / 4 * (output[3] / 4) >= Self.minimumTiles else { continue }
            graph.steps[i].algorithm = .winograd4x4
            chosen += 1
        }
        return chosen
    }
}
