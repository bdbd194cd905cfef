import UNetIR

/// Fuses a blocked 3x3 depthwise convolution into the blocked 1x1 convolution that is its only
/// reader (MobileNet's separable blocks): the 1x1 step computes the depthwise output three rows at
/// a time into a buffer that stays in L2, and prefetches the input rows of the next band while its
/// tiles compute, so the depthwise output is never written to memory and read back.
///
/// Only on large maps: separately, a depthwise convolution there is bound by the memory it reads and
/// writes (a 64-channel 256x256 map is 16 MB each way), while maps that fit in the caches gain
/// nothing. Measured on the kernels alone (AVX-512, one thread): 64 channels at 256x256 into 32,
/// 4.5 -> 3.7 ms; 128 at 128x128 into 64, 3.4 -> 3.05 ms; 64 at 64x64, 1.54 -> 1.50 ms; 128 at
/// 64x64, 1.40 -> 1.42 ms.
///
/// Runs after `BlockedLayoutSelection`, whose layouts it reads.
public struct DepthwisePointwiseFusion: GraphPass {
    /// Bytes of depthwise input from which the fusion pays (4 MiB: 64 channels at 128x128).
    public static let defaultMinimumInputBytes = 4 << 20

    public var minimumInputBytes: Int

    public init(minimumInputBytes: Int = DepthwisePointwiseFusion.defaultMinimumInputBytes) {
        self.minimumInputBytes = minimumInputBytes
    }

    public var name: String { "depthwise-pointwise-fusion" }

    /// Whether blocked step `dw` may be computed by blocked step `pw`, its reader: the shapes and
    /// epilogues the fused kernel handles. The plan loader checks the same of a plan's steps.
    public static func fusible(_ dw: Step, into pw: Step, input: Shape) -> Bool {
        guard dw.live, pw.live, dw.layout == .blocked16, pw.layout == .blocked16, dw.inputs.count == 1, dw.operatorArity == 1,
              case .conv2d(let d) = dw.op, case .conv2d(let p) = pw.op, input.count == 4, dw.shape == input,
              BlockedLayoutSelection.blockedKernelApplies(dw.op, input: input, output: dw.shape),
              BlockedLayoutSelection.blockedKernelApplies(pw.op, input: dw.shape, output: pw.shape),
              Epilogue.clampBounds(dw.epilogue) != nil else { return false }
        // The depthwise kernel (groups = channels) into a one-group 1x1 that reads it once, as its operator input.
        guard d.groups == input[1], d.groups > 1, p.isPointwise, p.groups == 1, pw.operatorArity >= 1, let first = pw.inputs.first else { return false }
        return pw.inputs.filter { $0 == first }.count == 1
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        graph.fuseIntoReaders { dw, pw, input in
            Self.fusible(dw, into: pw, input: input) && (OpSemantics.elementCount(input) ?? 0) * 4 >= minimumInputBytes
        }
    }
}
