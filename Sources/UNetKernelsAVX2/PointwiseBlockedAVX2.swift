import CPrefetch

/// 1x1 convolution in the channel-blocked layout NCHW16c, compiled for AVX2 + FMA (callers check
/// the CPU first): `PointwiseBlockedAVX512`'s kernel for 16 ymm registers.
///
/// A tile is 6 pixels by one 16-channel output block, as two 8-lane halves: 12 accumulators, two
/// filter vectors per step of k and one broadcast per pixel. k runs in order from 0 with one fused
/// multiply-add per step and the bias is added after the sum, as in the plain GEMM path: the two
/// layouts give bit-identical outputs. Stores are written out per accumulator (Swift outlines
/// helpers that take SIMD values).
public enum PointwiseBlockedAVX2 {
    /// Pixels of a full tile.
    public static let tilePixels = 6

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
        for ob in outputBlocks {
            let w = weight + ob * k * 16, b = bias.map { $0 + 16 * ob }, out = dst + ob * outPlane * 16
            var p = pixels.lowerBound
            while p + tilePixels <= pixels.upperBound {
                var stream: UnsafePointer<Float>?
                if let a = ahead, tileIndex < chunks * a.blocks {
                    stream = a.base + tileIndex / chunks * a.blockStride + tileIndex % chunks * k * 16
                }
                tileIndex += 1
                tile(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w: w, bias: b, out: out + p * 16, lower: lower, upper: upper,
                     stream: stream)
                p += tilePixels
            }
            while p < pixels.upperBound {
                pixel(src: src + p * 16, inputBlocks: inputBlocks, plane: plane, w: w, bias: b, out: out + p * 16, lower: lower, upper: upper)
                p += 1
            }
        }
    }

    /// One tile. `stream`: k lines to prefetch, one per step.
    @inline(never)
    static func tile(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                     out: UnsafeMutablePointer<Float>, lower: Float, upper: Float, stream: UnsafePointer<Float>?) {
        var l0 = SIMD8<Float>(), h0 = SIMD8<Float>()
        var l1 = SIMD8<Float>(), h1 = SIMD8<Float>()
        var l2 = SIMD8<Float>(), h2 = SIMD8<Float>()
        var l3 = SIMD8<Float>(), h3 = SIMD8<Float>()
        var l4 = SIMD8<Float>(), h4 = SIMD8<Float>()
        var l5 = SIMD8<Float>(), h5 = SIMD8<Float>()
        let wraw = UnsafeRawPointer(w)
        for kb in 0..<inputBlocks {
            let x = src + kb * plane * 16
            for l in 0..<16 {
                // The tile after next, a line per step: 6 pixels' 16 channels are 6 lines.
                if l < 6 { unetc_prefetch(x + 2 * 16 * tilePixels + 16 * l) }
                if let stream { unetc_prefetch(stream + (kb * 16 + l) * 16) }
                let offset = (kb * 16 + l) * 64
                let wl = wraw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let wh = wraw.loadUnaligned(fromByteOffset: offset + 32, as: SIMD8<Float>.self)
                var s: SIMD8<Float>
                s = SIMD8<Float>(repeating: x[0 + l]); l0.addProduct(s, wl); h0.addProduct(s, wh)
                s = SIMD8<Float>(repeating: x[16 + l]); l1.addProduct(s, wl); h1.addProduct(s, wh)
                s = SIMD8<Float>(repeating: x[32 + l]); l2.addProduct(s, wl); h2.addProduct(s, wh)
                s = SIMD8<Float>(repeating: x[48 + l]); l3.addProduct(s, wl); h3.addProduct(s, wh)
                s = SIMD8<Float>(repeating: x[64 + l]); l4.addProduct(s, wl); h4.addProduct(s, wh)
                s = SIMD8<Float>(repeating: x[80 + l]); l5.addProduct(s, wl); h5.addProduct(s, wh)
            }
        }
        let lo = SIMD8<Float>(repeating: lower), hi = SIMD8<Float>(repeating: upper)
        let biasLow = bias.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD8<Float>.self) } ?? SIMD8<Float>()
        let biasHigh = bias.map { UnsafeRawPointer($0).loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self) } ?? SIMD8<Float>()
        let o = UnsafeMutableRawPointer(out)
        l0 += biasLow; l0.replace(with: lo, where: l0 .< lo); l0.replace(with: hi, where: hi .< l0); o.storeBytes(of: l0, toByteOffset: 0, as: SIMD8<Float>.self)
        h0 += biasHigh; h0.replace(with: lo, where: h0 .< lo); h0.replace(with: hi, where: hi .< h0); o.storeBytes(of: h0, toByteOffset: 32, as: SIMD8<Float>.self)
        l1 += biasLow; l1.replace(with: lo, where: l1 .< lo); l1.replace(with: hi, where: hi .< l1); o.storeBytes(of: l1, toByteOffset: 64, as: SIMD8<Float>.self)
        h1 += biasHigh; h1.replace(with: lo, where: h1 .< lo); h1.replace(with: hi, where: hi .< h1); o.storeBytes(of: h1, toByteOffset: 96, as: SIMD8<Float>.self)
        l2 += biasLow; l2.replace(with: lo, where: l2 .< lo); l2.replace(with: hi, where: hi .< l2); o.storeBytes(of: l2, toByteOffset: 128, as: SIMD8<Float>.self)
        h2 += biasHigh; h2.replace(with: lo, where: h2 .< lo); h2.replace(with: hi, where: hi .< h2); o.storeBytes(of: h2, toByteOffset: 160, as: SIMD8<Float>.self)
        l3 += biasLow; l3.replace(with: lo, where: l3 .< lo); l3.replace(with: hi, where: hi .< l3); o.storeBytes(of: l3, toByteOffset: 192, as: SIMD8<Float>.self)
        h3 += biasHigh; h3.replace(with: lo, where: h3 .< lo); h3.replace(with: hi, where: hi .< h3); o.storeBytes(of: h3, toByteOffset: 224, as: SIMD8<Float>.self)
        l4 += biasLow; l4.replace(with: lo, where: l4 .< lo); l4.replace(with: hi, where: hi .< l4); o.storeBytes(of: l4, toByteOffset: 256, as: SIMD8<Float>.self)
        h4 += biasHigh; h4.replace(with: lo, where: h4 .< lo); h4.replace(with: hi, where: hi .< h4); o.storeBytes(of: h4, toByteOffset: 288, as: SIMD8<Float>.self)
        l5 += biasLow; l5.replace(with: lo, where: l5 .< lo); l5.replace(with: hi, where: hi .< l5); o.storeBytes(of: l5, toByteOffset: 320, as: SIMD8<Float>.self)
        h5 += biasHigh; h5.replace(with: lo, where: h5 .< lo); h5.replace(with: hi, where: hi .< h5); o.storeBytes(of: h5, toByteOffset: 352, as: SIMD8<Float>.self)
    }

    /// One pixel of one output block (the pixels after the last whole tile).
    @inline(never)
    static func pixel(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      out: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
        var low = SIMD8<Float>(), high = SIMD8<Float>()
        let wraw = UnsafeRawPointer(w)
        for kb in 0..<inputBlocks {
            let x = src + kb * plane * 16
            for l in 0..<16 {
                let s = SIMD8<Float>(repeating: x[l])
                low.addProduct(s, wraw.loadUnaligned(fromByteOffset: (kb * 16 + l) * 64, as: SIMD8<Float>.self))
                high.addProduct(s, wraw.loadUnaligned(fromByteOffset: (kb * 16 + l) * 64 + 32, as: SIMD8<Float>.self))
            }
        }
        if let bias {
            low += UnsafeRawPointer(bias).loadUnaligned(as: SIMD8<Float>.self)
            high += UnsafeRawPointer(bias).loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        }
        let lo = SIMD8<Float>(repeating: lower), hi = SIMD8<Float>(repeating: upper)
        low.replace(with: lo, where: low .< lo); low.replace(with: hi, where: hi .< low)
        high.replace(with: lo, where: high .< lo); high.replace(with: hi, where: hi .< high)
        UnsafeMutableRawPointer(out).storeBytes(of: low, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(out).storeBytes(of: high, toByteOffset: 32, as: SIMD8<Float>.self)
    }
}
