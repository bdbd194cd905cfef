import UNetIR
import UNetPasses

extension Executor {
    /// What a step's kernel computes of the step it reads when that step is fused into it
    /// (`Step.fusedIntoConsumer`); the kernel reads the fused step's input instead.
    enum FusedInput {
        /// A blocked 3x3 depthwise convolution, computed band by band by the blocked 1x1 after it.
        case depthwise(BlockedLayoutKernel.Depthwise)
        /// A GroupNorm (and its activations), applied by a blocked self-attention or im2col 3x3 as
        /// it copies its input; `producer` is the step whose block statistics it reads, if recorded.
        case norm(NormalizationKernel.FusedNorm, producer: Int)
        /// A zero pad, become the im2col 3x3's padding: that convolution with its padding.
        case pad(Op)
        /// A nearest 2x upsampling, read through by the im2col 3x3.
        case upsample

        var norm: (norm: NormalizationKernel.FusedNorm, producer: Int)? {
            if case .norm(let n, let producer) = self { (n, producer) } else { nil }
        }

        var isUpsample: Bool { if case .upsample = self { true } else { false } }
    }

    /// Step `i`'s fused input, or nil when it has none or its kernel cannot compute the one it has
    /// (the run then refuses the step). Only the blocked im2col 3x3 applies norms, pads and
    /// upsamplings as it reads, besides the attention's norms and the 1x1's depthwise steps.
    static func fusedInput(of i: Int, in program: Program, prepared: [ConvolutionKernel.PreparedWeights?]) -> FusedInput? {
        let steps = program.graph.steps
        guard steps[i].live, let d = steps[i].inputs.first, steps[d].live, steps[d].fusedIntoConsumer else { return nil }
        let im2col: Bool
        if case .conv2d(let c) = steps[i].op, case .blocked = prepared[i] {
            im2col = BlockedLayoutKernel.runsIm2col(c, inputChannels: steps[d].shape[1])
        } else {
            im2col = false
        }
        let w = program.weights[d]
        func weight(_ k: Int) -> Tensor? { k < w.count ? w[k] : nil }
        switch steps[d].op {
        case .conv2d(let c):
            guard case .conv2d = steps[i].op, case .blocked(let weights) = prepared[d],
                  let bounds = Epilogue.clampBounds(steps[d].epilogue) else { return nil }
            return .depthwise(BlockedLayoutKernel.Depthwise(weights: weights, bias: c.bias ? weight(1) : nil, lower: bounds.lower, upper: bounds.upper))
        case .groupNorm, .instanceNorm:
            let reader: Bool = if case .attention = steps[i].op { true } else { im2col }
            guard reader else { return nil }
            let activations = steps[d].epilogue.compactMap { e -> UnaryOp? in if case .unary(let u) = e { u } else { nil } }
            let (groups, eps, affine): (Int, Double, Bool)
            switch steps[d].op {
            case .groupNorm(let g, let e, let a): (groups, eps, affine) = (g, e, a)
            case .instanceNorm(let e, let a): (groups, eps, affine) = (steps[d].shape[1], e, a)
            default: return nil
            }
            return .norm(NormalizationKernel.FusedNorm(groups: groups, eps: eps, weight: affine ? weight(0) : nil, bias: affine ? weight(1) : nil,
                                                       activations: activations), producer: steps[d].inputs[0])
        case .pad(let p):
            guard im2col, case .conv2d(var c) = steps[i].op else { return nil }
            c.pad = PadConvolutionFusion.padding(of: c, fused: p)
            return .pad(.conv2d(c))
        case .upsample:
            return im2col ? .upsample : nil
        default:
            return nil
        }
    }
}
