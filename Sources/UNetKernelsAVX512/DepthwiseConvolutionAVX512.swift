/// Depthwise convolution of one channel plane, compiled for AVX-512 (callers check the CPU first).
///
/// Output rows are accumulated tap row by tap row over the range where every tap stays inside the
/// input, so the inner loops have no bounds checks and vectorize; a 3-wide stride-1 kernel row (the
/// common case) is applied in one pass over the output row instead of three.
public enum DepthwiseConvolutionAVX512 {
    @inline(never)
    public static func plane(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, ho: Int, wo: Int,
                             kernel: UnsafePointer<Float>, kh: Int, kw: Int, stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int),
                             bias: Float) {
        let (sy, sx) = stride, (py, px) = pad, (dy, dx) = dilation
        // ox such that 0 <= ox * sx + offset < w, for a tap at column offset `offset`.
        @inline(__always) func validColumns(_ offset: Int) -> Range<Int> {
            let first = offset >= 0 ? 0 : (-offset + sx - 1) / sx
            let last = min(wo, (w - 1 - offset) >= 0 ? (w - 1 - offset) / sx + 1 : 0)
            return first..<max(first, last)
        }
        for oy in 0..<ho {
            let row = dst + oy * wo
            for ox in 0..<wo { row[ox] = bias }
            for i in 0..<kh {
                let iy = oy * sy - py + i * dy
                if iy < 0 || iy >= h { continue }
                let input = src + iy * w
                let taps = kernel + i * kw
                if kw == 3 && sx == 1 && dx == 1 {
                    // Where all three taps are inside the row: one pass, three products.
                    let inner = validColumns(-px).clamped(to: validColumns(2 - px))
                    let w0 = taps[0], w1 = taps[1], w2 = taps[2]
                    let shifted = input - px
                    for ox in inner { row[ox] += w0 * shifted[ox] + w1 * shifted[ox + 1] + w2 * shifted[ox + 2] }
                    // The few columns at the edges, tap by tap.
                    for j in 0..<3 {
                        let valid = validColumns(j - px)
                        let t = taps[j]
                        for ox in valid.lowerBound..<max(valid.lowerBound, min(valid.upperBound, inner.lowerBound)) { row[ox] += t * shifted[ox + j] }
                        for ox in max(valid.lowerBound, inner.upperBound)..<max(valid.upperBound, inner.upperBound) { row[ox] += t * shifted[ox + j] }
                    }
                    continue
                }
                for j in 0..<kw {
                    let t = taps[j]
                    let offset = j * dx - px
                    let valid = validColumns(offset)
                    if sx == 1 {
                        let shifted = input + offset
                        for ox in valid { row[ox] += t * shifted[ox] }
                    } else {
                        for ox in valid { row[ox] += t * input[ox * sx + offset] }
                    }
                }
            }
        }
    }
}
