import XCTest
@testable import UNetIR
@testable import UNetRuntime

/// Kernels against plain loops written straight from the definitions, on odd shapes.
final class KernelReferenceTests: XCTestCase {
    var rng = SplitMix64(seed: 42)
    let pool = ThreadPool(threads: 3)

    func random(_ shape: [Int]) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.nextNormal() }
        return t
    }

    func assertClose(_ a: Tensor, _ b: [Float], tolerance: Float = 1e-4, _ message: String = "", line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, line: line)
        var worst: Float = 0
        var scale: Float = 1e-6
        for i in 0..<min(a.count, b.count) {
            worst = max(worst, abs(a[i] - b[i]))
            scale = max(scale, abs(b[i]))
        }
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(message): max error \(worst) at scale \(scale)", line: line)
    }

    func referenceConv(_ c: Conv2D, _ x: Tensor, _ w: Tensor, _ b: Tensor?, outShape: [Int]) -> [Float] {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (outShape[1], outShape[2], outShape[3])
        let cinG = cin / c.groups, coutG = cout / c.groups
        var out = [Float](repeating: 0, count: n * cout * ho * wo)
        for b0 in 0..<n { for co in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
            var s: Double = Double(b?[co] ?? 0)
            let g = co / coutG
            for ci in 0..<cinG { for i in 0..<c.kernel.0 { for j in 0..<c.kernel.1 {
                let iy = oy * c.stride.0 - c.pad.0 + i * c.dilation.0
                let ix = ox * c.stride.1 - c.pad.1 + j * c.dilation.1
                if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
                s += Double(w[((co * cinG + ci) * c.kernel.0 + i) * c.kernel.1 + j]) * Double(x[((b0 * cin + g * cinG + ci) * h + iy) * wd + ix])
            } } }
            out[((b0 * cout + co) * ho + oy) * wo + ox] = Float(s)
        } } } }
        return out
    }

    func testConvolutionOnOddShapes() throws {
        let cases: [(Conv2D, [Int])] = [
            (Conv2D(out: 5, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [2, 3, 7, 9]),
            (Conv2D(out: 6, kernel: (3, 3), stride: (2, 2), pad: (1, 1), dilation: (1, 1), groups: 1, bias: false), [1, 4, 9, 7]),
            (Conv2D(out: 8, kernel: (3, 3), stride: (1, 1), pad: (2, 2), dilation: (2, 2), groups: 2, bias: true), [1, 6, 5, 6]),
            (Conv2D(out: 7, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 7, bias: true), [1, 7, 5, 5]),
            // Depthwise: wide rows (the one-pass 3-tap loop and its edges), stride 2, dilation 2, 5x5, 3x3 without padding.
            (Conv2D(out: 6, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 6, bias: true), [2, 6, 9, 37]),
            (Conv2D(out: 4, kernel: (3, 3), stride: (2, 2), pad: (1, 1), dilation: (1, 1), groups: 4, bias: false), [1, 4, 11, 19]),
            (Conv2D(out: 4, kernel: (3, 3), stride: (1, 1), pad: (2, 2), dilation: (2, 2), groups: 4, bias: true), [1, 4, 10, 21]),
            (Conv2D(out: 3, kernel: (5, 5), stride: (1, 1), pad: (2, 2), dilation: (1, 1), groups: 3, bias: true), [1, 3, 8, 23]),
            (Conv2D(out: 3, kernel: (3, 3), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 3, bias: true), [1, 3, 6, 3]),
            // 3x3 stride 1 depthwise in registers: rows narrower than a vector, exactly one vector, an overlapping
            // last vector, one input row, padding on one axis only.
            (Conv2D(out: 5, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 5, bias: true), [1, 5, 7, 16]),
            (Conv2D(out: 2, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 2, bias: false), [1, 2, 4, 18]),
            (Conv2D(out: 4, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 4, bias: true), [1, 4, 6, 40]),
            (Conv2D(out: 3, kernel: (3, 3), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 3, bias: true), [1, 3, 5, 33]),
            (Conv2D(out: 2, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 2, bias: true), [1, 2, 1, 50]),
            (Conv2D(out: 2, kernel: (3, 3), stride: (1, 1), pad: (0, 1), dilation: (1, 1), groups: 2, bias: true), [2, 2, 5, 20]),
            (Conv2D(out: 70, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: true), [1, 17, 11, 13]),
            // Maps of at most 16 pixels: output-channel panel pairs (12x16 kernel) with partial rows and a leftover panel,
            // im2col shared by the threads; a map narrower than the kernel.
            (Conv2D(out: 20, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 9, 4, 4]),
            (Conv2D(out: 15, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: false), [2, 7, 3, 5]),
            (Conv2D(out: 26, kernel: (3, 3), stride: (2, 2), pad: (1, 1), dilation: (1, 1), groups: 2, bias: true), [1, 8, 8, 8]),
            (Conv2D(out: 13, kernel: (5, 5), stride: (1, 1), pad: (2, 2), dilation: (1, 1), groups: 1, bias: true), [1, 4, 2, 3]),
            // Stride-1 rows narrower than a panel (the zero-bordered copy): chunks of 32 pixels that start
            // mid-row, dilation 2, padding on one axis, a 1x3 kernel wider than the padding.
            (Conv2D(out: 11, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 3, 30, 13]),
            (Conv2D(out: 9, kernel: (3, 3), stride: (1, 1), pad: (2, 2), dilation: (2, 2), groups: 1, bias: false), [1, 5, 6, 7]),
            (Conv2D(out: 8, kernel: (3, 3), stride: (1, 1), pad: (0, 1), dilation: (1, 1), groups: 1, bias: true), [2, 4, 9, 10]),
            (Conv2D(out: 6, kernel: (1, 3), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: true), [1, 6, 3, 12]),
            // 1x1 to at most 4 channels on a map of over 1024 pixels (a head): pixel blocks of 64, the tail one by one.
            (Conv2D(out: 2, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: true), [2, 5, 33, 35]),
            (Conv2D(out: 3, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: false), [1, 32, 32, 64]),
            // 1x1 through the packing microkernel: whole panels read in place and packed by the first row
            // panel, a partial last panel, partial row panels, batches and groups.
            (Conv2D(out: 13, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: true), [2, 40, 37, 41]),
            (Conv2D(out: 10, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 2, bias: false), [1, 16, 20, 30]),
            // A long K over two pixel panels (im2col larger than L2): B panels outermost, the weight panels streaming past.
            (Conv2D(out: 8, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 300, 7, 9]),
            // Rows of at least a panel: the run-by-run im2col (stride 1 and 2, runs crossing panels and edges).
            (Conv2D(out: 7, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 3, 5, 40]),
            (Conv2D(out: 5, kernel: (3, 3), stride: (2, 2), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 2, 6, 70]),
            (Conv2D(out: 3, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true), [1, 130, 1, 1]),
            (Conv2D(out: 4, kernel: (2, 3), stride: (2, 1), pad: (0, 1), dilation: (1, 1), groups: 1, bias: true), [1, 3, 5, 5]),
        ]
        for (c, shape) in cases {
            let op = Op.conv2d(c)
            let outShape = try OpSemantics.outputShape(of: op, inputs: [shape])
            let x = random(shape)
            let w = random([c.out, shape[1] / c.groups, c.kernel.0, c.kernel.1])
            let b = c.bias ? random([c.out]) : nil
            let out = Tensor(shape: outShape)
            ConvolutionKernel.conv2d(c, x: x, weight: w, bias: b, out: out, pool: pool)
            assertClose(out, referenceConv(c, x, w, b, outShape: outShape), "\(c) on \(shape)")
        }
    }

    func testTransposedConvolution() throws {
        for (c, shape) in [
            (ConvTranspose2D(out: 5, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1, bias: true), [1, 3, 3, 5]),
            // Kernel equal to stride (the tiled path): channel tiles past one panel, pixel runs crossing rows, groups, 3x3/3, 2x1/2x1.
            (ConvTranspose2D(out: 13, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1, bias: true), [2, 7, 9, 31]),
            (ConvTranspose2D(out: 6, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 3, bias: true), [1, 9, 5, 6]),
            // Two chunks of the tiled path (input runs read in place by the packing microkernel, a partial last panel).
            (ConvTranspose2D(out: 20, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1, bias: true), [1, 8, 24, 41]),
            (ConvTranspose2D(out: 4, kernel: (3, 3), stride: (3, 3), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1, bias: false), [1, 5, 4, 7]),
            (ConvTranspose2D(out: 3, kernel: (2, 1), stride: (2, 1), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1, bias: true), [1, 4, 6, 5]),
            (ConvTranspose2D(out: 4, kernel: (3, 3), stride: (2, 2), pad: (1, 1), outputPadding: (1, 1), dilation: (1, 1), groups: 2, bias: false), [2, 6, 4, 3]),
        ] {
            let outShape = try OpSemantics.outputShape(of: .convTranspose2d(c), inputs: [shape])
            let x = random(shape)
            let cinG = shape[1] / c.groups, coutG = c.out / c.groups
            let w = random([shape[1], coutG, c.kernel.0, c.kernel.1])
            let b = c.bias ? random([c.out]) : nil
            let out = Tensor(shape: outShape)
            ConvolutionKernel.convTranspose2d(c, x: x, weight: w, bias: b, out: out, pool: pool)
            var ref = [Float](repeating: 0, count: out.count)
            let (ho, wo) = (outShape[2], outShape[3])
            for n in 0..<shape[0] { for co in 0..<c.out { for p in 0..<(ho * wo) { ref[(n * c.out + co) * ho * wo + p] = b?[co] ?? 0 } } }
            for n in 0..<shape[0] { for ci in 0..<shape[1] { for iy in 0..<shape[2] { for ix in 0..<shape[3] {
                let g = ci / cinG
                for cc in 0..<coutG { for i in 0..<c.kernel.0 { for j in 0..<c.kernel.1 {
                    let oy = iy * c.stride.0 - c.pad.0 + i, ox = ix * c.stride.1 - c.pad.1 + j
                    if oy < 0 || oy >= ho || ox < 0 || ox >= wo { continue }
                    let co = g * coutG + cc
                    ref[((n * c.out + co) * ho + oy) * wo + ox] += w[((ci * coutG + cc) * c.kernel.0 + i) * c.kernel.1 + j] * x[((n * shape[1] + ci) * shape[2] + iy) * shape[3] + ix]
                } } }
            } } } }
            assertClose(out, ref, "\(c)")
        }
    }

    func testGEMMEdgesAndStrides() {
        for (m, n, k) in [(1, 1, 1), (5, 17, 3), (67, 129, 31), (4, 16, 0)] {
            let a = random([m, max(k, 1)]), b = random([max(k, 1), n])
            let c = Tensor(shape: [m, n])
            // B read transposed through strides: B(k, n) = bt[n, k].
            let bt = Tensor(shape: [n, max(k, 1)])
            for i in 0..<max(k, 1) { for j in 0..<n { bt[j * max(k, 1) + i] = b[i * n + j] } }
            GEMM.multiply(m: m, n: n, k: k, a: MatrixView(a.data, rowStride: max(k, 1), columnStride: 1),
                          b: MatrixView(bt.data, rowStride: 1, columnStride: max(k, 1)), c: c.data, ldc: n, pool: pool)
            var ref = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for l in 0..<k { ref[i * n + j] += a[i * max(k, 1) + l] * b[l * n + j] } } }
            assertClose(c, ref, "\(m)x\(n)x\(k)")
            // A read transposed too (a token-major view of a feature map): A(m, k) = at[k, m].
            let at = Tensor(shape: [max(k, 1), m])
            for i in 0..<m { for l in 0..<max(k, 1) { at[l * m + i] = a[i * max(k, 1) + l] } }
            let c2 = Tensor(shape: [m, n])
            GEMM.multiply(m: m, n: n, k: k, a: MatrixView(at.data, rowStride: 1, columnStride: m),
                          b: MatrixView(bt.data, rowStride: 1, columnStride: max(k, 1)), c: c2.data, ldc: n, pool: pool)
            assertClose(c2, ref, "transposed A \(m)x\(n)x\(k)")
        }
    }

    func testMaxPoolHalvingAgainstNaive() {
        // Rows of whole vectors and a tail, an odd height (the last row is dropped), NaN and -inf
        // in windows: the vector path keeps the general loop's rule `m = v >= m ? v : m` from -inf.
        for shape in [[1, 2, 5, 70], [2, 1, 4, 32], [1, 1, 3, 3]] {
            let x = random(shape)
            x[3] = .nan
            x[min(shape[3] + 7, x.count - 1)] = -.infinity
            let (h, w) = (shape[2], shape[3]), (ho, wo) = (h / 2, w / 2)
            let out = Tensor(shape: [shape[0], shape[1], ho, wo])
            ResamplingKernel.pool2d(Pool2D(kind: .max, kernel: (2, 2), stride: (2, 2), pad: (0, 0), ceilMode: false), x: x, out: out, pool: pool)
            for plane in 0..<(shape[0] * shape[1]) { for oy in 0..<ho { for ox in 0..<wo {
                var m = -Float.infinity
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let v = x[plane * h * w + (2 * oy + dy) * w + 2 * ox + dx]
                    if v >= m { m = v }
                }
                let got = out[(plane * ho + oy) * wo + ox]
                XCTAssertTrue(got == m || got.isNaN && m.isNaN, "\(shape) plane \(plane) (\(oy), \(ox)): \(got) vs \(m)")
            } } }
        }
    }


    func testZeroPaddingRowsAgainstNaive() {
        // The row-copy path of zero padding: asymmetric, negative (cropping) and all-fill rows and columns.
        let cases: [(Pad, [Int])] = [
            (Pad(left: 0, right: 1, top: 0, bottom: 1, mode: .zero, value: 0), [1, 3, 5, 7]),
            (Pad(left: 2, right: 3, top: 1, bottom: 2, mode: .zero, value: -1.5), [2, 2, 4, 3]),
            (Pad(left: -1, right: 2, top: -2, bottom: 1, mode: .zero, value: 0.25), [1, 2, 6, 5]),
            (Pad(left: -6, right: 7, top: 0, bottom: 0, mode: .zero, value: 3), [1, 1, 2, 5]),
        ]
        for (p, shape) in cases {
            let x = random(shape)
            let (h, w) = (shape[2], shape[3]), (ho, wo) = (h + p.top + p.bottom, w + p.left + p.right)
            let out = Tensor(shape: [shape[0], shape[1], ho, wo])
            LayoutKernel.pad(p, x: x, out: out, pool: pool)
            for plane in 0..<(shape[0] * shape[1]) { for oy in 0..<ho { for ox in 0..<wo {
                let (iy, ix) = (oy - p.top, ox - p.left)
                let expected = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(plane * h + iy) * w + ix] : Float(p.value)
                XCTAssertEqual(out[(plane * ho + oy) * wo + ox], expected, "\(p) \(shape) plane \(plane) (\(oy), \(ox))")
            } } }
        }
    }
    func testBilinearBothAlignModesAndNearest() {
        let x = random([1, 2, 3, 5])
        for align in [false, true] {
            let u = Upsample(mode: .bilinear, target: .size(7, 4), alignCorners: align)
            let out = Tensor(shape: [1, 2, 7, 4])
            ResamplingKernel.upsample(u, x: x, out: out, pool: pool)
            var ref: [Float] = []
            func src(_ o: Int, _ inN: Int, _ outN: Int) -> Double {
                align ? (outN > 1 ? Double(o) * Double(inN - 1) / Double(outN - 1) : 0) : max((Double(o) + 0.5) * Double(inN) / Double(outN) - 0.5, 0)
            }
            for c in 0..<2 { for oy in 0..<7 { for ox in 0..<4 {
                let sy = src(oy, 3, 7), sx = src(ox, 5, 4)
                let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, 2), x1 = min(x0 + 1, 4)
                let ly = sy - Double(y0), lx = sx - Double(x0)
                func v(_ y: Int, _ xx: Int) -> Double { Double(x[(c * 3 + y) * 5 + xx]) }
                ref.append(Float((v(y0, x0) * (1 - lx) + v(y0, x1) * lx) * (1 - ly) + (v(y1, x0) * (1 - lx) + v(y1, x1) * lx) * ly))
            } } }
            assertClose(out, ref, "align_corners \(align)")
        }
        let nearest = Tensor(shape: [1, 2, 6, 10])
        ResamplingKernel.upsample(Upsample(mode: .nearest, target: .scale(2, 2), alignCorners: false), x: x, out: nearest, pool: pool)
        // Every pixel, for the 2x fast path and the general index path (3x, and a size that is not a multiple).
        for (oh, ow) in [(6, 10), (9, 15), (7, 8)] {
            let up = Tensor(shape: [1, 2, oh, ow])
            let target: Upsample.Target = oh == 7 ? .size(7, 8) : .scale(oh / 3, ow / 5)
            ResamplingKernel.upsample(Upsample(mode: .nearest, target: target, alignCorners: false), x: x, out: up, pool: pool)
            for c in 0..<2 { for oy in 0..<oh { for ox in 0..<ow {
                let sy = min(Int(Float(oy) * (oh == 7 ? 3 / 7 : 1 / Float(oh / 3))), 2)
                let sx = min(Int(Float(ox) * (oh == 7 ? 5 / 8 : 1 / Float(ow / 5))), 4)
                XCTAssertEqual(up[(c * oh + oy) * ow + ox], x[(c * 3 + sy) * 5 + sx], "\(oh)x\(ow) at \(c), \(oy), \(ox)")
            } } }
        }
    }

    func testAttentionAgainstNaive() {
        for (tokens, keys, channels, heads, context) in [(19, 19, 8, 2, false), (5, 7, 6, 3, true), (1, 1, 4, 1, false)] {
            let a = Attention(heads: heads, headDim: nil, qkvBias: true, outBias: true)
            let ctxChannels = context ? 5 : channels
            let x = random([1, tokens, channels])
            let c = context ? random([1, keys, ctxChannels]) : nil
            let (wq, bq, wk, bk, wv, bv, wo, bo) = (random([channels, channels]), random([channels]), random([channels, ctxChannels]), random([channels]),
                                                    random([channels, ctxChannels]), random([channels]), random([channels, channels]), random([channels]))
            let out = Tensor(shape: [1, tokens, channels])
            AttentionKernel.run(a, x: x, context: c, weights: (wq, bq, wk, bk, wv, bv, wo, bo), out: out, pool: pool)
            let src = c ?? x
            let m = context ? keys : tokens
            func proj(_ t: Tensor, _ rows: Int, _ width: Int, _ w: Tensor, _ b: Tensor) -> [[Double]] {
                (0..<rows).map { r in (0..<channels).map { o in (0..<width).reduce(Double(b[o])) { $0 + Double(t[r * width + $1]) * Double(w[o * width + $1]) } } }
            }
            let q = proj(x, tokens, channels, wq, bq), k = proj(src, m, ctxChannels, wk, bk), v = proj(src, m, ctxChannels, wv, bv)
            let hd = channels / heads
            var attended = [[Double]](repeating: [Double](repeating: 0, count: channels), count: tokens)
            for h in 0..<heads { for t in 0..<tokens {
                let s = (0..<m).map { j in (0..<hd).reduce(0.0) { $0 + q[t][h * hd + $1] * k[j][h * hd + $1] } / Double(hd).squareRoot() }
                let mx = s.max() ?? 0
                let e = s.map { exp($0 - mx) }
                let z = e.reduce(0, +)
                for d in 0..<hd { attended[t][h * hd + d] = (0..<m).reduce(0.0) { $0 + e[$1] / z * v[$1][h * hd + d] } }
            } }
            var ref: [Float] = []
            for t in 0..<tokens { for o in 0..<channels { ref.append(Float((0..<channels).reduce(Double(bo[o])) { $0 + attended[t][$1] * Double(wo[o * channels + $1]) })) } }
            assertClose(out, ref, "attention \(tokens)x\(keys) heads \(heads)")
        }
    }

    /// Self-attention on a feature map through packed 1x1 projections and key-major scores, against
    /// the general path (checked against the naive loops above): partial query and key tiles, two
    /// images, a head size that does not divide the channels, no biases, a 1x1 map, and the fused
    /// residual add. Outputs must not depend on the thread count.
    func testSpatialAttentionAgainstGeneralPath() {
        for (shape, heads, headDim, biased) in [([2, 8, 5, 7], 2, nil, true), ([1, 12, 9, 9], 3, 5, true), ([1, 6, 4, 4], 1, nil, false),
                                                ([1, 4, 1, 1], 1, nil, true)] as [([Int], Int, Int?, Bool)] {
            let a = Attention(heads: heads, headDim: headDim, qkvBias: biased, outBias: biased)
            let channels = shape[1], inner = heads * (headDim ?? channels / heads), tokens = shape[2] * shape[3]
            let x = random(shape), residual = random(shape)
            let w = (q: random([inner, channels]), qb: biased ? random([inner]) : nil, k: random([inner, channels]), kb: biased ? random([inner]) : nil,
                     v: random([inner, channels]), vb: biased ? random([inner]) : nil, o: random([channels, inner]), ob: biased ? random([channels]) : nil)
            let general = Tensor(shape: shape), generalMaps = Tensor(shape: [shape[0], heads, tokens, tokens])
            AttentionKernel.run(a, x: x, context: nil, weights: w, out: general, pool: pool, probabilities: generalMaps)
            let projections = AttentionKernel.PackedProjections(a, channels: channels, weights: w)
            var outputs: [Tensor] = []
            for threads in [1, 2, 3] {
                let out = Tensor(shape: shape), maps = Tensor(shape: generalMaps.shape)
                let epilogue = EpilogueContext(ops: [.add(operand: 1)], operands: [x, residual], statistics: nil)
                AttentionKernel.runSpatial(a, x: x, projections: projections, out: out, pool: ThreadPool(threads: threads),
                                           epilogue: epilogue, probabilities: maps)
                assertClose(maps, generalMaps.values, tolerance: 1e-5, "attention maps \(shape) heads \(heads)")
                outputs.append(out)
            }
            assertClose(outputs[0], (0..<general.count).map { general[$0] + residual[$0] }, tolerance: 1e-5, "spatial attention \(shape) heads \(heads)")
            for k in 1..<outputs.count {
                XCTAssertEqual(outputs[0].values.map(\.bitPattern), outputs[k].values.map(\.bitPattern), "\(shape): 1 and \(k + 1) threads differ")
            }
        }
    }

    func testGroupNormAndLayerNorm() {
        let x = random([2, 6, 3, 5])
        let w = random([6]), b = random([6])
        let out = Tensor(shape: x.shape)
        NormalizationKernel.groupNorm(groups: 3, eps: 1e-5, x: x, weight: w, bias: b, out: out, pool: pool)
        var ref: [Float] = []
        for n in 0..<2 { for c in 0..<6 {
            let g = c / 2
            let vals = (0..<(2 * 15)).map { Double(x[(n * 6 + g * 2) * 15 + $0]) }
            let mean = vals.reduce(0, +) / 30
            let variance = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 30
            for p in 0..<15 { ref.append(Float((Double(x[(n * 6 + c) * 15 + p]) - mean) / (variance + 1e-5).squareRoot() * Double(w[c]) + Double(b[c]))) }
        } }
        assertClose(out, ref, "group_norm")
    }
}
