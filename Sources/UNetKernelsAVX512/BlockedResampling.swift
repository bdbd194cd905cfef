/// 2x2 max pooling and nearest 2x upsampling in the channel-blocked layout NCHW16c, compiled for
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
}
