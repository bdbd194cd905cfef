/// Elementwise loops of normalisation and activation epilogues, compiled for AVX-512 and, through
/// a symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check the CPU first): GroupNorm's
/// per-channel scale and shift, and SiLU with a vector exponential.
public enum ActivationLoops {
    /// `e^x` for 16 lanes: `2^n * e^r` with `n = round(x / ln 2)`, `r` reduced in two steps (Cody and
    /// Waite) and `e^r` by its degree-6 Taylor polynomial, within 2e-7 relative of `expf`. Inputs are
    /// clamped to the range where the result is a normal float.
    @inline(__always)
    static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Compare-and-blend: the generic `pointwiseMin`/`pointwiseMax` compile to a per-lane loop.
        var xc = x
        xc.replace(with: SIMD16(repeating: 88.3), where: xc .> 88.3)
        xc.replace(with: SIMD16(repeating: -87.3), where: xc .< -87.3)
        let n = (xc * 1.442_695_04).rounded(.toNearestOrEven)
        var r = xc - n * 0.693_145_751_953_125
        r = r - n * 1.428_606_765_330_187e-06
        var p = SIMD16<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // n is a whole number below 2^22: adding 1.5 * 2^23 leaves it in the low mantissa bits
        // (the generic float-to-integer vector conversion is a scalar loop).
        let integer = unsafeBitCast(n + 12_582_912, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let bits = (integer &+ 127) &<< 23
        return p * unsafeBitCast(bits, to: SIMD16<Float>.self)
    }

    /// Below -87 the exponential is clamped and the quotient would not vanish: the result is -0 there
    /// (the true value is smaller in magnitude than 1e-36).
    @inline(__always)
    static func silu(_ x: SIMD16<Float>) -> SIMD16<Float> { (x / (1 + exp(-x))).replacing(with: -0.0, where: x .< -87) }

    /// `row[i] = silu(row[i])` for `i < count`.
    @inline(never)
    public static func silu(_ row: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeMutableRawPointer(row)
        var i = 0
        while i + 16 <= count {
            raw.storeBytes(of: silu(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        if i < count {
            var v = SIMD16<Float>()
            for k in 0..<(count - i) { v[k] = row[i + k] }
            v = silu(v)
            for k in 0..<(count - i) { row[i + k] = v[k] }
        }
    }

    /// `row[i] = min(max(row[i], lower), upper)` for `i < count` (ReLU, ReLU6); NaN stays NaN, as
    /// with the scalar `min(max(x, 0), 6)`.
    @inline(never)
    public static func clamp(_ row: UnsafeMutablePointer<Float>, count: Int, lower: Float, upper: Float) {
        let raw = UnsafeMutableRawPointer(row)
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        var i = 0
        while i + 16 <= count {
            // Compare-and-blend: the generic `pointwiseMin`/`pointwiseMax` compile to a per-lane loop.
            var v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            v.replace(with: lo, where: v .< lo)
            v.replace(with: hi, where: hi .< v)
            raw.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            row[i] = Swift.min(Swift.max(row[i], lower), upper)
            i += 1
        }
    }

    /// `dst[p * 16 + lane] = src[p * 16 + lane] * scale[lane] + shift[lane]` for `p < pixels`: a
    /// channel block of the NCHW16c layout normalised (GroupNorm), modulated (FiLM) or shifted by a
    /// per-channel vector (scale 1, which adds exactly). `src` may be `dst`.
    @inline(never)
    public static func scaleShiftBlocked(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, pixels: Int,
                                         scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        let s = UnsafeRawPointer(scale).loadUnaligned(as: SIMD16<Float>.self)
        let t = UnsafeRawPointer(shift).loadUnaligned(as: SIMD16<Float>.self)
        let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
        for p in 0..<pixels {
            // Multiply then add, as the plain layout's scalar loop does: the same bits in both layouts.
            let v = from.loadUnaligned(fromByteOffset: 64 * p, as: SIMD16<Float>.self) * s
            to.storeBytes(of: v + t, toByteOffset: 64 * p, as: SIMD16<Float>.self)
        }
    }

    /// Per channel of an NCHW16c block, over `pixels` consecutive pixels: the sum (into `sum[lane]`)
    /// and the sum of squared deviations from that run's own mean (into `squares[lane]`), the
    /// block statistics a GroupNorm reader combines.
    @inline(never)
    public static func statisticsBlocked(_ src: UnsafePointer<Float>, pixels: Int, sum: UnsafeMutablePointer<Float>,
                                         squares: UnsafeMutablePointer<Float>) {
        let from = UnsafeRawPointer(src)
        var total = SIMD16<Float>()
        for p in 0..<pixels { total += from.loadUnaligned(fromByteOffset: 64 * p, as: SIMD16<Float>.self) }
        let mean = total / SIMD16(repeating: Float(pixels))
        var deviations = SIMD16<Float>()
        for p in 0..<pixels {
            let d = from.loadUnaligned(fromByteOffset: 64 * p, as: SIMD16<Float>.self) - mean
            deviations += d * d
        }
        UnsafeMutableRawPointer(sum).storeBytes(of: total, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(squares).storeBytes(of: deviations, as: SIMD16<Float>.self)
    }

    /// `dst[i] = src[i] * scale + shift` for `i < count` (a normalised channel).
    @inline(never)
    public static func scaleShift(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float) {
        for i in 0..<count { dst[i] = src[i] * scale + shift }
    }
}
