import CPrefetch

/// The 6x16 single-precision GEMM microkernel for AVX2 + FMA (two ymm registers per row, twelve
/// FMA accumulators, the same register budget as the AVX-512 6x32 kernel at half the width). This
/// module is compiled for `haswell`; callers check the CPU first.
///
/// Operands are packed panels: `a` is `[k][6]` (six rows interleaved, the layout plans store for
/// both x86 kernels), `b` is `[k][16]`.
public enum Microkernel6x16AVX2 {
    public static let rows = 6
    public static let columns = 16
    /// How far ahead (in floats) the A panel is prefetched, as in the AVX-512 kernel: 1.5 KB.
    static let prefetchDistance = 384

    /// `C[r, j] (+)= sum_k a[k][r] * b[k][j] (+ bias)` for `r < rows`, `j < cols`.
    @inline(never)
    public static func run(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                           rows: Int, cols: Int, rowBias: UnsafePointer<Float>?, columnBias: UnsafePointer<Float>?, accumulate: Bool) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
        var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        let braw = UnsafeRawPointer(b)
        var ap = a
        for kk in 0..<k {
            if kk & 1 == 0 { unetc_prefetch(ap + prefetchDistance) }
            let b0 = braw.loadUnaligned(fromByteOffset: kk * 64, as: SIMD8<Float>.self)
            let b1 = braw.loadUnaligned(fromByteOffset: kk * 64 + 32, as: SIMD8<Float>.self)
            var s = SIMD8<Float>(repeating: ap[0])
            c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[1])
            c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[2])
            c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[3])
            c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[4])
            c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[5])
            c50.addProduct(s, b0); c51.addProduct(s, b1)
            ap += 6
        }
        @inline(__always) func store(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ r: Int) {
            guard r < rows else { return }
            var v0 = lo, v1 = hi
            if let rowBias {
                let bias = SIMD8<Float>(repeating: rowBias[r])
                v0 += bias
                v1 += bias
            }
            if let columnBias {
                if cols == 16 {
                    v0 += UnsafeRawPointer(columnBias).loadUnaligned(as: SIMD8<Float>.self)
                    v1 += UnsafeRawPointer(columnBias).loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                } else {
                    for j in 0..<min(cols, 8) { v0[j] += columnBias[j] }
                    for j in 8..<max(cols, 8) { v1[j - 8] += columnBias[j] }
                }
            }
            let out = c + r * ldc
            if cols == 16 {
                let raw = UnsafeMutableRawPointer(out)
                if accumulate {
                    v0 += raw.loadUnaligned(as: SIMD8<Float>.self)
                    v1 += raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                }
                raw.storeBytes(of: v0, as: SIMD8<Float>.self)
                raw.storeBytes(of: v1, toByteOffset: 32, as: SIMD8<Float>.self)
            } else {
                for j in 0..<min(cols, 8) { out[j] = accumulate ? out[j] + v0[j] : v0[j] }
                for j in 8..<max(cols, 8) { out[j] = accumulate ? out[j] + v1[j - 8] : v1[j - 8] }
            }
        }
        store(c00, c01, 0)
        store(c10, c11, 1)
        store(c20, c21, 2)
        store(c30, c31, 3)
        store(c40, c41, 4)
        store(c50, c51, 5)
    }
}
