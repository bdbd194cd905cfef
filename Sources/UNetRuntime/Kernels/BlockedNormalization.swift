import UNetIR
import UNetPasses

/// GroupNorm and InstanceNorm on the channel-blocked layout NCHW16c. A group's channels may share
/// a 16-channel block with other groups (384 channels in 32 groups of 12), so the kernel first
/// finds every group's mean and inverse deviation, from the producer's block statistics when it
/// recorded them (`Epilogue.statistics`) or from its own, then normalises whole blocks with
/// per-lane scale and shift vectors. Each channel's scale and shift are formed exactly as in the
/// plain kernel, and statistics merge in the same fixed order, so neither the layout's blocking
/// nor the thread count changes how a group's moments are combined.
extension NormalizationKernel {
    static func groupNormBlocked(groups: Int, eps: Double, x: Tensor, weight: Tensor?, bias: Tensor?, out: Tensor, pool: ThreadPool,
                                 epilogue: EpilogueContext?, statistics recorded: UnsafeMutablePointer<Float>?) {
        let (batch, channels, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let blocks = channels / 16
        let affine = blockedAffine(groups: groups, eps: eps, x: x, weight: weight, bias: bias, pool: pool, statistics: recorded)
        let xd = x.data, od = out.data, ad = affine.data
        let (parts, perPart) = BlockedLayoutKernel.pixelParts(blocks: batch * blocks, pixels: plane, granule: Epilogue.statisticsBlock,
                                                              threads: pool.threads)
        let moved = x.count + out.count + (epilogue == nil ? 0 : 2 * out.count)
        pool.parallelFor(batch * blocks * parts, elements: moved) { task in
            let block = task / parts, p0 = task % parts * perPart
            guard p0 < plane else { return }
            let pixels = p0..<min(plane, p0 + perPart)
            let (src, dst) = (xd + (block * plane + p0) * 16, od + (block * plane + p0) * 16)
            BlockedLayoutKernel.scaleShift(src, dst, pixels: pixels.count, scale: ad + block * 32, shift: ad + block * 32 + 16)
            if let epilogue {
                EpilogueKernel.applyBlocked(epilogue, out: od, channels: channels, pixels: plane, batch: block / blocks,
                                            blocks: (block % blocks)..<(block % blocks + 1), pixelRange: pixels)
            }
        }
        withExtendedLifetime(affine) {}
    }

    /// The norm as an affine map per channel of blocked map `x`: per sample and 16-channel block,
    /// 16 scales then 16 shifts (`[B * C / 16][32]`), which `groupNormBlocked` applies and the
    /// blocked attention applies as it copies its input (`NormAttentionFusion`).
    static func blockedAffine(groups: Int, eps: Double, x: Tensor, weight: Tensor?, bias: Tensor?, pool: ThreadPool,
                              statistics recorded: UnsafeMutablePointer<Float>?) -> Tensor {
        let (batch, channels, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let blocks = channels / 16, perGroup = channels / groups
        let slotsPerChannel = (plane + Epilogue.statisticsBlock - 1) / Epilogue.statisticsBlock * 2
        let xd = x.data, wd = weight?.data, bd = bias?.data
        // Without the producer's statistics: the same per-block statistics, recorded here.
        let own = Tensor(shape: [recorded == nil ? batch * channels * slotsPerChannel : 1])
        let statistics = recorded ?? own.data
        if recorded == nil {
            pool.parallelFor(batch * blocks, elements: x.count) { task in
                EpilogueKernel.recordBlocked(xd, into: statistics, channels: channels, pixels: plane, batch: task / blocks,
                                             block: task % blocks, pixelRange: 0..<plane)
            }
        }
        // Per channel: its scale, then its shift.
        let affine = Tensor(shape: [batch * channels * 2])
        let ad = affine.data
        pool.parallelFor(batch * groups, elements: batch * channels * slotsPerChannel) { task in
            let (mean, squares) = NormalizationKernel.combine(statistics, task: task, channels: perGroup, pixels: plane)
            let inverse = 1 / (squares / Double(perGroup * plane) + eps).squareRoot()
            let (b, group) = (task / groups, task % groups)
            for c in (group * perGroup)..<((group + 1) * perGroup) {
                let s = Float(inverse) * (wd?[c] ?? 1)
                ad[(b * blocks + c / 16) * 32 + c % 16] = s
                ad[(b * blocks + c / 16) * 32 + 16 + c % 16] = (bd?[c] ?? 0) - Float(mean) * s
            }
        }
        withExtendedLifetime(own) {}
        return affine
    }

    /// A GroupNorm (InstanceNorm: a group per channel) and the activations after it, computed by
    /// the blocked step that reads it as that step copies its input: a self-attention
    /// (`NormAttentionFusion`, no activations) or a 3x3 convolution's im2col (`NormConvolutionFusion`).
    struct FusedNorm: Sendable {
        let groups: Int
        let eps: Double
        let weight: Tensor?
        let bias: Tensor?
        let activations: [UnaryOp]

        /// Per block of `x`, the norm's 16 scales then 16 shifts (`blockedAffine`).
        func affine(x: Tensor, pool: ThreadPool, statistics: UnsafeMutablePointer<Float>?) -> Tensor {
            NormalizationKernel.blockedAffine(groups: groups, eps: eps, x: x, weight: weight, bias: bias, pool: pool, statistics: statistics)
        }

        /// Block `block` (of `pixels` pixels) normalised and activated into `dst`: the multiply and
        /// add, then each activation, as the separate norm step computes them.
        func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, pixels: Int, affine: UnsafePointer<Float>, block: Int) {
            BlockedLayoutKernel.scaleShift(src, dst, pixels: pixels, scale: affine + block * 32, shift: affine + block * 32 + 16)
            for u in activations { EpilogueKernel.unary(u, dst, 0..<(pixels * 16)) }
        }
    }
}
