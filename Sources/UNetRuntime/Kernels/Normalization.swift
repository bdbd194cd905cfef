import UNetKernelsAVX512
import UNetKernelsAVX2
import Foundation
import UNetIR
import UNetPasses

/// batch_norm, group_norm, layer_norm, instance_norm. Statistics are summed in Double, in a
/// fixed order inside one tile, so they are accurate and thread-count independent.
enum NormalizationKernel {
    static func batchNorm(eps: Double, x: Tensor, weight: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, out: Tensor, pool: ThreadPool) {
        let channels = x.shape[1]
        let plane = x.count / (x.shape[0] * channels)
        let xd = x.data, od = out.data
        let wd = weight.data, bd = bias.data, md = mean.data, vd = variance.data
        pool.parallelFor(x.shape[0] * channels, elements: x.count) { p in
            let c = p % channels
            let s = wd[c] / (vd[c] + Float(eps)).squareRoot()
            let t = bd[c] - md[c] * s
            let src = xd + p * plane, dst = od + p * plane
            for i in 0..<plane { dst[i] = src[i] * s + t }
        }
    }

    /// Normalises `groups` groups of channels per sample; with `groups == channels` this is instance_norm.
    /// `statistics`, when the producer recorded them (`Epilogue.statistics`), replaces the pass that computes mean and variance.
    static func groupNorm(groups: Int, eps: Double, x: Tensor, weight: Tensor?, bias: Tensor?, out: Tensor, pool: ThreadPool,
                          epilogue: EpilogueContext? = nil, statistics: UnsafeMutablePointer<Float>? = nil) {
        let channels = x.shape[1]
        let plane = x.count / (x.shape[0] * channels)
        let perGroup = channels / groups
        let xd = x.data, od = out.data, wd = weight?.data, bd = bias?.data
        // Floats moved: the statistics pass (unless the producer recorded them), the normalization,
        // and the epilogue's pass over the output (a SiLU's exponentials on top).
        let moved = (statistics == nil ? x.count : 0) + x.count + out.count + (epilogue == nil ? 0 : 2 * out.count)
        pool.parallelFor(x.shape[0] * groups, elements: moved) { task in
            let group = task % groups
            let base = task * perGroup * plane
            let n = perGroup * plane
            let mean: Double, squares: Double
            if let statistics {
                (mean, squares) = NormalizationKernel.combine(statistics, task: task, channels: perGroup, pixels: plane)
            } else {
                mean = NormalizationKernel.sum(xd + base, n, shift: 0) / Double(n)
                squares = NormalizationKernel.sum(xd + base, n, shift: Float(mean), squared: true)
            }
            let inverse = 1 / (squares / Double(n) + eps).squareRoot()
            for cc in 0..<perGroup {
                let c = group * perGroup + cc
                let s = Float(inverse) * (wd?[c] ?? 1)
                let t = (bd?[c] ?? 0) - Float(mean) * s
                NormalizationKernel.scaleShift(xd + base + cc * plane, od + base + cc * plane, count: plane, scale: s, shift: t)
            }
            if let e = epilogue {
                EpilogueKernel.apply(e, out: od, channels: channels, pixels: plane, batch: task / groups,
                                     channelRange: (group * perGroup)..<((group + 1) * perGroup), pixelRange: 0..<plane)
            }
        }
    }

    /// `dst[i] = src[i] * scale + shift` for `i < count` (one normalised channel; `dst` may be `src`).
    static func scaleShift(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float) {
        if GEMM.avx512 {
            UNetKernelsAVX512.ActivationLoops.scaleShift(src, dst, count: count, scale: scale, shift: shift)
        } else if GEMM.avx2 {
            UNetKernelsAVX2.ActivationLoops.scaleShift(src, dst, count: count, scale: scale, shift: shift)
        } else {
            for i in 0..<count { dst[i] = src[i] * scale + shift }
        }
    }

    /// Mean and sum of squared deviations of one group from the producer's block statistics, in
    /// two passes: the group's mean from the blocks' sums, then each block's squared deviations
    /// plus its size times its mean's squared distance from the group's mean. Merging block by
    /// block with Chan's formula (a division on one long dependency chain) took 25 µs for the
    /// 4096 blocks of a 16x16 map of 256 channels, most of the GroupNorm. Four accumulators in a
    /// fixed order keep the adds independent and the result the same on every run.
    static func combine(_ statistics: UnsafeMutablePointer<Float>, task: Int, channels: Int, pixels: Int) -> (mean: Double, squares: Double) {
        let size = Epilogue.statisticsBlock
        let blocks = (pixels + size - 1) / size
        // The group's channels are consecutive, so its blocks are too: task * channels is its first channel overall.
        let slots = statistics + task * channels * blocks * 2
        let count = channels * blocks
        func accumulate(_ term: (Int) -> Double) -> Double {
            var lanes = (0.0, 0.0, 0.0, 0.0)
            var i = 0
            while i + 4 <= count {
                lanes.0 += term(i); lanes.1 += term(i + 1); lanes.2 += term(i + 2); lanes.3 += term(i + 3)
                i += 4
            }
            while i < count { lanes.0 += term(i); i += 1 }
            return (lanes.0 + lanes.1) + (lanes.2 + lanes.3)
        }
        let mean = accumulate { Double(slots[$0 * 2]) } / Double(channels * pixels)
        let lastSize = Double(pixels - (blocks - 1) * size), ragged = pixels % size != 0
        let squares = accumulate { i in
            let n = ragged && i % blocks == blocks - 1 ? lastSize : Double(size)
            let deviation = Double(slots[i * 2]) / n - mean
            return Double(slots[i * 2 + 1]) + n * deviation * deviation
        }
        return (mean, squares)
    }

    /// Sum of `x - shift` (or of its squares) over `n` values: float32 SIMD lanes over blocks of
    /// 1024, each block's lanes added into a Double. The order is fixed, so the result is too.
    static func sum(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, squared: Bool = false) -> Double {
        var total = 0.0
        var start = 0
        let shiftVector = SIMD8<Float>(repeating: shift)
        while start < n {
            let end = min(n, start + 1024)
            var lanes = SIMD8<Float>()
            var i = start
            let raw = UnsafeRawPointer(x)
            while i + 8 <= end {
                let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shiftVector
                lanes += squared ? d * d : d
                i += 8
            }
            var block = Double(lanes.sum())
            while i < end {
                let d = Double(x[i] - shift)
                block += squared ? d * d : d
                i += 1
            }
            total += block
            start = end
        }
        return total
    }

    static func layerNorm(eps: Double, x: Tensor, weight: Tensor?, bias: Tensor?, out: Tensor, pool: ThreadPool) {
        let width = x.shape[x.shape.count - 1]
        let rows = x.count / width
        let xd = x.data, od = out.data, wd = weight?.data, bd = bias?.data
        pool.parallelFor((rows + 31) / 32) { tile in
            for r in (tile * 32)..<min(rows, tile * 32 + 32) {
                let src = xd + r * width, dst = od + r * width
                var sum = 0.0
                for i in 0..<width { sum += Double(src[i]) }
                let mean = sum / Double(width)
                var squares = 0.0
                for i in 0..<width {
                    let d = Double(src[i]) - mean
                    squares += d * d
                }
                let inverse = Float(1 / (squares / Double(width) + eps).squareRoot())
                let m = Float(mean)
                for i in 0..<width { dst[i] = (src[i] - m) * inverse * (wd?[i] ?? 1) + (bd?[i] ?? 0) }
            }
        }
    }
}
