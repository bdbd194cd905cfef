import UNetIR

/// Runs a 1x1 convolution before the nearest-neighbour upsampling that feeds it, instead of after.
///
/// Nearest upsampling only copies pixels, and a 1x1 convolution computes each pixel from that pixel
/// alone, so `conv1x1(upsample(x)) == upsample(conv1x1(x))` bit for bit. Run on the small map, the
/// convolution does a quarter of the work (for 2x) and the upsample moves the convolution's
/// output channels instead of its input channels: the "nearest 2x upsample + 1x1" of MobileUNet's
/// decoders, the costliest steps at its 256x256 level, shrink to a quarter.
///
/// The two steps swap places in their slots, so every reader of the convolution now reads the
/// upsample (same shape) and no other id changes. Only an upsample that enlarges the map and feeds
/// nothing but the convolution moves, and only before epilogues are fused.
public struct PointwiseBeforeUpsample: GraphPass {
    public init() {}
    public var name: String { "pointwise-before-upsample" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        let users = graph.consumers()
        let outputs = graph.outputSteps
        var moved = 0
        for c in graph.steps.indices where graph.steps[c].live {
            let conv = graph.steps[c]
            guard case .conv2d(let p) = conv.op, p.kernel == (1, 1), p.stride == (1, 1), p.pad == (0, 0),
                  conv.epilogue.isEmpty, conv.operatorArity == 1, conv.inputs.count == 1 else { continue }
            let u = conv.inputs[0]
            let up = graph.steps[u]
            guard case .upsample(let mode) = up.op, mode.mode == .nearest, up.live, up.epilogue.isEmpty, up.inputs.count == 1,
                  users[u] == [c], !outputs.contains(u), up.shape.count == 4 else { continue }
            let x = up.inputs[0]
            let small = graph.steps[x].shape
            guard small.count == 4, small[2] * small[3] < up.shape[2] * up.shape[3] else { continue }
            var lowConv = conv
            lowConv.inputs = [x]
            lowConv.shape = [small[0], conv.shape[1], small[2], small[3]]
            var lateUpsample = up
            lateUpsample.inputs = [u]
            lateUpsample.shape = conv.shape
            graph.steps[u] = lowConv
            graph.steps[c] = lateUpsample
            moved += 1
        }
        return moved
    }
}
