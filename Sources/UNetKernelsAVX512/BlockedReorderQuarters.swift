/// Conversion between the plain layout NCHW and the channel-blocked NCHW16c, each 16x16 tile (16
/// channels by 16 pixels) as four 8x8 quarters transposed in registers: ISA-neutral Swift SIMD,
/// compiled for AVX-512 and, through a symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check
/// the CPU first). The AVX2 reorder steps run it (16 ymm registers hold a quarter, not a whole
/// tile); so does the blocked head on AVX2 and where AVX-512 runs as two 256-bit halves
/// (`HeadTileTranspose`): on Zen 4 this took 0.41-0.52 ms on MobileUNet's head against 1.8-2.1 ms
/// with `BlockedReorderAVX512`'s 16x16 transpose (64 two-source permutes per tile).
public enum BlockedReorderQuarters {
    /// The 8 rows of `tile` transposed, by three rounds of a perfect unshuffle: each round sends
    /// the even and odd lanes of rows `2i`, `2i + 1` to rows `i` and `i + 4`.
    @inline(__always)
    static func transpose(_ r: inout (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
        for _ in 0..<3 {
            @inline(__always) func even(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf) }
            @inline(__always) func odd(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf) }
            r = (even(r.0, r.1), even(r.2, r.3), even(r.4, r.5), even(r.6, r.7), odd(r.0, r.1), odd(r.2, r.3), odd(r.4, r.5), odd(r.6, r.7))
        }
    }

    /// Pixels `pixels` of one 16-channel block: `plain` points at the block's first channel plane
    /// (planes `plane` floats apart), `blocked` at the block's `[plane][16]`. `toBlocked` picks the direction.
    @inline(never)
    public static func block(plain: UnsafeMutablePointer<Float>, blocked: UnsafeMutablePointer<Float>, plane: Int, pixels: Range<Int>,
                             toBlocked: Bool) {
        var p = pixels.lowerBound
        // Source rows: 8 channel runs (to blocked) or 8 pixel half-vectors (to plain); the transpose swaps them.
        let (source, sourceStride, target, targetStride) = toBlocked
            ? (UnsafeRawPointer(plain), plane * 4, UnsafeMutableRawPointer(blocked), 64)
            : (UnsafeRawPointer(blocked), 64, UnsafeMutableRawPointer(plain), plane * 4)
        while p + 16 <= pixels.upperBound {
            for quarter in 0..<4 {
                let (c0, p0) = (8 * (quarter / 2), p + 8 * (quarter % 2))
                // Channel c0, pixel p0 of the quarter in either layout.
                let s = source + (toBlocked ? (c0 * plane + p0) * 4 : (p0 * 16 + c0) * 4)
                let t = target + (toBlocked ? (p0 * 16 + c0) * 4 : (c0 * plane + p0) * 4)
                @inline(__always) func row(_ i: Int) -> SIMD8<Float> { s.loadUnaligned(fromByteOffset: i * sourceStride, as: SIMD8<Float>.self) }
                var r = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
                transpose(&r)
                @inline(__always) func put(_ v: SIMD8<Float>, _ i: Int) { t.storeBytes(of: v, toByteOffset: i * targetStride, as: SIMD8<Float>.self) }
                put(r.0, 0); put(r.1, 1); put(r.2, 2); put(r.3, 3); put(r.4, 4); put(r.5, 5); put(r.6, 6); put(r.7, 7)
            }
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
