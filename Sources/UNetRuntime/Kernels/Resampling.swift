import UNetIR
import UNetKernelsAVX512
import UNetKernelsAVX2

/// Pooling and upsampling, with PyTorch's index conventions.
enum ResamplingKernel {
    static func pool2d(_ p: Pool2D, x: Tensor, out: Tensor, pool: ThreadPool) {
        let (h, w) = (x.shape[2], x.shape[3])
        let (ho, wo) = (out.shape[2], out.shape[3])
        let xd = x.data, od = out.data
        // The UNet downsampling step: every window inside the input, no bounds, a loop that vectorizes.
        let halving = p.kind == .max && p.kernel == (2, 2) && p.stride == (2, 2) && p.pad == (0, 0) && 2 * ho <= h && 2 * wo <= w
        pool.parallelFor(x.shape[0] * x.shape[1], elements: x.count + out.count) { plane in
            let src = xd + plane * h * w, dst = od + plane * ho * wo
            if halving && GEMM.avx512 {
                for oy in 0..<ho { UNetKernelsAVX512.MaxPoolRows.halvingRow(src + 2 * oy * w, src + (2 * oy + 1) * w, dst + oy * wo, count: wo) }
            } else if halving && GEMM.avx2 {
                for oy in 0..<ho { UNetKernelsAVX2.MaxPoolRows.halvingRow(src + 2 * oy * w, src + (2 * oy + 1) * w, dst + oy * wo, count: wo) }
                return
            }
            if halving {
                for oy in 0..<ho {
                    let r0 = src + 2 * oy * w, r1 = r0 + w, o = dst + oy * wo
                    // The same order of comparisons as the general loop, so NaNs come out the same.
                    for ox in 0..<wo { o[ox] = max(max(max(max(-Float.infinity, r0[2 * ox]), r0[2 * ox + 1]), r1[2 * ox]), r1[2 * ox + 1]) }
                }
                return
            }
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var y0 = oy * p.stride.0 - p.pad.0
                    var x0 = ox * p.stride.1 - p.pad.1
                    var y1 = min(y0 + p.kernel.0, h + p.pad.0)
                    var x1 = min(x0 + p.kernel.1, w + p.pad.1)
                    let windowArea = (y1 - y0) * (x1 - x0)
                    y0 = max(y0, 0); x0 = max(x0, 0); y1 = min(y1, h); x1 = min(x1, w)
                    switch p.kind {
                    case .max:
                        var m = -Float.infinity
                        for y in y0..<max(y0, y1) { for xx in x0..<max(x0, x1) { m = max(m, src[y * w + xx]) } }
                        dst[oy * wo + ox] = m
                    case .average:
                        var s: Float = 0
                        for y in y0..<max(y0, y1) { for xx in x0..<max(x0, x1) { s += src[y * w + xx] } }
                        // count_include_pad: the window clipped to the padded input.
                        dst[oy * wo + ox] = s / Float(windowArea)
                    }
                }
            }
        }
    }

    static func globalPool(_ kind: PoolKind, x: Tensor, out: Tensor) {
        let plane = x.shape[2] * x.shape[3]
        for p in 0..<(x.shape[0] * x.shape[1]) {
            let src = x.data + p * plane
            switch kind {
            case .max:
                var m = -Float.infinity
                for i in 0..<plane { m = max(m, src[i]) }
                out.data[p] = m
            case .average:
                var s = 0.0
                for i in 0..<plane { s += Double(src[i]) }
                out.data[p] = Float(s / Double(plane))
            }
        }
    }

    /// PyTorch's source-index scale: the inverse scale factor when one was given, else in/out.
    static func scale(_ u: Upsample, input: Int, output: Int, axis: Int) -> Float {
        switch u.target {
        case .scale(let sh, let sw): return 1 / Float(axis == 0 ? sh : sw)
        case .size: return Float(input) / Float(output)
        }
    }

    static func upsample(_ u: Upsample, x: Tensor, out: Tensor, pool: ThreadPool) {
        let (h, w) = (x.shape[2], x.shape[3])
        let (ho, wo) = (out.shape[2], out.shape[3])
        let sy = scale(u, input: h, output: ho, axis: 0)
        let sx = scale(u, input: w, output: wo, axis: 1)
        let xd = x.data, od = out.data
        switch u.mode {
        case .nearest:
            let ys = (0..<ho).map { min(Int((Float($0) * sy).rounded(.down)), h - 1) }
            let xs = (0..<wo).map { min(Int((Float($0) * sx).rounded(.down)), w - 1) }
            let doubling = ho == 2 * h && wo == 2 * w && ys.enumerated().allSatisfy { $0.element == $0.offset / 2 }
                && xs.enumerated().allSatisfy { $0.element == $0.offset / 2 }
            pool.parallelFor(x.shape[0] * x.shape[1], elements: x.count + out.count) { plane in
                let src = xd + plane * h * w, dst = od + plane * ho * wo
                if doubling {
                    // 2x (decoders): each input row written twice side by side, then the output row copied.
                    for iy in 0..<h {
                        let row = src + iy * w, out = dst + 2 * iy * wo
                        for ix in 0..<w {
                            out[2 * ix] = row[ix]
                            out[2 * ix + 1] = row[ix]
                        }
                        (out + wo).update(from: out, count: wo)
                    }
                    return
                }
                for oy in 0..<ho {
                    let row = src + ys[oy] * w
                    for ox in 0..<wo { dst[oy * wo + ox] = row[xs[ox]] }
                }
            }
        case .bilinear:
            func source(_ o: Int, _ n: Int, _ outN: Int, _ s: Float) -> (Int, Int, Float) {
                let real: Float
                if u.alignCorners {
                    real = outN > 1 ? Float(o) * Float(n - 1) / Float(outN - 1) : 0
                } else {
                    real = max((Float(o) + 0.5) * s - 0.5, 0)
                }
                let i0 = min(Int(real.rounded(.down)), n - 1)
                let i1 = min(i0 + 1, n - 1)
                return (i0, i1, real - Float(i0))
            }
            let ys = (0..<ho).map { source($0, h, ho, sy) }
            let xs = (0..<wo).map { source($0, w, wo, sx) }
            pool.parallelFor(x.shape[0] * x.shape[1], elements: x.count + out.count) { plane in
                let src = xd + plane * h * w, dst = od + plane * ho * wo
                for oy in 0..<ho {
                    let (y0, y1, ly) = ys[oy]
                    for ox in 0..<wo {
                        let (x0, x1, lx) = xs[ox]
                        let top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx
                        let bottom = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx
                        dst[oy * wo + ox] = top * (1 - ly) + bottom * ly
                    }
                }
            }
        }
    }
}
