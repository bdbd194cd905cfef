/// The data transforms of Winograd F(4x4, 3x3) (Lavin & Gray's matrices, interpolation points
/// 0, ±1, ±2, ∞); callers check the CPU first.
///
/// One source compiled twice: here for AVX-512, and through a symbolic link in `UNetKernelsAVX2`
/// for AVX2 + FMA, where each 16-lane vector is a pair of ymm registers. The transforms are
/// arithmetic and fixed lane permutes with no ISA-specific intrinsics, so the two builds compute
/// the same values.
///
/// A 4x4 output tile needs a 6x6 input patch `d`; its 36 transformed values `Bᵀ d B` are
/// multiplied, per value, by the transformed filter `G g Gᵀ` (a GEMM over input channels for each
/// of the 36 positions), and `Aᵀ m A` gives the 4x4 outputs back. Both transforms work on 16 tiles
/// at once, one tile per SIMD lane; tiles overlap along the rows, so the row transforms split
/// (and the output transform rebuilds) the stride-4 phases with lane permutes.
public enum WinogradF4x4 {
    /// `Bᵀ d` for six values `d0 ... d5` (one per lane): the six transformed values, in order.
    /// Shared by the plain and the blocked transforms, so both compute the same values.
    @inline(__always)
    static func inputTerms(_ d0: SIMD16<Float>, _ d1: SIMD16<Float>, _ d2: SIMD16<Float>, _ d3: SIMD16<Float>, _ d4: SIMD16<Float>,
                           _ d5: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        (4 * d0 - 5 * d2 + d4, d4 + d3 - 4 * (d1 + d2), d4 - d3 + 4 * (d1 - d2), d4 - d2 + 2 * (d3 - d1), d4 - d2 - 2 * (d3 - d1),
         4 * d1 - 5 * d3 + d5)
    }

    /// `Aᵀ m` for six values (down a column of the 6x6 products): the four sums.
    @inline(__always)
    static func outputTerms(_ m0: SIMD16<Float>, _ m1: SIMD16<Float>, _ m2: SIMD16<Float>, _ m3: SIMD16<Float>, _ m4: SIMD16<Float>,
                            _ m5: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
        return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
    }

    /// `Aᵀ s + bias` along a row of column sums: the four output pixels.
    @inline(__always)
    static func outputPixels(_ s0: SIMD16<Float>, _ s1: SIMD16<Float>, _ s2: SIMD16<Float>, _ s3: SIMD16<Float>, _ s4: SIMD16<Float>,
                             _ s5: SIMD16<Float>, bias bv: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let p = s1 + s2, q = s1 - s2, r = s3 + s4, d = s3 - s4
        return (s0 + p + r + bv, q + 2 * d + bv, p + 4 * r + bv, q + 8 * d + s5 + bv)
    }

    /// Bᵀ applied down the columns of six input rows: `t[i][x] = Σ_k Bᵀ[i][k] row_k[x + x0]` for
    /// `x` in `0..<width`, zero where `x + x0` falls outside `0..<w`.
    ///
    /// `rows` holds six row pointers (a pointer to `zeros`, at least `w` long, for rows outside the
    /// image); `t` receives six rows of `width` values, `width` apart.
    @inline(never)
    public static func columnTransform(rows: UnsafePointer<UnsafePointer<Float>>, w: Int, x0: Int, width: Int,
                                       t: UnsafeMutablePointer<Float>) {
        let first = max(0, -x0), last = min(width, w - x0)
        for i in 0..<6 {
            let out = t + i * width
            for x in 0..<min(first, width) { out[x] = 0 }
            for x in max(last, 0)..<width { out[x] = 0 }
        }
        guard first < last else { return }
        let r0 = rows[0] + x0, r1 = rows[1] + x0, r2 = rows[2] + x0, r3 = rows[3] + x0, r4 = rows[4] + x0, r5 = rows[5] + x0
        let t0 = t, t1 = t + width, t2 = t + 2 * width, t3 = t + 3 * width, t4 = t + 4 * width, t5 = t + 5 * width
        // 16 columns at a time in explicit vectors (auto-vectorized loops get 8-wide ones for this
        // target), then the few left over.
        var x = first
        while x + 16 <= last {
            @inline(__always) func load(_ r: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(r + x).loadUnaligned(as: SIMD16<Float>.self) }
            @inline(__always) func store(_ v: SIMD16<Float>, _ r: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(r + x).storeBytes(of: v, as: SIMD16<Float>.self) }
            let v = inputTerms(load(r0), load(r1), load(r2), load(r3), load(r4), load(r5))
            store(v.0, t0); store(v.1, t1); store(v.2, t2); store(v.3, t3); store(v.4, t4); store(v.5, t5)
            x += 16
        }
        for x in x..<last {
            let d0 = r0[x], d1 = r1[x], d2 = r2[x], d3 = r3[x], d4 = r4[x], d5 = r5[x]
            t0[x] = 4 * d0 - 5 * d2 + d4
            t1[x] = d4 + d3 - 4 * (d1 + d2)
            t2[x] = d4 - d3 + 4 * (d1 - d2)
            t3[x] = d4 - d2 + 2 * (d3 - d1)
            t4[x] = d4 - d2 - 2 * (d3 - d1)
            t5[x] = 4 * d1 - 5 * d3 + d5
        }
    }

    /// Lanes `m, m + 4, m + 8, m + 12` of each of four vectors: phase `m` of 16 consecutive groups of
    /// four values (LLVM turns this into two-source permutes).
    @inline(__always)
    static func phase(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>, _ m: Int) -> SIMD16<Float> {
        SIMD16(a[m], a[m + 4], a[m + 8], a[m + 12], b[m], b[m + 4], b[m + 8], b[m + 12],
               c[m], c[m + 4], c[m + 8], c[m + 12], d[m], d[m + 4], d[m + 8], d[m + 12])
    }

    /// The inverse, for all four groups at once: result `q` is lanes `4q ..< 4q + 4` of `a, b, c, d`
    /// interleaved (`a[4q], b[4q], c[4q], d[4q], a[4q + 1], ...`). Built from two-source shuffles
    /// the compiler maps to single instructions (in-lane unpacks, then 128-bit lane selects): written
    /// as four-source gathers, the output transform spent 40% more time (perf samples, 256x256 maps).
    @inline(__always)
    static func interleave(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>)
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        // Within each 128-bit lane: pairs, then quadruples.
        @inline(__always) func low(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[0], y[0], x[1], y[1], x[4], y[4], x[5], y[5], x[8], y[8], x[9], y[9], x[12], y[12], x[13], y[13])
        }
        @inline(__always) func high(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[2], y[2], x[3], y[3], x[6], y[6], x[7], y[7], x[10], y[10], x[11], y[11], x[14], y[14], x[15], y[15])
        }
        @inline(__always) func lowPairs(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[0], x[1], y[0], y[1], x[4], x[5], y[4], y[5], x[8], x[9], y[8], y[9], x[12], x[13], y[12], y[13])
        }
        @inline(__always) func highPairs(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[2], x[3], y[2], y[3], x[6], x[7], y[6], y[7], x[10], x[11], y[10], y[11], x[14], x[15], y[14], y[15])
        }
        // 128-bit lanes (0, 2) of x then of y, and (1, 3).
        @inline(__always) func evenLanes(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[0], x[1], x[2], x[3], x[8], x[9], x[10], x[11], y[0], y[1], y[2], y[3], y[8], y[9], y[10], y[11])
        }
        @inline(__always) func oddLanes(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> {
            SIMD16(x[4], x[5], x[6], x[7], x[12], x[13], x[14], x[15], y[4], y[5], y[6], y[7], y[12], y[13], y[14], y[15])
        }
        let abLow = low(a, b), abHigh = high(a, b), cdLow = low(c, d), cdHigh = high(c, d)
        // t_j's 128-bit lane q is (a, b, c, d)[4q + j].
        let t0 = lowPairs(abLow, cdLow), t1 = highPairs(abLow, cdLow), t2 = lowPairs(abHigh, cdHigh), t3 = highPairs(abHigh, cdHigh)
        let p01 = evenLanes(t0, t1), p23 = evenLanes(t2, t3), r01 = oddLanes(t0, t1), r23 = oddLanes(t2, t3)
        return (evenLanes(p01, p23), evenLanes(r01, r23), oddLanes(p01, p23), oddLanes(r01, r23))
    }

    /// Bᵀ applied along the rows of column-transformed data for 16 tiles, four groups of four tiles
    /// side by side: group `q`'s tiles read `t[q][i * rowStride ..< + 20]` (tile `j` of the group at
    /// `4j`; 20 values are read, 18 used). Transformed value `(i, k)` of tile `4q + j` goes to
    /// `v[(6i + k) * stride + 4q + j]`.
    @inline(never)
    public static func inputTransform16(t: UnsafePointer<UnsafePointer<Float>>, rowStride: Int, v: UnsafeMutablePointer<Float>, stride: Int) {
        let t0 = UnsafeRawPointer(t[0]), t1 = UnsafeRawPointer(t[1]), t2 = UnsafeRawPointer(t[2]), t3 = UnsafeRawPointer(t[3])
        for i in 0..<6 {
            let o = i * rowStride * 4
            let a = t0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            let b = t1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            let c = t2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            let d = t3.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            // The same four groups moved on by one tile: the patches' fifth and sixth columns.
            let e = t0.loadUnaligned(fromByteOffset: o + 16, as: SIMD16<Float>.self)
            let f = t1.loadUnaligned(fromByteOffset: o + 16, as: SIMD16<Float>.self)
            let g = t2.loadUnaligned(fromByteOffset: o + 16, as: SIMD16<Float>.self)
            let h = t3.loadUnaligned(fromByteOffset: o + 16, as: SIMD16<Float>.self)
            let d0 = phase(a, b, c, d, 0), d1 = phase(a, b, c, d, 1), d2 = phase(a, b, c, d, 2), d3 = phase(a, b, c, d, 3)
            let d4 = phase(e, f, g, h, 0), d5 = phase(e, f, g, h, 1)
            let out = UnsafeMutableRawPointer(v + 6 * i * stride)
            let step = stride * 4
            let t = inputTerms(d0, d1, d2, d3, d4, d5)
            out.storeBytes(of: t.0, as: SIMD16<Float>.self)
            out.storeBytes(of: t.1, toByteOffset: step, as: SIMD16<Float>.self)
            out.storeBytes(of: t.2, toByteOffset: 2 * step, as: SIMD16<Float>.self)
            out.storeBytes(of: t.3, toByteOffset: 3 * step, as: SIMD16<Float>.self)
            out.storeBytes(of: t.4, toByteOffset: 4 * step, as: SIMD16<Float>.self)
            out.storeBytes(of: t.5, toByteOffset: 5 * step, as: SIMD16<Float>.self)
        }
    }

    /// `Aᵀ m A + bias` for 16 tiles in four groups of four: value `(i, k)` of tile `4q + j` is
    /// `m[(6i + k) * stride + 4q + j]`; output pixel `(a, b)` of that tile goes to
    /// `out[q][a * ldo + 4j + b]`, for the first `groups` groups.
    @inline(never)
    public static func outputTransform16(m: UnsafePointer<Float>, stride: Int, bias: Float, out: UnsafePointer<UnsafeMutablePointer<Float>>,
                                         groups: Int, ldo: Int) {
        let raw = UnsafeRawPointer(m)
        @inline(__always) func load(_ position: Int) -> SIMD16<Float> {
            raw.loadUnaligned(fromByteOffset: position * stride * 4, as: SIMD16<Float>.self)
        }
        // Aᵀ down the six rows, column k at a time: s[a][k].
        @inline(__always) func column(_ k: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
            outputTerms(load(k), load(6 + k), load(12 + k), load(18 + k), load(24 + k), load(30 + k))
        }
        let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
        let bv = SIMD16<Float>(repeating: bias)
        @inline(__always) func row(_ s0: SIMD16<Float>, _ s1: SIMD16<Float>, _ s2: SIMD16<Float>, _ s3: SIMD16<Float>,
                                   _ s4: SIMD16<Float>, _ s5: SIMD16<Float>, _ a: Int) {
            let (y0, y1, y2, y3) = outputPixels(s0, s1, s2, s3, s4, s5, bias: bv)
            // Constant lane indices, so each interleave is a few permutes.
            let (v0, v1, v2, v3) = interleave(y0, y1, y2, y3)
            UnsafeMutableRawPointer(out[0] + a * ldo).storeBytes(of: v0, as: SIMD16<Float>.self)
            if groups > 1 { UnsafeMutableRawPointer(out[1] + a * ldo).storeBytes(of: v1, as: SIMD16<Float>.self) }
            if groups > 2 { UnsafeMutableRawPointer(out[2] + a * ldo).storeBytes(of: v2, as: SIMD16<Float>.self) }
            if groups > 3 { UnsafeMutableRawPointer(out[3] + a * ldo).storeBytes(of: v3, as: SIMD16<Float>.self) }
        }
        row(c0.0, c1.0, c2.0, c3.0, c4.0, c5.0, 0)
        row(c0.1, c1.1, c2.1, c3.1, c4.1, c5.1, 1)
        row(c0.2, c1.2, c2.2, c3.2, c4.2, c5.2, 2)
        row(c0.3, c1.3, c2.3, c3.3, c4.3, c5.3, 3)
    }
}
