import CPrefetch

/// 1x1 convolution in the channel-blocked layout NCHW16c, compiled for AVX-512 (callers check the
/// CPU first).
///
/// A tile is 12 pixels by two 16-channel output blocks: 24 accumulators (4 pixels for the last
/// ones of a run). Each step of k loads two
/// filter vectors and broadcasts one input value per pixel straight from the input, where a
/// pixel's 16 channels are contiguous, so nothing is packed. k runs in order from 0 with one fused
/// multiply-add per step, and the bias is added after the sum, as the plain GEMM path does: the two
/// layouts give bit-identical outputs. The bias, clamp and stores are written out per accumulator:
/// Swift outlines helpers that take SIMD16 values and passes them through memory.
public enum PointwiseBlockedAVX512 {
    /// Pixels of a full tile.
    public static let tilePixels = 12

    /// Output blocks `outputBlocks` at pixels `pixels` of
    /// `dst[ob][p][16] = clamp(bias[16 ob ..< 16 ob + 16] + sum_k weight[ob][k][:] * src[k / 16][p][k % 16], lower, upper)`.
    /// Input planes are `plane` pixels, output planes `outputPlane` (nil: `plane`); `weight` is
    /// `[outputBlock][16 inputBlocks][16]`; `bias` nil is zero. Tile `i` of the call prefetches the
    /// `i`-th run of k lines of `ahead`.
    @inline(never)
    public static func run(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                           dst: UnsafeMutablePointer<Float>, outputPlane: Int? = nil, outputBlocks: Range<Int>, pixels: Range<Int>,
                           lower: Float, upper: Float, ahead: BlockedRowPrefetch? = nil) {
        let k = inputBlocks * 16
        let outPlane = outputPlane ?? plane
        let chunks = ahead.map { ($0.lines + k - 1) / k } ?? 0
        var tileIndex = 0
        var ob = outputBlocks.lowerBound
        while ob < outputBlocks.upperBound {
            let pair = ob + 1 < outputBlocks.upperBound
            let w0 = weight + ob * k * 16, w1 = pair ? w0 + k * 16 : w0
            let b0 = bias.map { $0 + 16 * ob }, b1 = pair ? bias.map { $0 + 16 * ob + 16 } : b0
            let out0 = dst + ob * outPlane * 16, out1 = pair ? out0 + outPlane * 16 : out0
            var p = pixels.lowerBound
            while p + tilePixels <= pixels.upperBound {
                var stream: UnsafePointer<Float>?
                if let a = ahead, tileIndex < chunks * a.blocks {
                    stream = a.base + tileIndex / chunks * a.blockStride + tileIndex % chunks * k * 16
                }
                tileIndex += 1
                tile(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w0: w0, w1: w1, bias0: b0, bias1: b1,
                     out0: out0 + p * 16, out1: out1 + p * 16, pair: pair, lower: lower, upper: upper, stream: stream)
                p += tilePixels
            }
            while p + 4 <= pixels.upperBound {
                tile4(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w0: w0, w1: w1, bias0: b0, bias1: b1,
                      out0: out0 + p * 16, out1: out1 + p * 16, pair: pair, lower: lower, upper: upper)
                p += 4
            }
            while p < pixels.upperBound {
                pixel(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w: w0, bias: b0, out: out0 + p * 16, lower: lower, upper: upper)
                if pair {
                    pixel(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w: w1, bias: b1, out: out1 + p * 16, lower: lower, upper: upper)
                }
                p += 1
            }
            ob += pair ? 2 : 1
        }
    }

    /// One tile; `out1` is written when `pair`. `stream`: k lines to prefetch, one per step.
    @inline(never)
    static func tile(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, w0: UnsafePointer<Float>, w1: UnsafePointer<Float>,
                     bias0 biasPointer0: UnsafePointer<Float>?, bias1 biasPointer1: UnsafePointer<Float>?,
                     out0: UnsafeMutablePointer<Float>, out1: UnsafeMutablePointer<Float>, pair: Bool, lower: Float, upper: Float,
                     stream: UnsafePointer<Float>?) {
        var a0 = SIMD16<Float>(), b0 = SIMD16<Float>()
        var a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
        var a2 = SIMD16<Float>(), b2 = SIMD16<Float>()
        var a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), b4 = SIMD16<Float>()
        var a5 = SIMD16<Float>(), b5 = SIMD16<Float>()
        var a6 = SIMD16<Float>(), b6 = SIMD16<Float>()
        var a7 = SIMD16<Float>(), b7 = SIMD16<Float>()
        var a8 = SIMD16<Float>(), b8 = SIMD16<Float>()
        var a9 = SIMD16<Float>(), b9 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), b10 = SIMD16<Float>()
        var a11 = SIMD16<Float>(), b11 = SIMD16<Float>()
        let wraw0 = UnsafeRawPointer(w0), wraw1 = UnsafeRawPointer(w1)
        for kb in 0..<inputBlocks {
            let x = src + kb * plane * 16
            for l in 0..<16 {
                // The tile after next, a line per step: 12 pixels' 16 channels are 12 lines.
                if l < 12 { unetc_prefetch(x + 2 * 16 * tilePixels + 16 * l) }
                if let stream { unetc_prefetch(stream + (kb * 16 + l) * 16) }
                let offset = (kb * 16 + l) * 64
                let wa = wraw0.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                let wb = wraw1.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                var s: SIMD16<Float>
                s = SIMD16<Float>(repeating: x[0 + l]); a0.addProduct(s, wa); b0.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[16 + l]); a1.addProduct(s, wa); b1.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[32 + l]); a2.addProduct(s, wa); b2.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[48 + l]); a3.addProduct(s, wa); b3.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[64 + l]); a4.addProduct(s, wa); b4.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[80 + l]); a5.addProduct(s, wa); b5.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[96 + l]); a6.addProduct(s, wa); b6.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[112 + l]); a7.addProduct(s, wa); b7.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[128 + l]); a8.addProduct(s, wa); b8.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[144 + l]); a9.addProduct(s, wa); b9.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[160 + l]); a10.addProduct(s, wa); b10.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[176 + l]); a11.addProduct(s, wa); b11.addProduct(s, wb)
            }
        }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let bias0 = biasPointer0.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let bias1 = biasPointer1.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let raw0 = UnsafeMutableRawPointer(out0), raw1 = UnsafeMutableRawPointer(out1)
        a0 += bias0; a0.replace(with: lo, where: a0 .< lo); a0.replace(with: hi, where: hi .< a0); raw0.storeBytes(of: a0, toByteOffset: 0, as: SIMD16<Float>.self)
        a1 += bias0; a1.replace(with: lo, where: a1 .< lo); a1.replace(with: hi, where: hi .< a1); raw0.storeBytes(of: a1, toByteOffset: 64, as: SIMD16<Float>.self)
        a2 += bias0; a2.replace(with: lo, where: a2 .< lo); a2.replace(with: hi, where: hi .< a2); raw0.storeBytes(of: a2, toByteOffset: 128, as: SIMD16<Float>.self)
        a3 += bias0; a3.replace(with: lo, where: a3 .< lo); a3.replace(with: hi, where: hi .< a3); raw0.storeBytes(of: a3, toByteOffset: 192, as: SIMD16<Float>.self)
        a4 += bias0; a4.replace(with: lo, where: a4 .< lo); a4.replace(with: hi, where: hi .< a4); raw0.storeBytes(of: a4, toByteOffset: 256, as: SIMD16<Float>.self)
        a5 += bias0; a5.replace(with: lo, where: a5 .< lo); a5.replace(with: hi, where: hi .< a5); raw0.storeBytes(of: a5, toByteOffset: 320, as: SIMD16<Float>.self)
        a6 += bias0; a6.replace(with: lo, where: a6 .< lo); a6.replace(with: hi, where: hi .< a6); raw0.storeBytes(of: a6, toByteOffset: 384, as: SIMD16<Float>.self)
        a7 += bias0; a7.replace(with: lo, where: a7 .< lo); a7.replace(with: hi, where: hi .< a7); raw0.storeBytes(of: a7, toByteOffset: 448, as: SIMD16<Float>.self)
        a8 += bias0; a8.replace(with: lo, where: a8 .< lo); a8.replace(with: hi, where: hi .< a8); raw0.storeBytes(of: a8, toByteOffset: 512, as: SIMD16<Float>.self)
        a9 += bias0; a9.replace(with: lo, where: a9 .< lo); a9.replace(with: hi, where: hi .< a9); raw0.storeBytes(of: a9, toByteOffset: 576, as: SIMD16<Float>.self)
        a10 += bias0; a10.replace(with: lo, where: a10 .< lo); a10.replace(with: hi, where: hi .< a10); raw0.storeBytes(of: a10, toByteOffset: 640, as: SIMD16<Float>.self)
        a11 += bias0; a11.replace(with: lo, where: a11 .< lo); a11.replace(with: hi, where: hi .< a11); raw0.storeBytes(of: a11, toByteOffset: 704, as: SIMD16<Float>.self)
        if pair {
            b0 += bias1; b0.replace(with: lo, where: b0 .< lo); b0.replace(with: hi, where: hi .< b0); raw1.storeBytes(of: b0, toByteOffset: 0, as: SIMD16<Float>.self)
            b1 += bias1; b1.replace(with: lo, where: b1 .< lo); b1.replace(with: hi, where: hi .< b1); raw1.storeBytes(of: b1, toByteOffset: 64, as: SIMD16<Float>.self)
            b2 += bias1; b2.replace(with: lo, where: b2 .< lo); b2.replace(with: hi, where: hi .< b2); raw1.storeBytes(of: b2, toByteOffset: 128, as: SIMD16<Float>.self)
            b3 += bias1; b3.replace(with: lo, where: b3 .< lo); b3.replace(with: hi, where: hi .< b3); raw1.storeBytes(of: b3, toByteOffset: 192, as: SIMD16<Float>.self)
            b4 += bias1; b4.replace(with: lo, where: b4 .< lo); b4.replace(with: hi, where: hi .< b4); raw1.storeBytes(of: b4, toByteOffset: 256, as: SIMD16<Float>.self)
            b5 += bias1; b5.replace(with: lo, where: b5 .< lo); b5.replace(with: hi, where: hi .< b5); raw1.storeBytes(of: b5, toByteOffset: 320, as: SIMD16<Float>.self)
            b6 += bias1; b6.replace(with: lo, where: b6 .< lo); b6.replace(with: hi, where: hi .< b6); raw1.storeBytes(of: b6, toByteOffset: 384, as: SIMD16<Float>.self)
            b7 += bias1; b7.replace(with: lo, where: b7 .< lo); b7.replace(with: hi, where: hi .< b7); raw1.storeBytes(of: b7, toByteOffset: 448, as: SIMD16<Float>.self)
            b8 += bias1; b8.replace(with: lo, where: b8 .< lo); b8.replace(with: hi, where: hi .< b8); raw1.storeBytes(of: b8, toByteOffset: 512, as: SIMD16<Float>.self)
            b9 += bias1; b9.replace(with: lo, where: b9 .< lo); b9.replace(with: hi, where: hi .< b9); raw1.storeBytes(of: b9, toByteOffset: 576, as: SIMD16<Float>.self)
            b10 += bias1; b10.replace(with: lo, where: b10 .< lo); b10.replace(with: hi, where: hi .< b10); raw1.storeBytes(of: b10, toByteOffset: 640, as: SIMD16<Float>.self)
            b11 += bias1; b11.replace(with: lo, where: b11 .< lo); b11.replace(with: hi, where: hi .< b11); raw1.storeBytes(of: b11, toByteOffset: 704, as: SIMD16<Float>.self)
        }
    }

    /// Four pixels (after the last whole tile): eight accumulators, as many as keep both FMA
    /// pipes busy, where one pixel at a time waits on each FMA's latency.
    @inline(never)
    static func tile4(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, w0: UnsafePointer<Float>, w1: UnsafePointer<Float>,
                      bias0 biasPointer0: UnsafePointer<Float>?, bias1 biasPointer1: UnsafePointer<Float>?,
                      out0: UnsafeMutablePointer<Float>, out1: UnsafeMutablePointer<Float>, pair: Bool, lower: Float, upper: Float) {
        var a0 = SIMD16<Float>(), b0 = SIMD16<Float>()
        var a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
        var a2 = SIMD16<Float>(), b2 = SIMD16<Float>()
        var a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
        let wraw0 = UnsafeRawPointer(w0), wraw1 = UnsafeRawPointer(w1)
        for kb in 0..<inputBlocks {
            let x = src + kb * plane * 16
            for l in 0..<16 {
                let offset = (kb * 16 + l) * 64
                let wa = wraw0.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                let wb = wraw1.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                var s: SIMD16<Float>
                s = SIMD16<Float>(repeating: x[0 + l]); a0.addProduct(s, wa); b0.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[16 + l]); a1.addProduct(s, wa); b1.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[32 + l]); a2.addProduct(s, wa); b2.addProduct(s, wb)
                s = SIMD16<Float>(repeating: x[48 + l]); a3.addProduct(s, wa); b3.addProduct(s, wb)
            }
        }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let bias0 = biasPointer0.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let bias1 = biasPointer1.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let raw0 = UnsafeMutableRawPointer(out0), raw1 = UnsafeMutableRawPointer(out1)
        a0 += bias0; a0.replace(with: lo, where: a0 .< lo); a0.replace(with: hi, where: hi .< a0); raw0.storeBytes(of: a0, toByteOffset: 0, as: SIMD16<Float>.self)
        a1 += bias0; a1.replace(with: lo, where: a1 .< lo); a1.replace(with: hi, where: hi .< a1); raw0.storeBytes(of: a1, toByteOffset: 64, as: SIMD16<Float>.self)
        a2 += bias0; a2.replace(with: lo, where: a2 .< lo); a2.replace(with: hi, where: hi .< a2); raw0.storeBytes(of: a2, toByteOffset: 128, as: SIMD16<Float>.self)
        a3 += bias0; a3.replace(with: lo, where: a3 .< lo); a3.replace(with: hi, where: hi .< a3); raw0.storeBytes(of: a3, toByteOffset: 192, as: SIMD16<Float>.self)
        if pair {
            b0 += bias1; b0.replace(with: lo, where: b0 .< lo); b0.replace(with: hi, where: hi .< b0); raw1.storeBytes(of: b0, toByteOffset: 0, as: SIMD16<Float>.self)
            b1 += bias1; b1.replace(with: lo, where: b1 .< lo); b1.replace(with: hi, where: hi .< b1); raw1.storeBytes(of: b1, toByteOffset: 64, as: SIMD16<Float>.self)
            b2 += bias1; b2.replace(with: lo, where: b2 .< lo); b2.replace(with: hi, where: hi .< b2); raw1.storeBytes(of: b2, toByteOffset: 128, as: SIMD16<Float>.self)
            b3 += bias1; b3.replace(with: lo, where: b3 .< lo); b3.replace(with: hi, where: hi .< b3); raw1.storeBytes(of: b3, toByteOffset: 192, as: SIMD16<Float>.self)
        }
    }

    /// One pixel of one output block (the last pixels of a run, fewer than four).
    @inline(never)
    static func pixel(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      out: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
        var acc = SIMD16<Float>()
        let wraw = UnsafeRawPointer(w)
        for kb in 0..<inputBlocks {
            let x = src + kb * plane * 16
            for l in 0..<16 {
                acc.addProduct(SIMD16<Float>(repeating: x[l]), wraw.loadUnaligned(fromByteOffset: (kb * 16 + l) * 64, as: SIMD16<Float>.self))
            }
        }
        if let bias { acc += UnsafeRawPointer(bias).loadUnaligned(as: SIMD16<Float>.self) }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        acc.replace(with: lo, where: acc .< lo)
        acc.replace(with: hi, where: hi .< acc)
        UnsafeMutableRawPointer(out).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}
