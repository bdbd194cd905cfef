import CPrefetch

/// The 6x32 single-precision GEMM microkernel for AVX-512 (two zmm registers per row, twelve
/// FMA accumulators). This module is compiled for `skylake-avx512`; callers check the CPU first.
///
/// Operands are packed panels: `a` is `[k][6]` (six rows interleaved), `b` is `[k][32]`.
public enum Microkernel6x32AVX512 {
    public static let rows = 6
    public static let columns = 32
    /// How far ahead (in floats) the A panels are prefetched: 1.5 KB, about 64 steps of k. Filters
    /// too large for the caches stream from memory, and the hardware prefetcher alone keeps them
    /// about half as fast as from L3 (measured: 1.04 -> 0.65 ms for a 16x16 map's 256-channel
    /// Winograd products; no change when they are in cache). Panels of at least 2048 steps (deep
    /// 3x3 convolutions on 8x8 maps, K = 2304 or 4608) are one long stream per call and go 6 KB
    /// ahead: the DDPM UNet's 8x8 convolutions took 0.97 -> 0.80 ms at 1 thread.
    @inline(__always)
    static func prefetchDistance(k: Int) -> Int { k >= 2048 ? 1536 : 384 }

    /// `C[row0 + r, col0 + j] (+)= sum_k a[k][r] * b[k][j] (+ bias)` for `r < rows`, `j < cols`.
    @inline(never)
    public static func run(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                           rows: Int, cols: Int, rowBias: UnsafePointer<Float>?, columnBias: UnsafePointer<Float>?, accumulate: Bool) {
        let braw = UnsafeRawPointer(b)
        tile(k: k, a: a, c: c, ldc: ldc, rows: rows, cols: cols, rowBias: rowBias, columnBias: columnBias, accumulate: accumulate) { kk in
            (braw.loadUnaligned(fromByteOffset: kk * 128, as: SIMD16<Float>.self),
             braw.loadUnaligned(fromByteOffset: kk * 128 + 64, as: SIMD16<Float>.self))
        }
    }

    /// `run` on a full panel of 32 columns read where they lie (row `kk` at `source + kk * ldb`: a
    /// 1x1 convolution's input channels), packing them into `packed` on the way for the other row
    /// panels. The loads of the next rows overlap the products, where a separate packing pass
    /// waits on each. Each row is prefetched two panels ahead.
    @inline(never)
    public static func runPacking(k: Int, a: UnsafePointer<Float>, source: UnsafePointer<Float>, ldb: Int, packed: UnsafeMutablePointer<Float>,
                                  c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, rowBias: UnsafePointer<Float>?) {
        let sraw = UnsafeRawPointer(source), praw = UnsafeMutableRawPointer(packed)
        let rowBytes = ldb * 4
        tile(k: k, a: a, c: c, ldc: ldc, rows: rows, cols: 32, rowBias: rowBias, columnBias: nil, accumulate: false) { kk in
            let offset = kk * rowBytes
            unetc_prefetch(source + kk * ldb + 64)
            unetc_prefetch(source + kk * ldb + 80)
            let b0 = sraw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
            let b1 = sraw.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
            praw.storeBytes(of: b0, toByteOffset: kk * 128, as: SIMD16<Float>.self)
            praw.storeBytes(of: b1, toByteOffset: kk * 128 + 64, as: SIMD16<Float>.self)
            return (b0, b1)
        }
    }

    @inline(__always)
    static func tile(k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, cols: Int,
                     rowBias: UnsafePointer<Float>?, columnBias: UnsafePointer<Float>?, accumulate: Bool,
                     loadB: (Int) -> (SIMD16<Float>, SIMD16<Float>)) {
        var c00 = SIMD16<Float>(), c01 = SIMD16<Float>()
        var c10 = SIMD16<Float>(), c11 = SIMD16<Float>()
        var c20 = SIMD16<Float>(), c21 = SIMD16<Float>()
        var c30 = SIMD16<Float>(), c31 = SIMD16<Float>()
        var c40 = SIMD16<Float>(), c41 = SIMD16<Float>()
        var c50 = SIMD16<Float>(), c51 = SIMD16<Float>()
        var ap = a
        let distance = prefetchDistance(k: k)
        for kk in 0..<k {
            if kk & 1 == 0 { unetc_prefetch(ap + distance) }
            let (b0, b1) = loadB(kk)
            var s = SIMD16<Float>(repeating: ap[0])
            c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = SIMD16<Float>(repeating: ap[1])
            c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = SIMD16<Float>(repeating: ap[2])
            c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = SIMD16<Float>(repeating: ap[3])
            c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = SIMD16<Float>(repeating: ap[4])
            c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = SIMD16<Float>(repeating: ap[5])
            c50.addProduct(s, b0); c51.addProduct(s, b1)
            ap += 6
        }
        @inline(__always) func store(_ lo: SIMD16<Float>, _ hi: SIMD16<Float>, _ r: Int) {
            guard r < rows else { return }
            var v0 = lo, v1 = hi
            if let rowBias {
                let bias = SIMD16<Float>(repeating: rowBias[r])
                v0 += bias
                v1 += bias
            }
            if let columnBias {
                if cols == 32 {
                    v0 += UnsafeRawPointer(columnBias).loadUnaligned(as: SIMD16<Float>.self)
                    v1 += UnsafeRawPointer(columnBias).loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                } else {
                    for j in 0..<min(cols, 16) { v0[j] += columnBias[j] }
                    for j in 16..<max(cols, 16) { v1[j - 16] += columnBias[j] }
                }
            }
            let out = c + r * ldc
            if cols == 32 {
                let raw = UnsafeMutableRawPointer(out)
                if accumulate {
                    v0 += raw.loadUnaligned(as: SIMD16<Float>.self)
                    v1 += raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                }
                raw.storeBytes(of: v0, as: SIMD16<Float>.self)
                raw.storeBytes(of: v1, toByteOffset: 64, as: SIMD16<Float>.self)
            } else {
                for j in 0..<min(cols, 16) { out[j] = accumulate ? out[j] + v0[j] : v0[j] }
                for j in 16..<max(cols, 16) { out[j] = accumulate ? out[j] + v1[j - 16] : v1[j - 16] }
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
