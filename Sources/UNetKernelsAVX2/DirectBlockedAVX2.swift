/// A 3x3 convolution (stride 1, padding 1) from a plain input of few channels (an image) to the
/// channel-blocked layout NCHW16c, compiled for AVX2 + FMA (callers check the CPU first):
/// `DirectBlockedAVX512`'s kernel for 16 ymm registers.
///
/// A tile is 6 pixels of a row by one 16-channel output block, as two 8-lane halves. Taps are
/// summed in the plain GEMM path's order (input channel, then kernel row, then column) from zero,
/// the bias added after: bit-identical outputs.
public enum DirectBlockedAVX2 {
    static let tilePixels = 6

    /// Output rows `rows` of output blocks `outputBlocks`: `src` is `[cin][h][w]`, `weight`
    /// `[outputBlock][cin * 9][16]`, `dst` `[outputBlock][h][w][16]`; `bias` nil is zero.
    @inline(never)
    public static func conv3x3(src: UnsafePointer<Float>, cin: Int, h: Int, w: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               dst: UnsafeMutablePointer<Float>, outputBlocks: Range<Int>, rows: Range<Int>, lower: Float, upper: Float) {
        let k = cin * 9, plane = h * w
        for ob in outputBlocks {
            let wb = weight + ob * k * 16, b = bias.map { $0 + 16 * ob }
            for oy in rows {
                let out = dst + (ob * plane + oy * w) * 16
                // Interior tiles need every tap inside the image; the rest go pixel by pixel.
                var ox = 0
                if oy > 0 && oy + 1 < h {
                    ox = 1
                    while ox + tilePixels <= w - 1 {
                        tile(src: src, cin: cin, w: w, plane: plane, oy: oy, ox: ox, weight: wb, bias: b, out: out + ox * 16, lower: lower, upper: upper)
                        ox += tilePixels
                    }
                    pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: 0, weight: wb, bias: b, out: out, lower: lower, upper: upper)
                }
                while ox < w {
                    pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: ox, weight: wb, bias: b, out: out + ox * 16, lower: lower, upper: upper)
                    ox += 1
                }
            }
        }
    }

    /// Pixels `ox ..< ox + 6` of row `oy`, all taps inside the image.
    @inline(never)
    static func tile(src: UnsafePointer<Float>, cin: Int, w: Int, plane: Int, oy: Int, ox: Int, weight: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
        var l0 = SIMD8<Float>(), h0 = SIMD8<Float>()
        var l1 = SIMD8<Float>(), h1 = SIMD8<Float>()
        var l2 = SIMD8<Float>(), h2 = SIMD8<Float>()
        var l3 = SIMD8<Float>(), h3 = SIMD8<Float>()
        var l4 = SIMD8<Float>(), h4 = SIMD8<Float>()
        var l5 = SIMD8<Float>(), h5 = SIMD8<Float>()
        let wraw = UnsafeRawPointer(weight)
        var tap = 0
        for ci in 0..<cin {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let r = src + ci * plane + (oy + ky - 1) * w + ox + kx - 1
                    let wl = wraw.loadUnaligned(fromByteOffset: tap * 64, as: SIMD8<Float>.self)
                    let wh = wraw.loadUnaligned(fromByteOffset: tap * 64 + 32, as: SIMD8<Float>.self)
                    var s: SIMD8<Float>
                    s = SIMD8<Float>(repeating: r[0]); l0.addProduct(s, wl); h0.addProduct(s, wh)
                    s = SIMD8<Float>(repeating: r[1]); l1.addProduct(s, wl); h1.addProduct(s, wh)
                    s = SIMD8<Float>(repeating: r[2]); l2.addProduct(s, wl); h2.addProduct(s, wh)
                    s = SIMD8<Float>(repeating: r[3]); l3.addProduct(s, wl); h3.addProduct(s, wh)
                    s = SIMD8<Float>(repeating: r[4]); l4.addProduct(s, wl); h4.addProduct(s, wh)
                    s = SIMD8<Float>(repeating: r[5]); l5.addProduct(s, wl); h5.addProduct(s, wh)
                    tap += 1
                }
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

    /// One output pixel of one block, taps outside the image skipped (a zero in the plain path).
    @inline(never)
    static func pixel(src: UnsafePointer<Float>, cin: Int, h: Int, w: Int, oy: Int, ox: Int, weight: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
        var low = SIMD8<Float>(), high = SIMD8<Float>()
        let wraw = UnsafeRawPointer(weight)
        var tap = 0
        for ci in 0..<cin {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let iy = oy + ky - 1, ix = ox + kx - 1
                    if iy >= 0 && iy < h && ix >= 0 && ix < w {
                        let s = SIMD8<Float>(repeating: src[(ci * h + iy) * w + ix])
                        low.addProduct(s, wraw.loadUnaligned(fromByteOffset: tap * 64, as: SIMD8<Float>.self))
                        high.addProduct(s, wraw.loadUnaligned(fromByteOffset: tap * 64 + 32, as: SIMD8<Float>.self))
                    }
                    tap += 1
                }
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
