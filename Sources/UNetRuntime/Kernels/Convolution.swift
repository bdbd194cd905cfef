import UNetIR
import UNetPasses

/// A fused epilogue and the tensors its operand indices refer to.
struct EpilogueContext {
    var ops: [Epilogue]
    var operands: [Tensor]
}

/// conv2d and conv_transpose2d, lowered to GEMM tiles (im2col per tile of output pixels).
enum ConvolutionKernel {
    static let pixelsPerTile = GEMM.blockN

    static func conv2d(_ c: Conv2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext? = nil) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let g = c.groups
        let cinG = cin / g
        let coutG = cout / g
        if cinG == 1 && coutG == 1 {
            depthwise(c, x: x, weight: weight, bias: bias, out: out, pool: pool, epilogue: epilogue)
            return
        }
        let (kh, kw) = c.kernel
        let k = cinG * kh * kw
        let pixels = ho * wo
        let pointwise = kh == 1 && kw == 1 && c.stride == (1, 1) && c.pad == (0, 0)
        let chunks = (pixels + pixelsPerTile - 1) / pixelsPerTile
        let mBlocks = (coutG + GEMM.blockM - 1) / GEMM.blockM
        let xd = x.data, wd = weight.data, od = out.data, bd = bias?.data
        pool.parallelFor(n * g * chunks * mBlocks) { tile in
            var t = tile
            let mb = t % mBlocks; t /= mBlocks
            let chunk = t % chunks; t /= chunks
            let group = t % g
            let batch = t / g
            let p0 = chunk * pixelsPerTile
            let p1 = min(pixels, p0 + pixelsPerTile)
            let input = xd + (batch * cin + group * cinG) * h * w
            let a = MatrixView(wd + group * coutG * k, rowStride: k, columnStride: 1)
            let output = od + (batch * cout + group * coutG) * pixels
            let biasMode: GEMM.Bias = bd.map { .perRow(UnsafePointer($0 + group * coutG)) } ?? .none
            let m0 = mb * GEMM.blockM
            let m1 = min(coutG, m0 + GEMM.blockM)
            if pointwise {
                // The input already is the [K, pixels] matrix.
                GEMM.block(m0: m0, m1: m1, n0: p0, n1: p1, k: k, a: a, b: MatrixView(input, rowStride: h * w, columnStride: 1),
                           c: output, ldc: pixels, bias: biasMode, accumulate: false)
                if let e = epilogue {
                    EpilogueKernel.apply(e.ops, out: od, operands: e.operands, channels: cout, pixels: pixels, batch: batch,
                                         channelRange: (group * coutG + m0)..<(group * coutG + m1), pixelRange: p0..<p1)
                }
                return
            }
            let width = p1 - p0
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: k * width)
            defer { columns.deallocate() }
            for ci in 0..<cinG {
                let plane = input + ci * h * w
                for i in 0..<kh {
                    for j in 0..<kw {
                        let row = columns + ((ci * kh + i) * kw + j) * width
                        for p in p0..<p1 {
                            let oy = p / wo, ox = p % wo
                            let iy = oy * c.stride.0 - c.pad.0 + i * c.dilation.0
                            let ix = ox * c.stride.1 - c.pad.1 + j * c.dilation.1
                            row[p - p0] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? plane[iy * w + ix] : 0
                        }
                    }
                }
            }
            // Column block [p0, p1) of C starts at `output + p0`.
            GEMM.block(m0: m0, m1: m1, n0: 0, n1: width, k: k, a: a, b: MatrixView(columns, rowStride: width, columnStride: 1),
                       c: output + p0, ldc: pixels, bias: biasMode, accumulate: false)
            if let e = epilogue {
                EpilogueKernel.apply(e.ops, out: od, operands: e.operands, channels: cout, pixels: pixels, batch: batch,
                                     channelRange: (group * coutG + m0)..<(group * coutG + m1), pixelRange: p0..<p1)
            }
        }
    }

    /// One input channel per output channel: a direct loop is far cheaper than a 1-row GEMM.
    static func depthwise(_ c: Conv2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext?) {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (out.shape[2], out.shape[3])
        let (kh, kw) = c.kernel
        let xd = x.data, wd = weight.data, od = out.data, bd = bias?.data
        pool.parallelFor(n * ch) { plane in
            let channel = plane % ch
            let src = xd + plane * h * w
            let dst = od + plane * ho * wo
            let kernel = wd + channel * kh * kw
            let b = bd?[channel] ?? 0
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var sum: Float = 0
                    for i in 0..<kh {
                        let iy = oy * c.stride.0 - c.pad.0 + i * c.dilation.0
                        if iy < 0 || iy >= h { continue }
                        for j in 0..<kw {
                            let ix = ox * c.stride.1 - c.pad.1 + j * c.dilation.1
                            if ix < 0 || ix >= w { continue }
                            sum += kernel[i * kw + j] * src[iy * w + ix]
                        }
                    }
                    dst[oy * wo + ox] = sum + b
                }
            }
            if let e = epilogue {
                EpilogueKernel.apply(e.ops, out: od, operands: e.operands, channels: ch, pixels: ho * wo, batch: plane / ch,
                                     channelRange: channel..<(channel + 1), pixelRange: 0..<(ho * wo))
            }
        }
    }

    /// Transposed convolution: `cols = Wᵀ·X` by GEMM, then each output channel gathers its columns (col2im) in a fixed order.
    static func convTranspose2d(_ c: ConvTranspose2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let g = c.groups
        let cinG = cin / g, coutG = cout / g
        let (kh, kw) = c.kernel
        let rows = coutG * kh * kw
        let columns = Tensor(shape: [rows, h * w])
        let xd = x.data, wd = weight.data, od = out.data, bd = bias?.data, cd = columns.data
        for batch in 0..<n {
            for group in 0..<g {
                // A(m = (co, i, j), k = ci) = weight[group*cinG + ci, co, i, j].
                let a = MatrixView(wd + group * cinG * rows, rowStride: 1, columnStride: rows)
                let b = MatrixView(xd + (batch * cin + group * cinG) * h * w, rowStride: h * w, columnStride: 1)
                GEMM.multiply(m: rows, n: h * w, k: cinG, a: a, b: b, c: cd, ldc: h * w, pool: pool)
                pool.parallelFor(coutG) { co in
                    let dst = od + (batch * cout + group * coutG + co) * ho * wo
                    let b0 = bd?[group * coutG + co] ?? 0
                    for p in 0..<(ho * wo) { dst[p] = b0 }
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let src = cd + ((co * kh + i) * kw + j) * h * w
                            for iy in 0..<h {
                                let oy = iy * c.stride.0 - c.pad.0 + i * c.dilation.0
                                if oy < 0 || oy >= ho { continue }
                                for ix in 0..<w {
                                    let ox = ix * c.stride.1 - c.pad.1 + j * c.dilation.1
                                    if ox < 0 || ox >= wo { continue }
                                    dst[oy * wo + ox] += src[iy * w + ix]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
