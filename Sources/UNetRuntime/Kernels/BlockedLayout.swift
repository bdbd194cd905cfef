import UNetKernelsAVX512
import UNetKernelsAVX2
import UNetIR
import UNetPasses

/// Steps in the channel-blocked layout NCHW16c (`BlockedLayoutSelection`): 1x1, 3x3 depthwise and
/// small-map 3x3 convolutions (and a depthwise one computed by its 1x1 reader,
/// `DepthwisePointwiseFusion`), 2x2 stride-2 transposed convolutions, 2x2 max pooling, nearest 2x
/// upsampling, and the reorders at a region's edges (Winograd ones: `BlockedWinogradConvolution`;
/// GroupNorm: `groupNormBlocked`; epilogues: `EpilogueKernel.applyBlocked`; padding:
/// `LayoutKernel.pad`; self-attention: `AttentionKernel.runSpatialBlocked`).
/// Every kernel splits its work over output pixels and blocks only, so results do not depend on
/// the thread count. AVX-512 or AVX2 (each with its own kernels: the AVX2 ones keep to 16
/// registers): the compiler selects the layout only where `available`, and plans that use it are
/// refused elsewhere.
enum BlockedLayoutKernel {
    static var available: Bool { GEMM.avx512 || GEMM.avx2 }

    /// Pixels of the 1x1 kernel's tiles.
    static var tilePixels: Int { GEMM.avx512 ? PointwiseBlockedAVX512.tilePixels : PointwiseBlockedAVX2.tilePixels }

    // The kernels of this machine's ISA.

    static func pointwise(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          dst: UnsafeMutablePointer<Float>, outputPlane: Int? = nil, outputBlocks: Range<Int>, pixels: Range<Int>,
                          lower: Float, upper: Float, ahead: UNetKernelsAVX512.BlockedRowPrefetch? = nil) {
        if GEMM.avx512 {
            PointwiseBlockedAVX512.run(src: src, inputBlocks: inputBlocks, plane: plane, weight: weight, bias: bias, dst: dst, outputPlane: outputPlane,
                                       outputBlocks: outputBlocks, pixels: pixels, lower: lower, upper: upper, ahead: ahead)
        } else {
            PointwiseBlockedAVX2.run(src: src, inputBlocks: inputBlocks, plane: plane, weight: weight, bias: bias, dst: dst, outputPlane: outputPlane,
                                     outputBlocks: outputBlocks, pixels: pixels, lower: lower, upper: upper,
                                     ahead: ahead.map { .init(base: $0.base, blockStride: $0.blockStride, lines: $0.lines, blocks: $0.blocks) })
        }
    }

    static func depthwiseRows(src: UnsafePointer<Float>, h: Int, w: Int, dst: UnsafeMutablePointer<Float>, dstFirstRow: Int = 0,
                              kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Range<Int>, lower: Float, upper: Float) {
        if GEMM.avx512 {
            DepthwiseBlockedAVX512.rows(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, rows: rows,
                                        lower: lower, upper: upper)
        } else {
            DepthwiseBlockedAVX2.rows(src: src, h: h, w: w, dst: dst, dstFirstRow: dstFirstRow, kernel: kernel, bias: bias, rows: rows,
                                      lower: lower, upper: upper)
        }
    }

    /// The tasks of a step run by the 1x1 kernel: pixel chunks whose input (all channels) stays in
    /// L2 while every output unit (block pair, or block) reads it, times groups of units when there
    /// are too few chunks for the threads.
    struct PointwiseTasks {
        let chunk, chunks, groups, unitsPerGroup, units, plane: Int
        let count: Int

        init(images: Int, inputChannels cin: Int, plane: Int, units: Int, threads: Int) {
            let tile = tilePixels
            chunk = max(tile, 32 * 1024 / cin / tile * tile)
            chunks = (plane + chunk - 1) / chunk
            let wanted = threads == 1 ? 1 : 4 * threads
            groups = max(1, min(units, (wanted + images * chunks - 1) / (images * chunks)))
            unitsPerGroup = (units + groups - 1) / groups
            (self.units, self.plane) = (units, plane)
            count = images * chunks * groups
        }

        /// Task `t`'s image, pixels and units (empty for a group past the last unit).
        func task(_ t: Int) -> (batch: Int, pixels: Range<Int>, units: Range<Int>) {
            let group = t % groups, rest = t / groups
            let p0 = rest % chunks * chunk, first = min(units, group * unitsPerGroup)
            return (rest / chunks, p0..<min(plane, p0 + chunk), first..<min(units, first + unitsPerGroup))
        }
    }

    /// Whether a blocked convolution runs by `im2colConv3x3` (a 3x3 on blocked channels), whose
    /// filters `Weights` stores tap-major.
    static func runsIm2col(_ c: Conv2D, inputChannels: Int) -> Bool {
        c.groups == 1 && c.kernel == (3, 3) && inputChannels % 16 == 0
    }

    /// Parts to split each of `blocks` channel blocks of `pixels` pixels into so the threads have
    /// about four tasks each, in runs of whole `granule`s (statistics blocks, 16-pixel tiles): the
    /// part count and the pixels per part.
    static func pixelParts(blocks: Int, pixels: Int, granule: Int, threads: Int) -> (parts: Int, perPart: Int) {
        let wanted = threads == 1 ? 1 : 4 * threads
        let parts = max(1, min((pixels + granule - 1) / granule, (wanted + blocks - 1) / blocks))
        return (parts, ((pixels + parts - 1) / parts + granule - 1) / granule * granule)
    }

    /// `run = run * scale + shift` (or from `src`) over `pixels` pixels of one block: 16 scales and
    /// 16 shifts, the kernel of this machine's ISA.
    static func scaleShift(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, pixels: Int, scale: UnsafePointer<Float>,
                           shift: UnsafePointer<Float>) {
        if GEMM.avx512 {
            UNetKernelsAVX512.ActivationLoops.scaleShiftBlocked(src, dst, pixels: pixels, scale: scale, shift: shift)
        } else {
            UNetKernelsAVX2.ActivationLoops.scaleShiftBlocked(src, dst, pixels: pixels, scale: scale, shift: shift)
        }
    }

    /// A blocked convolution's filters: 1x1 and 3x3 from a plain input as `[outputBlock][cin * taps][16]`,
    /// 3x3 from a blocked input (by im2col) tap-major as `[outputBlock][taps * cin][16]`, depthwise
    /// as `[block][9][16]`.
    final class Weights: @unchecked Sendable {
        let storage: Tensor
        var data: UnsafePointer<Float> { UnsafePointer(storage.data) }

        /// Filters already in this order (`WeightLayout.blocked`, from a plan), viewed without a copy.
        init(prepared: Tensor) { storage = prepared }

        init(_ c: Conv2D, weight: Tensor, inputChannels: Int) {
            let blocks = c.out / 16
            let taps = c.kernel.0 * c.kernel.1
            let k = c.groups == 1 ? inputChannels * taps : 9
            let tapMajor = runsIm2col(c, inputChannels: inputChannels)
            storage = Tensor(shape: [max(1, c.out * k)])
            let src = weight.data, dst = storage.data
            for b in 0..<blocks {
                for kk in 0..<k {
                    // Row kk of the kernel's K: tap-major rows hold channel kk % cin at tap kk / cin.
                    let source = tapMajor ? kk % inputChannels * taps + kk / inputChannels : kk
                    for lane in 0..<16 { dst[(b * k + kk) * 16 + lane] = src[(16 * b + lane) * k + source] }
                }
            }
        }
    }

    /// The clamp bounds of an epilogue the kernels fuse (nothing, or one ReLU, ReLU6 or clamp);
    /// nil for any other, which the executor then applies to the whole output.
    static func fusedBounds(_ epilogue: EpilogueContext?) -> (Float, Float)? {
        Epilogue.clampBounds(epilogue?.ops ?? []).map { ($0.lower, $0.upper) }
    }

    /// Runs a blocked convolution; returns true when it applied the epilogue itself. With
    /// `prologue` (a 3x3 that runs by im2col only, `NormConvolutionFusion`), `x` is the norm's
    /// input, normalised as the im2col copies it (the statistics: its producer's, or nil); with
    /// `upsampled` (the same, `UpsampleConvolutionFusion`), `x` is a nearest 2x upsampling's input.
    static func conv2d(_ c: Conv2D, x: Tensor, weights: Weights, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext?,
                       prologue: (NormalizationKernel.FusedNorm, UnsafeMutablePointer<Float>?)? = nil, upsampled: Bool = false) -> Bool {
        let bounds = fusedBounds(epilogue)
        let (lower, upper) = bounds ?? (-.infinity, .infinity)
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = out.shape[1], plane = h * w
        let xd = UnsafePointer(x.data), od = out.data, wd = weights.data, bd = bias.map { UnsafePointer($0.data) }
        if runsIm2col(c, inputChannels: cin) {
            im2colConv3x3(c, x: x, weights: weights, bias: bias, out: out, pool: pool, lower: lower, upper: upper, prologue: prologue,
                          upsampled: upsampled)
        } else if c.groups == 1 && c.kernel == (3, 3) {
            // From a plain image: row ranges and output block pairs split over the threads.
            let pairs = (cout / 16 + 1) / 2
            let wanted = pool.threads == 1 ? 1 : 4 * pool.threads
            let parts = max(1, min(h, (wanted + n * pairs - 1) / (n * pairs)))
            let rowsPerPart = (h + parts - 1) / parts
            pool.parallelFor(n * pairs * parts) { task in
                let part = task % parts, pair = task / parts % pairs, batch = task / (parts * pairs)
                guard part * rowsPerPart < h else { return }
                let (src, dst) = (xd + batch * cin * plane, od + batch * cout * plane)
                let (blocks, rows) = ((2 * pair)..<min(cout / 16, 2 * pair + 2), (part * rowsPerPart)..<min(h, (part + 1) * rowsPerPart))
                if GEMM.avx512 {
                    DirectBlockedAVX512.conv3x3(src: src, cin: cin, h: h, w: w, weight: wd, bias: bd, dst: dst, outputBlocks: blocks, rows: rows,
                                                lower: lower, upper: upper)
                } else {
                    DirectBlockedAVX2.conv3x3(src: src, cin: cin, h: h, w: w, weight: wd, bias: bd, dst: dst, outputBlocks: blocks, rows: rows,
                                              lower: lower, upper: upper)
                }
            }
        } else if c.groups == 1 {
            let tasks = PointwiseTasks(images: n, inputChannels: cin, plane: plane, units: (cout / 16 + 1) / 2, threads: pool.threads)
            pool.parallelFor(tasks.count) { task in
                let (batch, pixels, pairs) = tasks.task(task)
                let first = 2 * pairs.lowerBound, last = min(cout / 16, 2 * pairs.upperBound)
                guard first < last else { return }
                pointwise(src: xd + batch * cin * plane, inputBlocks: cin / 16, plane: plane, weight: wd, bias: bd,
                                           dst: od + batch * cout * plane, outputBlocks: first..<last, pixels: pixels,
                                           lower: lower, upper: upper)
            }
        } else {
            let blocks = n * cout / 16
            let wanted = pool.threads == 1 ? 1 : 4 * pool.threads
            let parts = max(1, min(h, (wanted + blocks - 1) / blocks))
            let rowsPerPart = (h + parts - 1) / parts
            pool.parallelFor(blocks * parts, elements: x.count + out.count) { task in
                let block = task / parts, part = task % parts
                guard part * rowsPerPart < h else { return }
                let rows = (part * rowsPerPart)..<min(h, (part + 1) * rowsPerPart)
                let b = block % (cout / 16)
                depthwiseRows(src: xd + block * 16 * plane, h: h, w: w, dst: od + block * 16 * plane, kernel: wd + b * 9 * 16,
                                            bias: bd.map { $0 + 16 * b }, rows: rows, lower: lower, upper: upper)
            }
        }
        return bounds != nil
    }

    /// A 3x3 convolution (any stride and padding) of a blocked input on a small map: the threads
    /// build its im2col once, then split the output block pairs of the 1x1 kernel run on it with
    /// `K = 9 cin`. Its rows are tap-major (row `tap * cin + ci`, the order of `Weights`), so a
    /// block of 16 rows is one input block's 16 channels at one tap, copied a pixel (a vector) at a
    /// time; the plain layout's GEMM sums the same products channel-major, so the two layouts agree
    /// to rounding here, not bit for bit. The im2col is stored tile by tile of the 1x1 kernel's
    /// pixels (`[tile][row block][tilePixels][16]`): a tile's operand is one sequential stream,
    /// where whole-map rows a map's distance apart (4 KB at 8x8) would all fall in the same few L1
    /// sets. Both made the 8x8 convolutions of 512 channels of a diffusion UNet twice as fast.
    ///
    /// With `prologue`, each input block is normalised and activated once into the thread's
    /// scratch, and its nine taps are copied from there; the padding stays zero, as it is outside
    /// the normalised map. With `upsampled`, the convolution's input is `x` upsampled 2x (nearest):
    /// a tap at (y, x) of that map reads `x` at (y / 2, x / 2).
    static func im2colConv3x3(_ c: Conv2D, x: Tensor, weights: Weights, bias: Tensor?, out: Tensor, pool: ThreadPool, lower: Float, upper: Float,
                              prologue: (NormalizationKernel.FusedNorm, UnsafeMutablePointer<Float>?)? = nil, upsampled: Bool = false) {
        let (n, cin) = (x.shape[0], x.shape[1])
        let shift = upsampled ? 1 : 0
        // The convolution's input map; `x` is (h >> shift) x (w >> shift).
        let (h, w) = (x.shape[2] << shift, x.shape[3] << shift)
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let plane = ho * wo, inputPlane = x.shape[2] * x.shape[3], rowBlocks = cin * 9 / 16
        let xd = UnsafePointer(x.data), od = out.data, wd = weights.data, bd = bias.map { UnsafePointer($0.data) }
        let tile = tilePixels, tiles = (plane + tile - 1) / tile
        let imageColumns = tiles * rowBlocks * tile * 16
        let columns = pool.scratch[0].region(7, count: n * imageColumns)
        let inputBlocks = cin / 16
        /// Copies input block `block` (its `inputPlane` pixels at `src`) at tap `tap` into its rows.
        func copyTap(_ src: UnsafeRawPointer, batch: Int, tap: Int, block: Int) {
            let (dy, dx) = (tap / 3 - c.pad.0, tap % 3 - c.pad.1)
            let base = UnsafeMutableRawPointer(columns + batch * imageColumns + (tap * inputBlocks + block) * tile * 16)
            var (t, q) = (0, 0)
            for y in 0..<ho {
                let sy = y * c.stride.0 + dy
                for px in 0..<wo {
                    let sx = px * c.stride.1 + dx
                    let inside = UInt(bitPattern: sy) < UInt(h) && UInt(bitPattern: sx) < UInt(w)
                    let v = inside ? src.loadUnaligned(fromByteOffset: ((sy >> shift) * (w >> shift) + (sx >> shift)) * 64, as: SIMD16<Float>.self)
                                   : SIMD16<Float>()
                    base.storeBytes(of: v, toByteOffset: (t * rowBlocks * tile + q) * 64, as: SIMD16<Float>.self)
                    q += 1
                    if q == tile { (t, q) = (t + 1, 0) }
                }
            }
        }
        if let (norm, statistics) = prologue {
            let affine = norm.affine(x: x, pool: pool, statistics: statistics)
            let ad = UnsafePointer(affine.data)
            pool.parallelFor(n * inputBlocks, withScratch: { task, scratch in
                let normalised = scratch.region(8, count: inputPlane * 16)
                norm.apply(xd + task * inputPlane * 16, normalised, pixels: inputPlane, affine: ad, block: task)
                for tap in 0..<9 { copyTap(UnsafeRawPointer(normalised), batch: task / inputBlocks, tap: tap, block: task % inputBlocks) }
            })
            withExtendedLifetime(affine) {}
        } else {
            pool.parallelFor(n * rowBlocks, elements: n * rowBlocks * plane * 16) { task in
                let batch = task / rowBlocks, rowBlock = task % rowBlocks
                let (tap, block) = (rowBlock / inputBlocks, rowBlock % inputBlocks)
                copyTap(UnsafeRawPointer(xd + (batch * inputBlocks + block) * inputPlane * 16), batch: batch, tap: tap, block: block)
            }
        }
        let pairs = (cout / 16 + 1) / 2
        let parts = pool.threads == 1 ? 1 : min(pairs, 2 * pool.threads)
        pool.parallelFor(n * parts) { task in
            let batch = task / parts, part = task % parts
            let first = part * pairs / parts * 2, last = min(cout / 16, (part + 1) * pairs / parts * 2)
            guard first < last else { return }
            // A block pair's filters stay in L2 while every tile streams past them.
            for ob in stride(from: first, to: last, by: 2) {
                for t in 0..<tiles {
                    pointwise(src: columns + batch * imageColumns + t * rowBlocks * tile * 16, inputBlocks: rowBlocks, plane: tile,
                              weight: wd, bias: bd, dst: od + batch * cout * plane + t * tile * 16, outputPlane: plane,
                              outputBlocks: ob..<min(last, ob + 2), pixels: 0..<min(tile, plane - t * tile), lower: lower, upper: upper)
                }
            }
        }
    }

    /// Rows of depthwise output the fused kernel computes at a time: three make a band of a multiple
    /// of 12 pixels (whole 1x1 tiles) on any width divisible by 4.
    static let fusedBandRows = 3

    /// A depthwise step's part in a fused step (`DepthwisePointwiseFusion`).
    struct Depthwise {
        let weights: Weights
        let bias: Tensor?
        let lower: Float, upper: Float
    }

    /// A blocked 1x1 convolution of the 3x3 depthwise convolution of `x`, without the depthwise
    /// output: three rows of it at a time (all channels) go to the thread's scratch, where the 1x1
    /// tiles read them while they prefetch the input rows of the next band. Each output pixel is
    /// summed as by the two steps apart, so the result is bit-identical. Returns true when it
    /// applied the 1x1's epilogue itself.
    static func depthwisePointwise(_ depthwise: Depthwise, x: Tensor, weights: Weights, bias: Tensor?, out: Tensor, pool: ThreadPool,
                                   epilogue: EpilogueContext?) -> Bool {
        let bounds = fusedBounds(epilogue)
        let (lower, upper) = bounds ?? (-.infinity, .infinity)
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = out.shape[1], plane = h * w, blocks = cin / 16
        let xd = UnsafePointer(x.data), od = out.data, wd = weights.data, bd = bias.map { UnsafePointer($0.data) }
        let dwd = depthwise.weights.data, dwb = depthwise.bias.map { UnsafePointer($0.data) }
        let rows = fusedBandRows, bands = (h + rows - 1) / rows
        let wanted = pool.threads == 1 ? 1 : 4 * pool.threads
        let parts = max(1, min(bands, (wanted + n - 1) / n))
        let bandsPerPart = (bands + parts - 1) / parts
        pool.parallelFor(n * parts, withScratch: { task, scratch in
            let batch = task / parts, part = task % parts
            let first = part * bandsPerPart, last = min(bands, first + bandsPerPart)
            guard first < last else { return }
            let src = xd + batch * cin * plane, dst = od + batch * cout * plane
            let band = scratch.region(1, count: blocks * rows * w * 16)
            for b in first..<last {
                let y0 = b * rows, y1 = min(h, y0 + rows)
                for kb in 0..<blocks {
                    depthwiseRows(src: src + kb * plane * 16, h: h, w: w, dst: band + kb * rows * w * 16, dstFirstRow: y0,
                                                kernel: dwd + kb * 9 * 16, bias: dwb.map { $0 + 16 * kb }, rows: y0..<y1,
                                                lower: depthwise.lower, upper: depthwise.upper)
                }
                // The next band reads input rows up to y1 + rows; those below y1 + 1 are in cache already.
                let next0 = y1 + 1, next1 = min(h, y1 + rows + 1)
                let ahead = b + 1 < last && next0 < next1
                    ? UNetKernelsAVX512.BlockedRowPrefetch(base: src + next0 * w * 16, blockStride: plane * 16, lines: (next1 - next0) * w, blocks: blocks)
                    : nil
                pointwise(src: band, inputBlocks: blocks, plane: rows * w, weight: wd, bias: bd, dst: dst + y0 * w * 16,
                                           outputPlane: plane, outputBlocks: 0..<(cout / 16), pixels: 0..<((y1 - y0) * w),
                                           lower: lower, upper: upper, ahead: ahead)
            }
        })
        return bounds != nil
    }

    /// A 2x2 stride-2 transposed convolution's filters as the 1x1 kernel reads them: each output
    /// block's four taps side by side (`[outputBlock][tap][cin][16]`, tap `2i + j`), so a run of
    /// output blocks is a run of 1x1 filter blocks.
    final class TransposedWeights: @unchecked Sendable {
        let storage: Tensor
        var data: UnsafePointer<Float> { UnsafePointer(storage.data) }

        /// `weight` is `[cin, cout, 2, 2]` (PyTorch's layout).
        init(weight: Tensor, inputChannels cin: Int, outputChannels cout: Int) {
            storage = Tensor(shape: [max(1, 4 * cout * cin)])
            let src = weight.data, dst = storage.data
            for ci in 0..<cin {
                for co in 0..<cout {
                    for tap in 0..<4 { dst[(((co / 16) * 4 + tap) * cin + ci) * 16 + co % 16] = src[(ci * cout + co) * 4 + tap] }
                }
            }
        }
    }

    /// A 2x2 stride-2 transposed convolution in blocks: output pixel `(2y + i, 2x + j)` is tap
    /// `(i, j)` of input pixel `(y, x)`, a 1x1 convolution. A task runs the 1x1 kernel on a run of
    /// input pixels for a range of output blocks (all four taps) into scratch, then adds the
    /// bias, clamps and scatters the taps to their pixels (the plain kernel's order: the sum, then
    /// the bias). Returns true when it applied the epilogue itself.
    static func convTranspose2x2(x: Tensor, weights: TransposedWeights, bias: Tensor?, out: Tensor, pool: ThreadPool,
                                 epilogue: EpilogueContext?) -> Bool {
        let bounds = fusedBounds(epilogue)
        let (lower, upper) = bounds ?? (-.infinity, .infinity)
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = out.shape[1], plane = h * w, blocks = cout / 16
        let xd = UnsafePointer(x.data), od = out.data, wd = weights.data, bd = bias.map { UnsafePointer($0.data) }
        let tasks = PointwiseTasks(images: n, inputChannels: cin, plane: plane, units: blocks, threads: pool.threads)
        pool.parallelFor(tasks.count, withScratch: { task, scratch in
            let (batch, range, outputBlocks) = tasks.task(task)
            let (p0, p1, first, last) = (range.lowerBound, range.upperBound, outputBlocks.lowerBound, outputBlocks.upperBound)
            guard first < last else { return }
            let pixels = p1 - p0
            let taps = scratch.region(1, count: 4 * (last - first) * pixels * 16)
            pointwise(src: xd + batch * cin * plane + p0 * 16, inputBlocks: cin / 16, plane: plane, weight: wd + 4 * first * cin * 16,
                      bias: nil, dst: taps, outputPlane: pixels, outputBlocks: 0..<(4 * (last - first)), pixels: 0..<pixels,
                      lower: -.infinity, upper: .infinity)
            let outPlane = 4 * plane * 16
            for block in first..<last {
                let dst = od + (batch * blocks + block) * outPlane
                let b = bd.map { $0 + 16 * block }
                for tap in 0..<4 {
                    let src = UnsafePointer(taps + (4 * (block - first) + tap) * pixels * 16)
                    if GEMM.avx512 {
                        UNetKernelsAVX512.BlockedResampling.transposedTap(taps: src, w: w, pixels: p0..<p1, i: tap / 2, j: tap % 2, bias: b,
                                                                          lower: lower, upper: upper, dst: dst)
                    } else {
                        UNetKernelsAVX2.BlockedResampling.transposedTap(taps: src, w: w, pixels: p0..<p1, i: tap / 2, j: tap % 2, bias: b,
                                                                        lower: lower, upper: upper, dst: dst)
                    }
                }
            }
        })
        return bounds != nil
    }

    /// 2x2/2 max pooling of a blocked tensor.
    static func maxPool(x: Tensor, out: Tensor, pool: ThreadPool) {
        let (w, ho, wo) = (x.shape[3], out.shape[2], out.shape[3])
        let blocks = x.shape[0] * x.shape[1] / 16
        let xd = UnsafePointer(x.data), od = out.data
        let inPlane = x.shape[2] * w * 16, outPlane = ho * wo * 16
        pool.parallelFor(blocks, elements: x.count + out.count) { b in
            if GEMM.avx512 {
                UNetKernelsAVX512.BlockedResampling.maxPoolRows(src: xd + b * inPlane, w: w, dst: od + b * outPlane, wo: wo, rows: 0..<ho)
            } else {
                UNetKernelsAVX2.BlockedResampling.maxPoolRows(src: xd + b * inPlane, w: w, dst: od + b * outPlane, wo: wo, rows: 0..<ho)
            }
        }
    }

    /// Nearest 2x upsampling of a blocked tensor.
    static func upsample(x: Tensor, out: Tensor, pool: ThreadPool) {
        let (h, w) = (x.shape[2], x.shape[3])
        let blocks = x.shape[0] * x.shape[1] / 16
        let xd = UnsafePointer(x.data), od = out.data
        pool.parallelFor(blocks, elements: x.count + out.count) { b in
            if GEMM.avx512 {
                UNetKernelsAVX512.BlockedResampling.upsampleRows(src: xd + b * h * w * 16, w: w, dst: od + b * 4 * h * w * 16, rows: 0..<h)
            } else {
                UNetKernelsAVX2.BlockedResampling.upsampleRows(src: xd + b * h * w * 16, w: w, dst: od + b * 4 * h * w * 16, rows: 0..<h)
            }
        }
    }

    /// `out` = `x` in the other layout.
    /// `affine`, toward the plain layout only: per block 16 scales then 16 shifts applied to each
    /// channel as it lands (`NormalizationKernel.blockedAffine`), the same multiply and add a
    /// blocked norm applies before the copy.
    static func reorder(x: Tensor, out: Tensor, to layout: ActivationLayout, pool: ThreadPool, affine: UnsafePointer<Float>? = nil) {
        let plane = x.shape[2] * x.shape[3]
        let blocks = x.shape[0] * x.shape[1] / 16
        let toBlocked = layout == .blocked16
        let (plain, blocked) = toBlocked ? (x.data, out.data) : (out.data, x.data)
        // Whole 16-pixel tiles per part, enough parts for the threads.
        let (parts, perPart) = pixelParts(blocks: blocks, pixels: plane, granule: 16, threads: pool.threads)
        pool.parallelFor(blocks * parts, elements: x.count + out.count) { task in
            let b = task / parts, p0 = task % parts * perPart
            guard p0 < plane else { return }
            let (p, q, pixels) = (plain + b * 16 * plane, blocked + b * 16 * plane, p0..<min(plane, p0 + perPart))
            // On AVX-512 the 16x16 transpose: 0.84-0.98 ms against 1.02-1.12 ms by quarters for
            // MobileUNet's 32-channel 256x256 map.
            if GEMM.avx512 {
                BlockedReorderAVX512.block(plain: p, blocked: q, plane: plane, pixels: pixels, toBlocked: toBlocked)
            } else {
                UNetKernelsAVX2.BlockedReorderQuarters.block(plain: p, blocked: q, plane: plane, pixels: pixels, toBlocked: toBlocked)
            }
            // The task's channel rows are still in L1.
            if let affine, !toBlocked {
                for lane in 0..<16 {
                    let row = p + lane * plane + pixels.lowerBound
                    NormalizationKernel.scaleShift(row, row, count: pixels.count, scale: affine[b * 32 + lane], shift: affine[b * 32 + 16 + lane])
                }
            }
        }
    }
}
