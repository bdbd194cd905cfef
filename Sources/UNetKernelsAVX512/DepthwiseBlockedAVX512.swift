/// 3x3 depthwise convolution, stride 1, padding 1, in the channel-blocked layout NCHW16c, compiled
/// for AVX-512 (callers check the CPU first).
///
/// A pixel's 16 channels are one vector, so every tap is one fused multiply-add on whole vectors
/// and the image edges only skip taps. Taps are summed from the bias in the plain kernel's order
/// (kernel rows top to bottom, columns left to right) and the clamp is fused into the store. The
/// interior loop is written out: Swift outlines helpers that take SIMD16 values.
public enum DepthwiseBlockedAVX512 {
    /// Output rows `rows` of one block plane: `src` is `[h][w][16]`, `dst` holds rows from
    /// `dstFirstRow` on (`[w][16]` each), `kernel` is `[9][16]` (tap-major), `bias` the block's 16
    /// biases (nil: zero).
    @inline(never)
    public static func rows(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, dstFirstRow: Int = 0,
                            kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Range<Int>, lower: Float, upper: Float) {
        let k = UnsafeRawPointer(kernel)
        let t00 = k.loadUnaligned(as: SIMD16<Float>.self), t01 = k.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        let t02 = k.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self), t10 = k.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self)
        let t11 = k.loadUnaligned(fromByteOffset: 256, as: SIMD16<Float>.self), t12 = k.loadUnaligned(fromByteOffset: 320, as: SIMD16<Float>.self)
        let t20 = k.loadUnaligned(fromByteOffset: 384, as: SIMD16<Float>.self), t21 = k.loadUnaligned(fromByteOffset: 448, as: SIMD16<Float>.self)
        let t22 = k.loadUnaligned(fromByteOffset: 512, as: SIMD16<Float>.self)
        let b = bias.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let rowBytes = w * 64
        for oy in rows {
            let out = UnsafeMutableRawPointer(dst + (oy - dstFirstRow) * w * 16)
            let middle = UnsafeRawPointer(src + oy * w * 16)
            if oy > 0 && oy + 1 < h && w > 2 {
                let top = middle - rowBytes, bottom = middle + rowBytes
                var offset = 64
                // Four pixels at a time: each input vector is loaded once per row for the three
                // outputs that use it, and the four sums are independent chains of FMAs.
                while offset + 4 * 64 <= (w - 1) * 64 {
                    var acc0 = b, acc1 = b, acc2 = b, acc3 = b
                    var v0 = top.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self)
                    var v1 = top.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                    var v2 = top.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
                    var v3 = top.loadUnaligned(fromByteOffset: offset + 128, as: SIMD16<Float>.self)
                    var v4 = top.loadUnaligned(fromByteOffset: offset + 192, as: SIMD16<Float>.self)
                    var v5 = top.loadUnaligned(fromByteOffset: offset + 256, as: SIMD16<Float>.self)
                    acc0.addProduct(v0, t00); acc1.addProduct(v1, t00); acc2.addProduct(v2, t00); acc3.addProduct(v3, t00)
                    acc0.addProduct(v1, t01); acc1.addProduct(v2, t01); acc2.addProduct(v3, t01); acc3.addProduct(v4, t01)
                    acc0.addProduct(v2, t02); acc1.addProduct(v3, t02); acc2.addProduct(v4, t02); acc3.addProduct(v5, t02)
                    v0 = middle.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self)
                    v1 = middle.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                    v2 = middle.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
                    v3 = middle.loadUnaligned(fromByteOffset: offset + 128, as: SIMD16<Float>.self)
                    v4 = middle.loadUnaligned(fromByteOffset: offset + 192, as: SIMD16<Float>.self)
                    v5 = middle.loadUnaligned(fromByteOffset: offset + 256, as: SIMD16<Float>.self)
                    acc0.addProduct(v0, t10); acc1.addProduct(v1, t10); acc2.addProduct(v2, t10); acc3.addProduct(v3, t10)
                    acc0.addProduct(v1, t11); acc1.addProduct(v2, t11); acc2.addProduct(v3, t11); acc3.addProduct(v4, t11)
                    acc0.addProduct(v2, t12); acc1.addProduct(v3, t12); acc2.addProduct(v4, t12); acc3.addProduct(v5, t12)
                    v0 = bottom.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self)
                    v1 = bottom.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                    v2 = bottom.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
                    v3 = bottom.loadUnaligned(fromByteOffset: offset + 128, as: SIMD16<Float>.self)
                    v4 = bottom.loadUnaligned(fromByteOffset: offset + 192, as: SIMD16<Float>.self)
                    v5 = bottom.loadUnaligned(fromByteOffset: offset + 256, as: SIMD16<Float>.self)
                    acc0.addProduct(v0, t20); acc1.addProduct(v1, t20); acc2.addProduct(v2, t20); acc3.addProduct(v3, t20)
                    acc0.addProduct(v1, t21); acc1.addProduct(v2, t21); acc2.addProduct(v3, t21); acc3.addProduct(v4, t21)
                    acc0.addProduct(v2, t22); acc1.addProduct(v3, t22); acc2.addProduct(v4, t22); acc3.addProduct(v5, t22)
                    acc0.replace(with: lo, where: acc0 .< lo); acc0.replace(with: hi, where: hi .< acc0)
                    acc1.replace(with: lo, where: acc1 .< lo); acc1.replace(with: hi, where: hi .< acc1)
                    acc2.replace(with: lo, where: acc2 .< lo); acc2.replace(with: hi, where: hi .< acc2)
                    acc3.replace(with: lo, where: acc3 .< lo); acc3.replace(with: hi, where: hi .< acc3)
                    out.storeBytes(of: acc0, toByteOffset: offset, as: SIMD16<Float>.self)
                    out.storeBytes(of: acc1, toByteOffset: offset + 64, as: SIMD16<Float>.self)
                    out.storeBytes(of: acc2, toByteOffset: offset + 128, as: SIMD16<Float>.self)
                    out.storeBytes(of: acc3, toByteOffset: offset + 192, as: SIMD16<Float>.self)
                    offset += 4 * 64
                }
                while offset < (w - 1) * 64 {
                    var acc = b
                    acc.addProduct(top.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self), t00)
                    acc.addProduct(top.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self), t01)
                    acc.addProduct(top.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self), t02)
                    acc.addProduct(middle.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self), t10)
                    acc.addProduct(middle.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self), t11)
                    acc.addProduct(middle.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self), t12)
                    acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset - 64, as: SIMD16<Float>.self), t20)
                    acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self), t21)
                    acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self), t22)
                    acc.replace(with: lo, where: acc .< lo)
                    acc.replace(with: hi, where: hi .< acc)
                    out.storeBytes(of: acc, toByteOffset: offset, as: SIMD16<Float>.self)
                    offset += 64
                }
                edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: 0, lower: lower, upper: upper)
                edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: w - 1, lower: lower, upper: upper)
            } else {
                for ox in 0..<w { edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: ox, lower: lower, upper: upper) }
            }
        }
    }

    /// One output pixel with its taps outside the image skipped (the border rows and columns).
    @inline(never)
    static func edge(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, dstFirstRow: Int, kernel: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, oy: Int, ox: Int, lower: Float, upper: Float) {
        var acc = bias.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let k = UnsafeRawPointer(kernel), input = UnsafeRawPointer(src)
        for i in 0..<3 {
            let iy = oy - 1 + i
            guard iy >= 0 && iy < h else { continue }
            for j in 0..<3 {
                let ix = ox - 1 + j
                guard ix >= 0 && ix < w else { continue }
                acc.addProduct(input.loadUnaligned(fromByteOffset: (iy * w + ix) * 64, as: SIMD16<Float>.self),
                               k.loadUnaligned(fromByteOffset: (3 * i + j) * 64, as: SIMD16<Float>.self))
            }
        }
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        acc.replace(with: lo, where: acc .< lo)
        acc.replace(with: hi, where: hi .< acc)
        UnsafeMutableRawPointer(dst + ((oy - dstFirstRow) * w + ox) * 16).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}
