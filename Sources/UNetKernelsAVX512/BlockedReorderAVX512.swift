/// Conversion between the plain layout NCHW and the channel-blocked NCHW16c, compiled for AVX-512
/// (callers check the CPU first): 16x16 tiles (16 channels by 16 pixels) transposed in registers.
public enum BlockedReorderAVX512 {
    /// The 16 rows of `tile` transposed, by four rounds of a perfect unshuffle: each round sends
    /// the even and odd lanes of rows `2i`, `2i + 1` to rows `i` and `i + 8` (two-source permutes).
    @inline(__always)
    static func transpose(_ r: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
                                       SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
                                       SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
        for _ in 0..<4 {
            @inline(__always) func even(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { SIMD16(lowHalf: a.evenHalf, highHalf: b.evenHalf) }
            @inline(__always) func odd(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { SIMD16(lowHalf: a.oddHalf, highHalf: b.oddHalf) }
            r = (even(r.0, r.1), even(r.2, r.3), even(r.4, r.5), even(r.6, r.7), even(r.8, r.9), even(r.10, r.11), even(r.12, r.13), even(r.14, r.15),
                 odd(r.0, r.1), odd(r.2, r.3), odd(r.4, r.5), odd(r.6, r.7), odd(r.8, r.9), odd(r.10, r.11), odd(r.12, r.13), odd(r.14, r.15))
        }
    }

    /// Pixels `pixels` of one 16-channel block: `plain` points at the block's first channel plane
    /// (planes `plane` floats apart), `blocked` at the block's `[plane][16]`. `toBlocked` picks the direction.
    @inline(never)
    public static func block(plain: UnsafeMutablePointer<Float>, blocked: UnsafeMutablePointer<Float>, plane: Int, pixels: Range<Int>,
                             toBlocked: Bool) {
        var p = pixels.lowerBound
        // Source rows: 16 channel runs (to blocked) or 16 pixel vectors (to plain); the transpose swaps them.
        let (source, sourceStride, target, targetStride) = toBlocked
            ? (UnsafeRawPointer(plain), plane * 4, UnsafeMutableRawPointer(blocked), 64)
            : (UnsafeRawPointer(blocked), 64, UnsafeMutableRawPointer(plain), plane * 4)
        let sourceStep = toBlocked ? 4 : 64, targetStep = toBlocked ? 64 : 4
        while p + 16 <= pixels.upperBound {
            let s = source + p * sourceStep
            @inline(__always) func row(_ i: Int) -> SIMD16<Float> { s.loadUnaligned(fromByteOffset: i * sourceStride, as: SIMD16<Float>.self) }
            var r = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7), row(8), row(9), row(10), row(11), row(12), row(13), row(14), row(15))
            transpose(&r)
            let t = target + p * targetStep
            @inline(__always) func put(_ v: SIMD16<Float>, _ i: Int) { t.storeBytes(of: v, toByteOffset: i * targetStride, as: SIMD16<Float>.self) }
            put(r.0, 0); put(r.1, 1); put(r.2, 2); put(r.3, 3); put(r.4, 4); put(r.5, 5); put(r.6, 6); put(r.7, 7)
            put(r.8, 8); put(r.9, 9); put(r.10, 10); put(r.11, 11); put(r.12, 12); put(r.13, 13); put(r.14, 14); put(r.15, 15)
            p += 16
        }
        while p < pixels.upperBound {
            for c in 0..<16 {
                if toBlocked { blocked[p * 16 + c] = plain[c * plane + p] } else { plain[c * plane + p] = blocked[p * 16 + c] }
            }
            p += 1
        }
    }
}
