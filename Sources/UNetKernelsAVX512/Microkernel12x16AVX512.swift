import CPrefetch

/// The 12x16 single-precision GEMM microkernel for AVX-512: twelve rows of one zmm each, for
/// products with at most 16 columns (a 4x4 map's pixels, a 16x16 map's Winograd tiles), where the
/// 6x32 kernel would compute half its columns for nothing.
///
/// `a` and `a2` are two consecutive 6-row panels of the 6x32 kernel's layout (`[k][6]`), so the
/// same packed weights serve both kernels; `b` is `[k][ldb]` and only its first 16 columns are read.
public enum Microkernel12x16AVX512 {
    public static let columns = 16

    /// `C[r, j] = sum_k A[r][k] * B[k][j] (+ rowBias[r])` for `r < rows` (rows 6... from `a2`), `j < cols`.
    @inline(never)
    public static func run(k: Int, a: UnsafePointer<Float>, a2: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                           c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, cols: Int, rowBias: UnsafePointer<Float>?) {
        var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
        var c4 = SIMD16<Float>(), c5 = SIMD16<Float>(), c6 = SIMD16<Float>(), c7 = SIMD16<Float>()
        var c8 = SIMD16<Float>(), c9 = SIMD16<Float>(), c10 = SIMD16<Float>(), c11 = SIMD16<Float>()
        var bp = UnsafeRawPointer(b)
        let step = ldb * MemoryLayout<Float>.size
        var p = a, q = a2
        let distance = Microkernel6x32AVX512.prefetchDistance(k: k)
        for kk in 0..<k {
            // Both A streams, every other step (48 bytes apart, so every line is fetched).
            if kk & 1 == 0 {
                unetc_prefetch(p + distance)
                unetc_prefetch(q + distance)
            }
            let v = bp.loadUnaligned(as: SIMD16<Float>.self)
            c0.addProduct(SIMD16(repeating: p[0]), v)
            c1.addProduct(SIMD16(repeating: p[1]), v)
            c2.addProduct(SIMD16(repeating: p[2]), v)
            c3.addProduct(SIMD16(repeating: p[3]), v)
            c4.addProduct(SIMD16(repeating: p[4]), v)
            c5.addProduct(SIMD16(repeating: p[5]), v)
            c6.addProduct(SIMD16(repeating: q[0]), v)
            c7.addProduct(SIMD16(repeating: q[1]), v)
            c8.addProduct(SIMD16(repeating: q[2]), v)
            c9.addProduct(SIMD16(repeating: q[3]), v)
            c10.addProduct(SIMD16(repeating: q[4]), v)
            c11.addProduct(SIMD16(repeating: q[5]), v)
            bp += step
            p += 6
            q += 6
        }
        @inline(__always) func store(_ value: SIMD16<Float>, _ r: Int) {
            guard r < rows else { return }
            var v = value
            if let rowBias { v += SIMD16(repeating: rowBias[r]) }
            let out = c + r * ldc
            if cols == 16 {
                UnsafeMutableRawPointer(out).storeBytes(of: v, as: SIMD16<Float>.self)
            } else {
                for j in 0..<cols { out[j] = v[j] }
            }
        }
        store(c0, 0); store(c1, 1); store(c2, 2); store(c3, 3); store(c4, 4); store(c5, 5)
        store(c6, 6); store(c7, 7); store(c8, 8); store(c9, 9); store(c10, 10); store(c11, 11)
    }
}
