import UNetKernelsAVX512
import UNetKernelsAVX2
import UNetIR
import UNetPasses

/// A fused epilogue applied to an output in the channel-blocked layout NCHW16c: elementwise ops
/// run over a block's pixels as one contiguous range, per-channel ones (`addChannel`, `film`) with
/// 16-channel scale and shift vectors, and `statistics` records the same block statistics as in the
/// plain layout (per channel, per `Epilogue.statisticsBlock` pixels), so a GroupNorm reader in
/// either layout combines them the same way.
extension EpilogueKernel {
    /// Applies the epilogue to channel blocks `blocks` of batch item `b`, pixels `pixelRange` (which
    /// starts on a statistics block boundary). `out` is `[B, C/16, P, 16]`; add operands have its
    /// shape and layout; per-channel operands are `[B, C]` (addChannel) or `[B, 2C]` (FiLM).
    static func applyBlocked(_ context: EpilogueContext, out: UnsafeMutablePointer<Float>, channels: Int, pixels: Int,
                             batch b: Int, blocks: Range<Int>, pixelRange: Range<Int>) {
        let channelBlocks = channels / 16
        let operands = context.operands
        let count = pixelRange.count * 16
        for e in context.ops {
            for block in blocks {
                let offset = ((b * channelBlocks + block) * pixels + pixelRange.lowerBound) * 16
                let run = out + offset
                switch e {
                case .unary(let u):
                    unary(u, run, 0..<count)
                case .add(let k):
                    let other = operands[k].data + offset
                    for i in 0..<count { run[i] += other[i] }
                case .addChannel(let k):
                    let v = operands[k].data + b * channels + block * 16
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { s in
                        for lane in 0..<16 { (s[lane], s[16 + lane]) = (1, v[lane]) }
                        scaleShift(run, pixels: pixelRange.count, vectors: s)
                    }
                case .film(let k):
                    let emb = operands[k].data + b * 2 * channels + block * 16
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { s in
                        for lane in 0..<16 { (s[lane], s[16 + lane]) = (1 + emb[lane], emb[channels + lane]) }
                        scaleShift(run, pixels: pixelRange.count, vectors: s)
                    }
                case .statistics:
                    if let statistics = context.statistics {
                        recordBlocked(out, into: statistics, channels: channels, pixels: pixels, batch: b, block: block, pixelRange: pixelRange)
                    }
                }
            }
        }
    }

    /// `run = run * scale + shift` over `pixels` pixels of one block; `vectors` holds the 16 scales then the 16 shifts.
    private static func scaleShift(_ run: UnsafeMutablePointer<Float>, pixels: Int, vectors: UnsafeMutableBufferPointer<Float>) {
        guard let s = vectors.baseAddress else { return }
        BlockedLayoutKernel.scaleShift(run, run, pixels: pixels, scale: s, shift: s + 16)
    }

    /// Block statistics of channel block `block` over `pixelRange`, in the plain layout's format:
    /// `[B, C, blocks, 2]`.
    static func recordBlocked(_ out: UnsafeMutablePointer<Float>, into statistics: UnsafeMutablePointer<Float>, channels: Int, pixels: Int,
                              batch b: Int, block: Int, pixelRange: Range<Int>) {
        let size = Epilogue.statisticsBlock
        let slotsPerChannel = (pixels + size - 1) / size * 2
        let base = out + (b * (channels / 16) + block) * pixels * 16
        var start = pixelRange.lowerBound
        while start < pixelRange.upperBound {
            let end = min(start + size, pixels)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { s in
                guard let p = s.baseAddress else { return }
                if GEMM.avx512 {
                    UNetKernelsAVX512.ActivationLoops.statisticsBlocked(base + start * 16, pixels: end - start, sum: p, squares: p + 16)
                } else {
                    UNetKernelsAVX2.ActivationLoops.statisticsBlocked(base + start * 16, pixels: end - start, sum: p, squares: p + 16)
                }
                for lane in 0..<16 {
                    let slot = statistics + (b * channels + block * 16 + lane) * slotsPerChannel + start / size * 2
                    (slot[0], slot[1]) = (p[lane], p[16 + lane])
                }
            }
            start = end
        }
    }

    /// The whole blocked output at once, split over the pool by channel blocks and, when there are
    /// few blocks, by runs of whole statistics blocks of pixels.
    static func applyWholeBlocked(_ epilogue: EpilogueContext, out: Tensor, pool: ThreadPool) {
        let (batch, channels, pixels) = (out.shape[0], out.shape[1], out.shape[2] * out.shape[3])
        let blocks = batch * channels / 16
        let (parts, perPart) = BlockedLayoutKernel.pixelParts(blocks: blocks, pixels: pixels, granule: Epilogue.statisticsBlock,
                                                             threads: pool.threads)
        let data = out.data
        pool.parallelFor(blocks * parts, elements: 2 * out.count) { task in
            let block = task / parts, p0 = task % parts * perPart
            guard p0 < pixels else { return }
            applyBlocked(epilogue, out: data, channels: channels, pixels: pixels, batch: block / (channels / 16),
                         blocks: (block % (channels / 16))..<(block % (channels / 16) + 1), pixelRange: p0..<min(pixels, p0 + perPart))
        }
    }
}
