/// The UNet downsampling step, 2x2 max pooling with stride 2, compiled for AVX-512 and, through a
/// symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check the CPU first): one output row from
/// two input rows, 16 outputs per step.
public enum MaxPoolRows {
    /// `out[x] = max(r0[2x], r0[2x + 1], r1[2x], r1[2x + 1])` for `x < count`, in the portable loop's
    /// order of comparisons (`m = v >= m ? v : m` from `-inf`), so NaNs come out the same.
    @inline(never)
    public static func halvingRow(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        @inline(__always) func evens(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14])
        }
        @inline(__always) func odds(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15])
        }
        let top = UnsafeRawPointer(r0), bottom = UnsafeRawPointer(r1)
        var x = 0
        while x + 16 <= count {
            let t0 = top.loadUnaligned(fromByteOffset: 8 * x, as: SIMD16<Float>.self)
            let t1 = top.loadUnaligned(fromByteOffset: 8 * x + 64, as: SIMD16<Float>.self)
            let b0 = bottom.loadUnaligned(fromByteOffset: 8 * x, as: SIMD16<Float>.self)
            let b1 = bottom.loadUnaligned(fromByteOffset: 8 * x + 64, as: SIMD16<Float>.self)
            var m = SIMD16<Float>(repeating: -.infinity)
            let a = evens(t0, t1), b = odds(t0, t1), c = evens(b0, b1), d = odds(b0, b1)
            m.replace(with: a, where: a .>= m)
            m.replace(with: b, where: b .>= m)
            m.replace(with: c, where: c .>= m)
            m.replace(with: d, where: d .>= m)
            UnsafeMutableRawPointer(out + x).storeBytes(of: m, as: SIMD16<Float>.self)
            x += 16
        }
        while x < count {
            var m = -Float.infinity
            if r0[2 * x] >= m { m = r0[2 * x] }
            if r0[2 * x + 1] >= m { m = r0[2 * x + 1] }
            if r1[2 * x] >= m { m = r1[2 * x] }
            if r1[2 * x + 1] >= m { m = r1[2 * x + 1] }
            out[x] = m
            x += 1
        }
    }
}
