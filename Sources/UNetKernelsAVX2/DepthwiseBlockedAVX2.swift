/// 3x3 depthwise convolution, stride 1, padding 1, in the channel-blocked layout NCHW16c, compiled
/// for AVX2 + FMA (callers check the CPU first): `DepthwiseBlockedAVX512`'s kernel for 16 ymm
/// registers. Each 8-channel half of a block runs on its own, so its nine taps stay in registers.
///
/// Taps are summed from the bias in the plain kernel's order (kernel rows top to bottom, columns
/// left to right) and the clamp is fused into the store: bit-identical to the plain layout.
public enum DepthwiseBlockedAVX2 {
    /// Output rows `rows` of one block plane: `src` is `[h][w][16]`, `dst` holds rows from
    /// `dstFirstRow` on (`[w][16]` each), `kernel` is `[9][16]` (tap-major), `bias` the block's 16
    /// biases (nil: zero).
    @inline(never)
    public static func rows(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, dstFirstRow: Int = 0,
                            kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Range<Int>, lower: Float, upper: Float) {
        for half in 0..<2 {
            let k = UnsafeRawPointer(kernel) + 32 * half
            let t00 = k.loadUnaligned(as: SIMD8<Float>.self), t01 = k.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
            let t02 = k.loadUnaligned(fromByteOffset: 128, as: SIMD8<Float>.self), t10 = k.loadUnaligned(fromByteOffset: 192, as: SIMD8<Float>.self)
            let t11 = k.loadUnaligned(fromByteOffset: 256, as: SIMD8<Float>.self), t12 = k.loadUnaligned(fromByteOffset: 320, as: SIMD8<Float>.self)
            let t20 = k.loadUnaligned(fromByteOffset: 384, as: SIMD8<Float>.self), t21 = k.loadUnaligned(fromByteOffset: 448, as: SIMD8<Float>.self)
            let t22 = k.loadUnaligned(fromByteOffset: 512, as: SIMD8<Float>.self)
            let b = bias.map { UnsafeRawPointer($0).loadUnaligned(fromByteOffset: 32 * half, as: SIMD8<Float>.self) } ?? SIMD8<Float>()
            let lo = SIMD8<Float>(repeating: lower), hi = SIMD8<Float>(repeating: upper)
            let rowBytes = w * 64
            for oy in rows {
                let out = UnsafeMutableRawPointer(dst + (oy - dstFirstRow) * w * 16) + 32 * half
                let middle = UnsafeRawPointer(src + oy * w * 16) + 32 * half
                if oy > 0 && oy + 1 < h && w > 2 {
                    let top = middle - rowBytes, bottom = middle + rowBytes
                    var offset = 64
                    while offset < (w - 1) * 64 {
                        var acc = b
                        acc.addProduct(top.loadUnaligned(fromByteOffset: offset - 64, as: SIMD8<Float>.self), t00)
                        acc.addProduct(top.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self), t01)
                        acc.addProduct(top.loadUnaligned(fromByteOffset: offset + 64, as: SIMD8<Float>.self), t02)
                        acc.addProduct(middle.loadUnaligned(fromByteOffset: offset - 64, as: SIMD8<Float>.self), t10)
                        acc.addProduct(middle.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self), t11)
                        acc.addProduct(middle.loadUnaligned(fromByteOffset: offset + 64, as: SIMD8<Float>.self), t12)
                        acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset - 64, as: SIMD8<Float>.self), t20)
                        acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self), t21)
                        acc.addProduct(bottom.loadUnaligned(fromByteOffset: offset + 64, as: SIMD8<Float>.self), t22)
                        acc.replace(with: lo, where: acc .< lo)
                        acc.replace(with: hi, where: hi .< acc)
                        out.storeBytes(of: acc, toByteOffset: offset, as: SIMD8<Float>.self)
                        offset += 64
                    }
                    edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: 0, half: half,
                         lower: lower, upper: upper)
                    edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: w - 1, half: half,
                         lower: lower, upper: upper)
                } else {
                    for ox in 0..<w {
                        edge(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, oy: oy, ox: ox, half: half,
                             lower: lower, upper: upper)
                    }
                }
            }
        }
    }

    /// One output pixel's half `half` with its taps outside the image skipped (the border rows and columns).
    @inline(never)
    static func edge(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, dstFirstRow: Int, kernel: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, oy: Int, ox: Int, half: Int, lower: Float, upper: Float) {
        var acc = bias.map { UnsafeRawPointer($0).loadUnaligned(fromByteOffset: 32 * half, as: SIMD8<Float>.self) } ?? SIMD8<Float>()
        let k = UnsafeRawPointer(kernel) + 32 * half, input = UnsafeRawPointer(src) + 32 * half
        for i in 0..<3 {
            let iy = oy - 1 + i
            guard iy >= 0 && iy < h else { continue }
            for j in 0..<3 {
                let ix = ox - 1 + j
                guard ix >= 0 && ix < w else { continue }
                acc.addProduct(input.loadUnaligned(fromByteOffset: (iy * w + ix) * 64, as: SIMD8<Float>.self),
                               k.loadUnaligned(fromByteOffset: (3 * i + j) * 64, as: SIMD8<Float>.self))
            }
        }
        let lo = SIMD8<Float>(repeating: lower), hi = SIMD8<Float>(repeating: upper)
        acc.replace(with: lo, where: acc .< lo)
        acc.replace(with: hi, where: hi .< acc)
        (UnsafeMutableRawPointer(dst + ((oy - dstFirstRow) * w + ox) * 16) + 32 * half).storeBytes(of: acc, as: SIMD8<Float>.self)
    }
}
