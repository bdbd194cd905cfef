/// The last step of a 2-wide transposed convolution (stride 2, the UNet's upsampling), compiled for
/// AVX-512 and, through a symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check the CPU
/// first): the two taps' columns of one output row interleaved, with
/// the bias. The baseline build moved 4 floats per instruction; this is 32 per pair of stores.
public enum TapInterleave {
    /// `dst[2q] = even[q] + bias`, `dst[2q + 1] = odd[q] + bias` for `q < count`.
    @inline(never)
    public static func pairs(even: UnsafePointer<Float>, odd: UnsafePointer<Float>, bias: Float, dst: UnsafeMutablePointer<Float>, count: Int) {
        let b = SIMD16<Float>(repeating: bias)
        let e = UnsafeRawPointer(even), o = UnsafeRawPointer(odd), d = UnsafeMutableRawPointer(dst)
        var q = 0
        while q + 16 <= count {
            let x = e.loadUnaligned(fromByteOffset: 4 * q, as: SIMD16<Float>.self) + b
            let y = o.loadUnaligned(fromByteOffset: 4 * q, as: SIMD16<Float>.self) + b
            let low = SIMD16(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3], x[4], y[4], x[5], y[5], x[6], y[6], x[7], y[7])
            let high = SIMD16(x[8], y[8], x[9], y[9], x[10], y[10], x[11], y[11], x[12], y[12], x[13], y[13], x[14], y[14], x[15], y[15])
            d.storeBytes(of: low, toByteOffset: 8 * q, as: SIMD16<Float>.self)
            d.storeBytes(of: high, toByteOffset: 8 * q + 64, as: SIMD16<Float>.self)
            q += 16
        }
        while q < count {
            dst[2 * q] = even[q] + bias
            dst[2 * q + 1] = odd[q] + bias
            q += 1
        }
    }
}
