import CPrefetch

/// Depthwise convolution of one channel plane, compiled for AVX-512 and, through a symbolic link in
/// `UNetKernelsAVX2`, for AVX2 (callers check the CPU first).
///
/// Output rows are accumulated tap row by tap row over the range where every tap stays inside the
/// input, so the inner loops have no bounds checks and vectorize; a 3-wide stride-1 kernel row (the
/// common case) is applied in one pass over the output row instead of three.
public enum DepthwisePlane {
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
        if kh == 3 && kw == 3 && sy == 1 && sx == 1 && dy == 1 && dx == 1 {
            plane3x3(src: src, h: h, w: w, dst: dst, ho: ho, wo: wo, kernel: kernel, pad: pad, bias: bias,
                     inner: validColumns(-px).clamped(to: validColumns(2 - px)))
            return
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

    /// 3x3 stride 1: each 16-pixel vector of an output row sums its nine taps in a register (one
    /// store per output instead of one read-modify-write per kernel row); `inner` is the column
    /// range where all three taps of a row are inside the input.
    @inline(__always)
    static func plane3x3(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, ho: Int, wo: Int,
                         kernel k: UnsafePointer<Float>, pad: (Int, Int), bias: Float, inner: Range<Int>) {
        let (py, px) = pad
        let t00 = SIMD16<Float>(repeating: k[0]), t01 = SIMD16<Float>(repeating: k[1]), t02 = SIMD16<Float>(repeating: k[2])
        let t10 = SIMD16<Float>(repeating: k[3]), t11 = SIMD16<Float>(repeating: k[4]), t12 = SIMD16<Float>(repeating: k[5])
        let t20 = SIMD16<Float>(repeating: k[6]), t21 = SIMD16<Float>(repeating: k[7]), t22 = SIMD16<Float>(repeating: k[8])
        @inline(__always) func add(_ acc: inout SIMD16<Float>, _ r: UnsafePointer<Float>?, _ ox: Int,
                                   _ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) {
            guard let r else { return }
            let raw = UnsafeRawPointer(r + ox)
            acc.addProduct(raw.loadUnaligned(as: SIMD16<Float>.self), a)
            acc.addProduct(raw.loadUnaligned(fromByteOffset: 4, as: SIMD16<Float>.self), b)
            acc.addProduct(raw.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self), c)
        }
        if w <= 16 && wo <= 16 {
            // Rows of one vector (maps deep in the UNet, where the edges are most of the row): each
            // input row's three shifted copies are built once, zero outside the row, then every
            // output row is nine fused multiply-adds in the scalar path's order.
            withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 3 * h) { buffer in
                guard let shifted = buffer.baseAddress else { return }
                for iy in 0..<h {
                    let r = src + iy * w
                    if w == 16 && wo == 16 && px == 1 {
                        // A whole row in one vector, moved one lane either way (constant lanes: permutes).
                        let v = UnsafeRawPointer(r).loadUnaligned(as: SIMD16<Float>.self)
                        shifted[3 * iy] = SIMD16(0, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14])
                        shifted[3 * iy + 1] = v
                        shifted[3 * iy + 2] = SIMD16(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], 0)
                        continue
                    }
                    for j in 0..<3 {
                        var v = SIMD16<Float>()
                        for ox in 0..<wo where ox - px + j >= 0 && ox - px + j < w { v[ox] = r[ox - px + j] }
                        shifted[3 * iy + j] = v
                    }
                }
                for oy in 0..<ho {
                    var acc = SIMD16<Float>(repeating: bias)
                    @inline(__always) func add(_ i: Int, _ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) {
                        let iy = oy - py + i
                        guard iy >= 0 && iy < h else { return }
                        acc.addProduct(shifted[3 * iy], a)
                        acc.addProduct(shifted[3 * iy + 1], b)
                        acc.addProduct(shifted[3 * iy + 2], c)
                    }
                    add(0, t00, t01, t02)
                    add(1, t10, t11, t12)
                    add(2, t20, t21, t22)
                    let row = dst + oy * wo
                    if wo == 16 {
                        UnsafeMutableRawPointer(row).storeBytes(of: acc, as: SIMD16<Float>.self)
                    } else {
                        for ox in 0..<wo { row[ox] = acc[ox] }
                    }
                }
            }
            return
        }
        for oy in 0..<ho {
            let row = dst + oy * wo
            // The input rows under kernel rows 0, 1, 2, shifted by the left padding (nil outside the input).
            @inline(__always) func inputRow(_ i: Int) -> UnsafePointer<Float>? {
                let iy = oy - py + i
                return iy >= 0 && iy < h ? src + iy * w - px : nil
            }
            let r0 = inputRow(0), r1 = inputRow(1), r2 = inputRow(2)
            // Edge columns, tap by tap in the same order as the vectors (fused multiply-adds).
            @inline(__always) func scalar(_ ox: Int) {
                var acc = bias
                @inline(__always) func add(_ r: UnsafePointer<Float>?, _ i: Int) {
                    guard let r else { return }
                    for j in 0..<3 where ox - px + j >= 0 && ox - px + j < w { acc.addProduct(k[i * 3 + j], r[ox + j]) }
                }
                add(r0, 0)
                add(r1, 1)
                add(r2, 2)
                row[ox] = acc
            }
            for ox in 0..<min(inner.lowerBound, wo) { scalar(ox) }
            // Two input rows ahead: the next output rows' new row, which otherwise arrives late at
            // the start of every plane and after every row switch.
            let ahead = inputRow(2).map { $0 + 2 * w }
            @inline(__always) func vector(_ ox: Int) {
                if let ahead { unetc_prefetch(ahead + ox) }
                var acc = SIMD16<Float>(repeating: bias)
                add(&acc, r0, ox, t00, t01, t02)
                add(&acc, r1, ox, t10, t11, t12)
                add(&acc, r2, ox, t20, t21, t22)
                UnsafeMutableRawPointer(row + ox).storeBytes(of: acc, as: SIMD16<Float>.self)
            }
            var ox = inner.lowerBound
            while ox + 16 <= inner.upperBound {
                vector(ox)
                ox += 16
            }
            // The last partial vector overlaps the one before it: a pixel's value does not depend on
            // which vector computes it.
            if ox < inner.upperBound && inner.count >= 16 {
                vector(inner.upperBound - 16)
                ox = inner.upperBound
            }
            while ox < wo { scalar(ox); ox += 1 }
        }
    }
}
