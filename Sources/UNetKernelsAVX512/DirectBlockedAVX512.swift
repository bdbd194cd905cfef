/// A 3x3 convolution (stride 1, padding 1) from a plain input of few channels (an image) to the
/// channel-blocked layout NCHW16c, compiled for AVX-512 (callers check the CPU first): the first
/// step of a blocked region, so the stem writes blocks itself instead of a reorder after it.
///
/// A tile is 8 pixels of a row by two 16-channel output blocks: per tap, two filter vectors and
/// one broadcast input value per pixel. Taps are summed in the plain GEMM path's order (input
/// channel, then kernel row, then column) from zero, the bias added after: bit-identical outputs.
public enum DirectBlockedAVX512 {
    static let tilePixels = 8

    /// Output rows `rows` of output blocks `outputBlocks`: `src` is `[cin][h][w]`, `weight`
    /// `[outputBlock][cin * 9][16]`, `dst` `[outputBlock][h][w][16]`; `bias` nil is zero.
    @inline(never)
    public static func conv3x3(src: UnsafePointer<Float>, cin: Int, h: Int, w: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               dst: UnsafeMutablePointer<Float>, outputBlocks: Range<Int>, rows: Range<Int>, lower: Float, upper: Float) {
        let k = cin * 9, plane = h * w
        var ob = outputBlocks.lowerBound
        while ob < outputBlocks.upperBound {
            let pair = ob + 1 < outputBlocks.upperBound
            let w0 = weight + ob * k * 16, w1 = pair ? w0 + k * 16 : w0
            let b0 = bias.map { $0 + 16 * ob }, b1 = pair ? bias.map { $0 + 16 * ob + 16 } : b0
            for oy in rows {
                let out0 = dst + (ob * plane + oy * w) * 16, out1 = pair ? out0 + plane * 16 : out0
                // Interior tiles need every tap inside the image; the rest go pixel by pixel.
                var ox = 0
                if oy > 0 && oy + 1 < h {
                    ox = 1
                    while ox + tilePixels <= w - 1 {
                        tile(src: src, cin: cin, w: w, plane: plane, oy: oy, ox: ox, w0: w0, w1: w1, bias0: b0, bias1: b1,
                             out0: out0 + ox * 16, out1: out1 + ox * 16, pair: pair, lower: lower, upper: upper)
                        ox += tilePixels
                    }
                    pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: 0, weight: w0, bias: b0, out: out0, lower: lower, upper: upper)
                    if pair { pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: 0, weight: w1, bias: b1, out: out1, lower: lower, upper: upper) }
                }
                while ox < w {
                    pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: ox, weight: w0, bias: b0, out: out0 + ox * 16, lower: lower, upper: upper)
                    if pair {
                        pixel(src: src, cin: cin, h: h, w: w, oy: oy, ox: ox, weight: w1, bias: b1, out: out1 + ox * 16, lower: lower, upper: upper)
                    }
                    ox += 1
                }
            }
            ob += pair ? 2 : 1
        }
    }

    /// Pixels `ox ..< ox + 8` of row `oy`, all taps inside the image.
    @inline(never)
    static func tile(src: UnsafePointer<Float>, cin: Int, w: Int, plane: Int, oy: Int, ox: Int, w0: UnsafePointer<Float>, w1: UnsafePointer<Float>,
                     bias0 biasPointer0: UnsafePointer<Float>?, bias1 biasPointer1: UnsafePointer<Float>?,
                     out0: UnsafeMutablePointer<Float>, out1: UnsafeMutablePointer<Float>, pair: Bool, lower: Float, upper: Float) {
        var a0 = SIMD16<Float>(), b0 = SIMD16<Float>()
        var a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
        var a2 = SIMD16<Float>(), b2 = SIMD16<Float>()
        var a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), b4 = SIMD16<Float>()
        var a5 = SIMD16<Float>(), b5 = SIMD16<Float>()
        var a6 = SIMD16<Float>(), b6 = SIMD16<Float>()
        var a7 = SIMD16<Float>(), b7 = SIMD16<Float>()
        let wraw0 = UnsafeRawPointer(w0), wraw1 = UnsafeRawPointer(w1)
        var tap = 0
        for ci in 0..<cin {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let r = src + ci * plane + (oy + ky - 1) * w + ox + kx - 1
                    let wa = wraw0.loadUnaligned(fromByteOffset: tap * 64, as: SIMD16<Float>.self)
                    let wb = wraw1.loadUnaligned(fromByteOffset: tap * 64, as: SIMD16<Float>.self)
                    var s: SIMD16<Float>
                    s = SIMD16<Float>(repeating: r[0]); a0.addProduct(s, wa); b0.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[1]); a1.addProduct(s, wa); b1.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[2]); a2.addProduct(s, wa); b2.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[3]); a3.addProduct(s, wa); b3.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[4]); a4.addProduct(s, wa); b4.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[5]); a5.addProduct(s, wa); b5.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[6]); a6.addProduct(s, wa); b6.addProduct(s, wb)
                    s = SIMD16<Float>(repeating: r[7]); a7.addProduct(s, wa); b7.addProduct(s, wb)
                    tap += 1
                }
            }
        }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let bias0 = biasPointer0.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let bias1 = biasPointer1.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let o0 = UnsafeMutableRawPointer(out0), o1 = UnsafeMutableRawPointer(out1)
        a0 += bias0; a0.replace(with: lo, where: a0 .< lo); a0.replace(with: hi, where: hi .< a0); o0.storeBytes(of: a0, toByteOffset: 0, as: SIMD16<Float>.self)
        a1 += bias0; a1.replace(with: lo, where: a1 .< lo); a1.replace(with: hi, where: hi .< a1); o0.storeBytes(of: a1, toByteOffset: 64, as: SIMD16<Float>.self)
        a2 += bias0; a2.replace(with: lo, where: a2 .< lo); a2.replace(with: hi, where: hi .< a2); o0.storeBytes(of: a2, toByteOffset: 128, as: SIMD16<Float>.self)
        a3 += bias0; a3.replace(with: lo, where: a3 .< lo); a3.replace(with: hi, where: hi .< a3); o0.storeBytes(of: a3, toByteOffset: 192, as: SIMD16<Float>.self)
        a4 += bias0; a4.replace(with: lo, where: a4 .< lo); a4.replace(with: hi, where: hi .< a4); o0.storeBytes(of: a4, toByteOffset: 256, as: SIMD16<Float>.self)
        a5 += bias0; a5.replace(with: lo, where: a5 .< lo); a5.replace(with: hi, where: hi .< a5); o0.storeBytes(of: a5, toByteOffset: 320, as: SIMD16<Float>.self)
        a6 += bias0; a6.replace(with: lo, where: a6 .< lo); a6.replace(with: hi, where: hi .< a6); o0.storeBytes(of: a6, toByteOffset: 384, as: SIMD16<Float>.self)
        a7 += bias0; a7.replace(with: lo, where: a7 .< lo); a7.replace(with: hi, where: hi .< a7); o0.storeBytes(of: a7, toByteOffset: 448, as: SIMD16<Float>.self)
        if pair {
            b0 += bias1; b0.replace(with: lo, where: b0 .< lo); b0.replace(with: hi, where: hi .< b0); o1.storeBytes(of: b0, toByteOffset: 0, as: SIMD16<Float>.self)
            b1 += bias1; b1.replace(with: lo, where: b1 .< lo); b1.replace(with: hi, where: hi .< b1); o1.storeBytes(of: b1, toByteOffset: 64, as: SIMD16<Float>.self)
            b2 += bias1; b2.replace(with: lo, where: b2 .< lo); b2.replace(with: hi, where: hi .< b2); o1.storeBytes(of: b2, toByteOffset: 128, as: SIMD16<Float>.self)
            b3 += bias1; b3.replace(with: lo, where: b3 .< lo); b3.replace(with: hi, where: hi .< b3); o1.storeBytes(of: b3, toByteOffset: 192, as: SIMD16<Float>.self)
            b4 += bias1; b4.replace(with: lo, where: b4 .< lo); b4.replace(with: hi, where: hi .< b4); o1.storeBytes(of: b4, toByteOffset: 256, as: SIMD16<Float>.self)
            b5 += bias1; b5.replace(with: lo, where: b5 .< lo); b5.replace(with: hi, where: hi .< b5); o1.storeBytes(of: b5, toByteOffset: 320, as: SIMD16<Float>.self)
            b6 += bias1; b6.replace(with: lo, where: b6 .< lo); b6.replace(with: hi, where: hi .< b6); o1.storeBytes(of: b6, toByteOffset: 384, as: SIMD16<Float>.self)
            b7 += bias1; b7.replace(with: lo, where: b7 .< lo); b7.replace(with: hi, where: hi .< b7); o1.storeBytes(of: b7, toByteOffset: 448, as: SIMD16<Float>.self)
        }
    }

    /// One output pixel of one block, taps outside the image skipped (a zero in the plain path).
    @inline(never)
    static func pixel(src: UnsafePointer<Float>, cin: Int, h: Int, w: Int, oy: Int, ox: Int, weight: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
        var acc = SIMD16<Float>()
        let wraw = UnsafeRawPointer(weight)
        var tap = 0
        for ci in 0..<cin {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let iy = oy + ky - 1, ix = ox + kx - 1
                    if iy >= 0 && iy < h && ix >= 0 && ix < w {
                        acc.addProduct(SIMD16<Float>(repeating: src[(ci * h + iy) * w + ix]), wraw.loadUnaligned(fromByteOffset: tap * 64, as: SIMD16<Float>.self))
                    }
                    tap += 1
                }
            }
        }
        if let bias { acc += UnsafeRawPointer(bias).loadUnaligned(as: SIMD16<Float>.self) }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        acc.replace(with: lo, where: acc .< lo)
        acc.replace(with: hi, where: hi .< acc)
        UnsafeMutableRawPointer(out).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}
