/// 2x2 max pooling, nearest 2x upsampling and the scatter of a 2x2 stride-2 transposed
/// convolution's taps in the channel-blocked layout NCHW16c, compiled for
/// AVX-512 and, through a symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check the CPU
/// first): a pixel's 16 channels are one vector.
public enum BlockedResampling {
    /// Output rows `rows` of one block plane of 2x2/2 max pooling (`src` is `[h][w][16]`, `dst`
    /// `[h / 2][w / 2][16]`), in the plain kernel's order of comparisons (`m = v >= m ? v : m` from
    /// `-inf`), so NaNs come out the same.
    @inline(never)
    public static func maxPoolRows(src: UnsafePointer<Float>, w: Int, dst: UnsafeMutablePointer<Float>, wo: Int, rows: Range<Int>) {
        let input = UnsafeRawPointer(src)
        for oy in rows {
            let r0 = input + 2 * oy * w * 64, r1 = r0 + w * 64
            let out = UnsafeMutableRawPointer(dst + oy * wo * 16)
            for ox in 0..<wo {
                var m = SIMD16<Float>(repeating: -.infinity)
                let a = r0.loadUnaligned(fromByteOffset: 128 * ox, as: SIMD16<Float>.self)
                let b = r0.loadUnaligned(fromByteOffset: 128 * ox + 64, as: SIMD16<Float>.self)
                let c = r1.loadUnaligned(fromByteOffset: 128 * ox, as: SIMD16<Float>.self)
                let d = r1.loadUnaligned(fromByteOffset: 128 * ox + 64, as: SIMD16<Float>.self)
                m.replace(with: a, where: a .>= m)
                m.replace(with: b, where: b .>= m)
                m.replace(with: c, where: c .>= m)
                m.replace(with: d, where: d .>= m)
                out.storeBytes(of: m, toByteOffset: 64 * ox, as: SIMD16<Float>.self)
            }
        }
    }

    /// Output rows `rows` of one block plane of nearest 2x upsampling (`src` is `[h][w][16]`, `dst`
    /// `[2h][2w][16]`): each input pixel written twice, then the row copied below itself.
    @inline(never)
    public static func upsampleRows(src: UnsafePointer<Float>, w: Int, dst: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        for y in rows {
            let input = UnsafeRawPointer(src + y * w * 16)
            let out = UnsafeMutableRawPointer(dst + 2 * y * 2 * w * 16)
            for x in 0..<w {
                let v = input.loadUnaligned(fromByteOffset: 64 * x, as: SIMD16<Float>.self)
                out.storeBytes(of: v, toByteOffset: 128 * x, as: SIMD16<Float>.self)
                out.storeBytes(of: v, toByteOffset: 128 * x + 64, as: SIMD16<Float>.self)
            }
            (out + 2 * w * 64).copyMemory(from: out, byteCount: 2 * w * 64)
        }
    }

    /// One tap `(i, j)` of a 2x2 stride-2 transposed convolution for input pixels `pixels` of one
    /// block: `dst[2y + i][2x + j] = clamp(taps[p - pixels.lowerBound] + bias, lower, upper)` for
    /// pixel `p = y w + x` (`taps` is `[pixels][16]`, `dst` `[2h][2w][16]`; `bias` nil is zero).
    @inline(never)
    public static func transposedTap(taps: UnsafePointer<Float>, w: Int, pixels: Range<Int>, i: Int, j: Int, bias: UnsafePointer<Float>?,
                                     lower: Float, upper: Float, dst: UnsafeMutablePointer<Float>) {
        let b = bias.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let from = UnsafeRawPointer(taps) - pixels.lowerBound * 64, out = UnsafeMutableRawPointer(dst)
        var p = pixels.lowerBound
        while p < pixels.upperBound {
            // The run of pixels on this input row.
            let y = p / w, x0 = p % w, end = min(pixels.upperBound, (y + 1) * w)
            let row = out + ((2 * y + i) * 2 * w + j) * 64
            for x in x0..<(x0 + end - p) {
                var v = from.loadUnaligned(fromByteOffset: (y * w + x) * 64, as: SIMD16<Float>.self) + b
                v.replace(with: lo, where: v .< lo)
                v.replace(with: hi, where: hi .< v)
                row.storeBytes(of: v, toByteOffset: 128 * x, as: SIMD16<Float>.self)
            }
            p = end
        }
    }
}
