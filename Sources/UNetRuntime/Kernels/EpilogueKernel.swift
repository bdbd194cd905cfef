import UNetKernelsAVX512
import UNetKernelsAVX2
import Foundation
import UNetIR
import UNetPasses

/// Applies a step's fused epilogue to a block of its output: channels × pixels of one batch item.
///
/// Convolutions call it per output tile while the tile is in cache; other producers call it once
/// on their whole output.
enum EpilogueKernel {
    /// `out` and add-operands are `[B, C, P]`; FiLM operands `[B, 2C]`.
    static func apply(_ context: EpilogueContext, out: UnsafeMutablePointer<Float>, channels: Int, pixels: Int,
                      batch b: Int, channelRange: Range<Int>, pixelRange: Range<Int>) {
        let operands = context.operands
        for e in context.ops {
            if case .statistics = e {
                if let s = context.statistics {
                    record(out, into: s, channels: channels, pixels: pixels, batch: b, channelRange: channelRange, pixelRange: pixelRange)
                }
                continue
            }
            for c in channelRange {
                let row = out + (b * channels + c) * pixels
                switch e {
                case .unary(let u):
                    unary(u, row, pixelRange)
                case .add(let k):
                    let other = operands[k].data + (b * channels + c) * pixels
                    for p in pixelRange { row[p] += other[p] }
                case .addChannel(let k):
                    let v = operands[k].data[b * channels + c]
                    for p in pixelRange { row[p] += v }
                case .film(let k):
                    let emb = operands[k].data
                    let scale = 1 + emb[b * 2 * channels + c]
                    let shift = emb[b * 2 * channels + channels + c]
                    for p in pixelRange { row[p] = row[p] * scale + shift }
                case .statistics:
                    break
                }
            }
        }
    }

    @inline(__always)
    static func unary(_ u: UnaryOp, _ row: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        switch u {
        case .identity: break
        case .relu, .relu6:
            let upper: Float = u == .relu ? .infinity : 6
            if GEMM.avx512 {
                UNetKernelsAVX512.ActivationLoops.clamp(row + range.lowerBound, count: range.count, lower: 0, upper: upper)
            } else if GEMM.avx2 {
                UNetKernelsAVX2.ActivationLoops.clamp(row + range.lowerBound, count: range.count, lower: 0, upper: upper)
            } else {
                for p in range { row[p] = min(max(row[p], 0), upper) }
            }
        case .leakyRelu(let slope):
            let s = Float(slope)
            for p in range where row[p] < 0 { row[p] *= s }
        case .silu:
            if GEMM.avx512 {
                UNetKernelsAVX512.ActivationLoops.silu(row + range.lowerBound, count: range.count)
            } else if GEMM.avx2 {
                UNetKernelsAVX2.ActivationLoops.silu(row + range.lowerBound, count: range.count)
            } else {
                for p in range { row[p] = row[p] * Activation.sigmoid(row[p]) }
            }
        case .gelu(let tanhForm):
            if tanhForm {
                for p in range { row[p] = Activation.geluTanh(row[p]) }
            } else {
                for p in range { row[p] = Activation.gelu(row[p]) }
            }
        case .sigmoid: for p in range { row[p] = Activation.sigmoid(row[p]) }
        case .tanh: for p in range { row[p] = tanhf(row[p]) }
        case .clamp(let lo, let hi):
            let l = lo.map(Float.init) ?? -Float.infinity, h = hi.map(Float.init) ?? Float.infinity
            for p in range { row[p] = min(max(row[p], l), h) }
        case .scale(let factor, let offset):
            let f = Float(factor), o = Float(offset)
            for p in range { row[p] = row[p] * f + o }
        }
    }

    /// Blocks of `Epilogue.statisticsBlock` pixels of each channel in range: their sum and the sum of
    /// squared deviations from their own mean (combined later with Chan's formula, which stays accurate
    /// where a sum of squares minus a squared mean would cancel). `pixelRange` starts on a block boundary.
    static func record(_ out: UnsafeMutablePointer<Float>, into statistics: UnsafeMutablePointer<Float>, channels: Int, pixels: Int,
                       batch b: Int, channelRange: Range<Int>, pixelRange: Range<Int>) {
        let block = Epilogue.statisticsBlock
        let blocks = (pixels + block - 1) / block
        for c in channelRange {
            let row = out + (b * channels + c) * pixels
            let slots = statistics + (b * channels + c) * blocks * 2
            var start = pixelRange.lowerBound
            while start < pixelRange.upperBound {
                let end = min(start + block, pixels)
                var sum: Float = 0
                if end - start == block {
                    let raw = UnsafeRawPointer(row + start)
                    let v = raw.loadUnaligned(as: SIMD16<Float>.self)
                    sum = v.sum()
                    let d = v - SIMD16(repeating: sum / Float(block))
                    slots[start / block * 2] = sum
                    slots[start / block * 2 + 1] = (d * d).sum()
                } else {
                    for p in start..<end { sum += row[p] }
                    let mean = sum / Float(end - start)
                    var squares: Float = 0
                    for p in start..<end { squares += (row[p] - mean) * (row[p] - mean) }
                    slots[start / block * 2] = sum
                    slots[start / block * 2 + 1] = squares
                }
                start = end
            }
        }
    }

    /// The whole output at once, split over the pool by channel planes (or blocks, `applyWholeBlocked`).
    static func applyWhole(_ epilogue: EpilogueContext, out: Tensor, layout: ActivationLayout = .plain, pool: ThreadPool) {
        guard !epilogue.ops.isEmpty else { return }
        if layout == .blocked16 && out.shape.count == 4 {
            applyWholeBlocked(epilogue, out: out, pool: pool)
            return
        }
        let rank4 = out.shape.count == 4
        let batch = rank4 ? out.shape[0] : 1
        let channels = rank4 ? out.shape[1] : 1
        let pixels = out.count / (batch * channels)
        let data = out.data
        if rank4 {
            pool.parallelFor(batch * channels) { plane in
                apply(epilogue, out: data, channels: channels, pixels: pixels, batch: plane / channels,
                      channelRange: (plane % channels)..<(plane % channels + 1), pixelRange: 0..<pixels)
            }
        } else {
            let chunk = 1 << 14
            pool.parallelFor((pixels + chunk - 1) / chunk) { tile in
                apply(epilogue, out: data, channels: 1, pixels: pixels, batch: 0, channelRange: 0..<1,
                      pixelRange: (tile * chunk)..<min(pixels, tile * chunk + chunk))
            }
        }
    }
}
