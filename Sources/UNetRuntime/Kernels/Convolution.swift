import CPrefetch
import UNetKernelsAVX512
import UNetKernelsAVX2
import UNetIR
import UNetPasses

/// A fused epilogue and the tensors its operand indices refer to.
struct EpilogueContext {
    var ops: [Epilogue]
    var operands: [Tensor]
    /// Where a `.statistics` epilogue writes: per (batch, channel, block) a sum and a sum of squared deviations.
    var statistics: UnsafeMutablePointer<Float>?
}

/// conv2d and conv_transpose2d, lowered to GEMM tiles (im2col per tile of output pixels).
enum ConvolutionKernel {
    static let pixelsPerTile = GEMM.blockN

    /// Convolution weights packed once into microkernel panels: `[group][panel][k][mr]`, rows past
    /// the group's output channels zero. Built when a program is loaded (or read from a plan, which
    /// stores them packed), so runs never repack them.
    final class PackedWeights: @unchecked Sendable {
        let storage: Tensor
        let panels: Int
        let k: Int
        var data: UnsafeMutablePointer<Float> { storage.data }

        init(_ c: Conv2D, weight: Tensor, inputChannels: Int) {
            let g = c.groups
            let coutG = c.out / g
            k = inputChannels / g * c.kernel.0 * c.kernel.1
            panels = (coutG + GEMM.mr - 1) / GEMM.mr
            let mr = GEMM.mr
            storage = Tensor(shape: [max(1, g * panels * k * mr)])
            let data = storage.data
            for group in 0..<g {
                for panel in 0..<panels {
                    let dst = data + (group * panels + panel) * k * mr
                    for r in 0..<mr {
                        let row = panel * mr + r
                        let src = weight.data + (group * coutG + row) * k
                        for kk in 0..<k { dst[kk * mr + r] = row < coutG ? src[kk] : 0 }
                    }
                }
            }
        }

        /// A transposed convolution's filters as the A operand of its GEMM: row `m = (co, i, j)`,
        /// column `ci` is `weight[group * cinG + ci, co, i, j]`.
        init(transposed c: ConvTranspose2D, weight: Tensor, inputChannels: Int) {
            let g = c.groups, cinG = inputChannels / g
            let rows = c.out / g * c.kernel.0 * c.kernel.1
            let mr = GEMM.mr
            k = cinG
            panels = (rows + mr - 1) / mr
            storage = Tensor(zeros: [max(1, g * panels * cinG * mr)])
            let src = weight.data, dst = storage.data
            // Row by row of the plain weight (contiguous reads), scattered into the panels.
            for group in 0..<g {
                for ci in 0..<cinG {
                    let row = src + (group * cinG + ci) * rows
                    for m in 0..<rows { dst[(group * panels + m / mr) * cinG * mr + ci * mr + m % mr] = row[m] }
                }
            }
        }

        /// Panels already packed (`WeightLayout.gemmPanels`), viewed where they are.
        init(_ c: Conv2D, packed: Tensor, inputChannels: Int) {
            k = inputChannels / c.groups * c.kernel.0 * c.kernel.1
            panels = (c.out / c.groups + GEMM.mr - 1) / GEMM.mr
            storage = packed
        }
    }

    /// A convolution's weights as its algorithm reads them.
    enum PreparedWeights {
        case panels(PackedWeights)
        case winograd(WinogradConvolution.TransformedWeights)
        /// Steps in the channel-blocked layout (`WeightLayout.blocked`).
        case blocked(BlockedLayoutKernel.Weights)
        /// Winograd convolutions in the channel-blocked layout (`WeightLayout.winogradBlocked`).
        case blockedWinograd(BlockedWinogradConvolution.Weights)
        /// 2x2 stride-2 transposed convolutions in the channel-blocked layout; plans store these filters plain.
        case blockedTransposed(BlockedLayoutKernel.TransposedWeights)

        var panels: PackedWeights? {
            if case .panels(let p) = self { return p }
            return nil
        }
    }

    /// `blockedInput`: `x` is in the channel-blocked layout (a head, `BlockedLayoutSelection.readsBlockedInput`).
    static func conv2d(_ c: Conv2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext? = nil,
                       packed: PackedWeights? = nil, blockedInput: Bool = false) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let g = c.groups
        let cinG = cin / g
        let coutG = cout / g
        if cinG == 1 && coutG == 1 {
            depthwise(c, x: x, weight: weight, bias: bias, out: out, pool: pool, epilogue: epilogue)
            return
        }
        if blockedInput || (GEMM.avx512 || GEMM.avx2) && c.isFewOutputsHead(pixels: ho * wo) {
            fewOutputs(x: x, weight: weight, bias: bias, out: out, pool: pool, epilogue: epilogue, packed: packed, blockedInput: blockedInput)
            return
        }
        let weights = packed ?? PackedWeights(c, weight: weight, inputChannels: cin)
        let k = weights.k
        let nr = GEMM.nr
        let pixels = ho * wo
        let wanted = pool.threads == 1 ? 1 : 4 * pool.threads
        // Maps with fewer pixel panels than threads (4x4 deep in the UNet): their im2col is built
        // once, shared, and the threads split the output channels. With a panel per thread each
        // builds its own: both cores read a shared im2col, so building the next one moved each of
        // its lines back between the cores (8x8 maps, K = 2304: 0.48 -> 0.42 ms at 2 threads,
        // though the threads now split the work in two tasks instead of eight).
        let panelsN = (pixels + nr - 1) / nr
        if n * g * panelsN < pool.threads && weights.panels > 1 {
            sharedColumns(c, x: x, weights: weights, bias: bias, out: out, pool: pool, epilogue: epilogue)
            return
        }
        // Enough tiles for every thread: split pixels into chunks (whole panels).
        var chunkPixels = pixelsPerTile
        // A short K (1x1 convolutions of few channels) reads one short run per input channel per
        // tile: longer runs let the prefetcher stream each channel, while the panels stay in L2.
        while chunkPixels < 1024 && 2 * chunkPixels * k * MemoryLayout<Float>.size <= 128 * 1024 { chunkPixels *= 2 }
        while chunkPixels > nr && n * g * ((pixels + chunkPixels - 1) / chunkPixels) < wanted { chunkPixels /= 2 }
        let chunks = (pixels + chunkPixels - 1) / chunkPixels
        let xd = x.data, od = out.data, bd = bias?.data
        // 1x1 on AVX-512: the first row panel reads the input in place and packs it as it multiplies.
        let pointwise = GEMM.avx512 && c.isPointwise
        pool.parallelFor(n * g * chunks, withScratch: { tile, scratch in
            let chunk = tile % chunks
            let group = (tile / chunks) % g
            let batch = tile / (chunks * g)
            let p0 = chunk * chunkPixels
            let p1 = min(pixels, p0 + chunkPixels)
            let packedB = scratch.region(1, count: (p1 - p0 + nr - 1) / nr * k * nr)
            if pointwise && p1 - p0 >= nr {
                let plane = xd + (batch * cin + group * cinG) * h * w
                let full = (p1 - p0) / nr * nr
                if p0 + full < p1 {
                    pointwiseColumns(input: plane, plane: h * w, channels: 0..<cinG, pixels: (p0 + full)..<p1, k: k, into: packedB + full * k)
                }
                GEMM.multiplyPointwise(k: k, a: weights.data + group * weights.panels * k * GEMM.mr, panels: 0..<weights.panels, rows: coutG,
                                       source: plane + p0, ldb: h * w, packedB: packedB, columns: p0..<p1,
                                       c: od + (batch * cout + group * coutG) * pixels, ldc: pixels, rowBias: bd.map { UnsafePointer($0 + group * coutG) })
            } else {
                im2col(c, input: xd + (batch * cin + group * cinG) * h * w, h: h, w: w, wo: wo, channels: 0..<cinG, pixels: p0..<p1, k: k,
                       into: packedB, scratch: scratch)
                multiplyPanels(weights, group: group, panels: 0..<weights.panels, b: packedB, pixels: p0..<p1,
                               out: od + (batch * cout + group * coutG) * pixels, ldc: pixels, outputChannels: coutG,
                               bias: bd.map { UnsafePointer($0 + group * coutG) })
            }
            if let e = epilogue {
                EpilogueKernel.apply(e, out: od, channels: cout, pixels: pixels, batch: batch, channelRange: (group * coutG)..<((group + 1) * coutG),
                                     pixelRange: p0..<p1)
            }
        })
    }

    /// A 1x1 convolution to at most 4 channels on a large map (a segmentation head): the filters
    /// (plain, or the one GEMM panel a plan stores them as) against the input where it is, pixel
    /// blocks split over the threads.
    static func fewOutputs(x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext?,
                           packed: PackedWeights?, blockedInput: Bool = false) {
        let (n, cin) = (x.shape[0], x.shape[1])
        let cout = out.shape[1], pixels = out.shape[2] * out.shape[3]
        // Blocks of 1024 pixels: whole 16-pixel statistics blocks, and enough of them for the threads.
        let block = 1024, blocks = (pixels + block - 1) / block
        let xd = x.data, od = out.data, bd = bias.map { UnsafePointer($0.data) }
        // Panels are `[k][mr]`: one filter row is every mr-th float.
        let (wd, outputStride, inputStride) = packed.map { ($0.data, 1, GEMM.mr) } ?? (weight.data, cin, 1)
        pool.parallelFor(n * blocks) { tile in
            let batch = tile / blocks, p0 = tile % blocks * block, range = p0..<min(pixels, p0 + block)
            let (src, dst) = (xd + batch * cin * pixels, od + batch * cout * pixels)
            if blockedInput && GEMM.avx512 {
                UNetKernelsAVX512.FewOutputsBlocked.run(src: src, inputBlocks: cin / 16, plane: pixels, weight: wd, outputStride: outputStride,
                                                        inputStride: inputStride, bias: bd, dst: dst, outputs: cout, range: range,
                                                        wholeTiles: !CPUFeatures.halfWidthAVX512)
            } else if blockedInput {
                UNetKernelsAVX2.FewOutputsBlocked.run(src: src, inputBlocks: cin / 16, plane: pixels, weight: wd, outputStride: outputStride,
                                                      inputStride: inputStride, bias: bd, dst: dst, outputs: cout, range: range, wholeTiles: false)
            } else if GEMM.avx512 {
                UNetKernelsAVX512.FewOutputsPointwise.run(src: src, inputs: cin, pixels: pixels, weight: wd, outputStride: outputStride,
                                                          inputStride: inputStride, bias: bd, dst: dst, outputs: cout, range: range)
            } else {
                UNetKernelsAVX2.FewOutputsPointwise.run(src: src, inputs: cin, pixels: pixels, weight: wd, outputStride: outputStride,
                                                        inputStride: inputStride, bias: bd, dst: dst, outputs: cout, range: range)
            }
            if let e = epilogue {
                EpilogueKernel.apply(e, out: od, channels: cout, pixels: pixels, batch: batch, channelRange: 0..<cout, pixelRange: range)
            }
        }
    }

    /// The im2col of the whole map is built once (the threads split its input channels), then the
    /// threads split the output channels. Splitting the output channels of per-tile im2cols instead
    /// would build each im2col once per split.
    static func sharedColumns(_ c: Conv2D, x: Tensor, weights: PackedWeights, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext?) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let g = c.groups, cinG = cin / g, coutG = cout / g
        let k = weights.k, nr = GEMM.nr, mr = GEMM.mr
        let pixels = ho * wo
        let columnsSize = (pixels + nr - 1) / nr * k * nr
        // The caller's scratch: tiles only use regions below 6, and the caller runs this step's tiles itself.
        let columns = pool.scratch[0].region(6, count: n * g * columnsSize)
        let xd = x.data, od = out.data, bd = bias?.data
        let parts = 4 * pool.threads
        let channelsPerPart = (cinG + parts - 1) / parts
        pool.parallelFor(n * g * parts, withScratch: { tile, scratch in
            let part = tile % parts, image = tile / parts
            let (batch, group) = (image / g, image % g)
            let first = part * channelsPerPart, last = min(cinG, first + channelsPerPart)
            guard first < last else { return }
            im2col(c, input: xd + (batch * cin + group * cinG) * h * w, h: h, w: w, wo: wo, channels: first..<last, pixels: 0..<pixels, k: k,
                   into: columns + image * columnsSize, scratch: scratch)
        })
        let splits = GEMM.panelPairSplits(panels: weights.panels, parts: parts)
        pool.parallelFor(n * g * splits.count) { tile in
            let split = tile % splits.count, image = tile / splits.count
            let (batch, group) = (image / g, image % g)
            let panels = splits[split]
            multiplyPanels(weights, group: group, panels: panels, b: columns + image * columnsSize, pixels: 0..<pixels,
                           out: od + (batch * cout + group * coutG) * pixels, ldc: pixels, outputChannels: coutG,
                           bias: bd.map { UnsafePointer($0 + group * coutG) })
            if let e = epilogue {
                let channels = (group * coutG + panels.lowerBound * mr)..<(group * coutG + min(coutG, panels.upperBound * mr))
                EpilogueKernel.apply(e, out: od, channels: cout, pixels: pixels, batch: batch, channelRange: channels, pixelRange: 0..<pixels)
            }
        }
    }

    /// Rows `channels` (times the kernel's taps) of the im2col of output pixels `pixels`, written straight
    /// into microkernel panels `[panel][k][nr]`. Each output row's run is copied a panel-lane stretch
    /// at a time: zero fill above/below the input and past its edges, a plain copy where the tap is
    /// inside the row (stride 1), element by element only for strided taps at the edges.
    static func im2col(_ c: Conv2D, input: UnsafePointer<Float>, h: Int, w: Int, wo: Int, channels: Range<Int>, pixels: Range<Int>, k: Int,
                       into packedB: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let nr = GEMM.nr
        let (kh, kw) = c.kernel
        let (sy, sx) = c.stride, (py, px) = c.pad, (dy, dx) = c.dilation
        let p0 = pixels.lowerBound, width = pixels.count
        let taps = kh * kw, panels = (width + nr - 1) / nr
        if c.isPointwise {
            pointwiseColumns(input: input, plane: h * w, channels: channels, pixels: pixels, k: k, into: packedB)
            return
        }
        if wo < nr && sx == 1 {
            paddedRows(c, input: input, h: h, w: w, wo: wo, channels: channels, pixels: pixels, k: k, into: packedB, scratch: scratch)
            return
        }
        if wo < nr && taps * panels * nr <= 1 << 14 && h * w <= Int(Int32.max) {
            // Strided rows shorter than a panel (the downsampling convolutions deep in the UNet; stride-1
            // ones took the padded copy above): per-run bookkeeping would cost more than the copy, so
            // a table gives each tap's source offset per pixel (-1: padding).
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: taps * panels * nr) { table in
                var entry = 0
                for i in 0..<kh {
                    for j in 0..<kw {
                        for q in 0..<(panels * nr) {
                            let p = p0 + q
                            let iy = p / wo * sy - py + i * dy, ix = p % wo * sx - px + j * dx
                            table[entry] = q < width && iy >= 0 && iy < h && ix >= 0 && ix < w ? Int32(iy * w + ix) : -1
                            entry += 1
                        }
                    }
                }
                for ci in channels {
                    let plane = input + ci * h * w
                    for t in 0..<taps {
                        let kIndex = ci * taps + t
                        for pn in 0..<panels {
                            let dst = packedB + pn * k * nr + kIndex * nr
                            let offsets = (t * panels + pn) * nr
                            for lane in 0..<nr {
                                let offset = Int(table[offsets + lane])
                                dst[lane] = offset >= 0 ? plane[offset] : 0
                            }
                        }
                    }
                }
            }
            return
        }
        let panelJump = k * nr - nr
        let ahead = 2 * h * w
        var kIndex = channels.lowerBound * kh * kw
        for ci in channels {
            let plane = input + ci * h * w
            for i in 0..<kh {
                for j in 0..<kw {
                    var dst = packedB + kIndex * nr
                    var lane = 0
                    var oy = p0 / wo, ox = p0 % wo
                    var q = 0
                    while q < width {
                        let run = min(wo - ox, width - q)
                        let iy = oy * sy - py + i * dy
                        var ix = ox * sx - px + j * dx
                        var remaining = run
                        while remaining > 0 {
                            let n = min(nr - lane, remaining)
                            if iy < 0 || iy >= h {
                                dst.update(repeating: 0, count: n)
                            } else if sx == 1 {
                                // Zeros left and right of the input row, a copy of what lies inside it.
                                let lead = min(n, max(0, -ix)), inside = max(0, min(n, w - ix) - lead)
                                if lead > 0 { dst.update(repeating: 0, count: lead) }
                                if inside > 0 {
                                    let src = plane + iy * w + ix + lead
                                    // The same run two channels on: each channel's rows are streams too short for
                                    // the hardware prefetcher to get ahead of.
                                    unetc_prefetch(src + ahead)
                                    unetc_prefetch(src + ahead + 16)
                                    copyRun(dst + lead, src, inside)
                                }
                                if lead + inside < n { (dst + lead + inside).update(repeating: 0, count: n - lead - inside) }
                            } else {
                                let row = plane + iy * w
                                var x = ix
                                for e in 0..<n {
                                    dst[e] = (x >= 0 && x < w) ? row[x] : 0
                                    x += sx
                                }
                            }
                            ix += n * sx
                            remaining -= n
                            lane += n
                            dst += n
                            if lane == nr {
                                lane = 0
                                dst += panelJump
                            }
                        }
                        q += run
                        ox += run
                        if ox == wo { ox = 0; oy += 1 }
                    }
                    if lane != 0 { dst.update(repeating: 0, count: nr - lane) }
                    kIndex += 1
                }
            }
        }
    }

    /// The panels of a 1x1 stride-1 convolution's input: each channel's pixel run cut into
    /// panel rows, with no per-row bookkeeping.
    static func pointwiseColumns(input: UnsafePointer<Float>, plane: Int, channels: Range<Int>, pixels: Range<Int>, k: Int,
                                 into packedB: UnsafeMutablePointer<Float>) {
        let nr = GEMM.nr
        let width = pixels.count, full = width / nr, rest = width - full * nr
        let ahead = 2 * plane
        for ci in channels {
            var src = input + ci * plane + pixels.lowerBound
            var dst = packedB + ci * nr
            for _ in 0..<full {
                unetc_prefetch(src + ahead)
                unetc_prefetch(src + ahead + 16)
                copyRun(dst, src, nr)
                src += nr
                dst += k * nr
            }
            if rest > 0 {
                copyRun(dst, src, rest)
                (dst + rest).update(repeating: 0, count: nr - rest)
            }
        }
    }

    /// The im2col of rows shorter than a panel at stride 1 (maps deep in the UNet). The rows the
    /// pixels need are first copied into a zero-bordered buffer, so every tap of every output row is
    /// one contiguous copy of `wo` floats: no edge tests and no per-element gather.
    static func paddedRows(_ c: Conv2D, input: UnsafePointer<Float>, h: Int, w: Int, wo: Int, channels: Range<Int>, pixels: Range<Int>, k: Int,
                           into packedB: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let nr = GEMM.nr
        let (kh, kw) = c.kernel
        let sy = c.stride.0, (py, px) = c.pad, (dy, dx) = c.dilation
        let p0 = pixels.lowerBound, width = pixels.count
        guard width > 0 else { return }
        let taps = kh * kw, panels = (width + nr - 1) / nr
        let firstRow = p0 / wo, lastRow = (pixels.upperBound - 1) / wo
        // Padded row r holds input row rowBase + r; padded column x holds input column x - px.
        let rowBase = firstRow * sy - py
        let paddedHeight = (lastRow - firstRow) * sy + (kh - 1) * dy + 1
        let paddedWidth = wo - 1 + (kw - 1) * dx + 1
        let planeSize = paddedHeight * paddedWidth
        let padded = scratch.region(2, count: channels.count * planeSize)
        for (index, ci) in channels.enumerated() {
            let plane = input + ci * h * w
            for r in 0..<paddedHeight {
                let dst = padded + index * planeSize + r * paddedWidth
                let iy = rowBase + r
                guard iy >= 0 && iy < h else {
                    dst.update(repeating: 0, count: paddedWidth)
                    continue
                }
                // Columns x with 0 <= x - px < w are inside the input.
                let lead = min(paddedWidth, px), inside = max(0, min(paddedWidth, w + px) - lead)
                if lead > 0 { dst.update(repeating: 0, count: lead) }
                if inside > 0 { (dst + lead).update(from: plane + iy * w, count: inside) }
                if lead + inside < paddedWidth { (dst + lead + inside).update(repeating: 0, count: paddedWidth - lead - inside) }
            }
        }
        // Runs of output pixels that are contiguous both in a panel and in a padded row: where each
        // starts in the panels, where its first tap-(0, 0) source is, and its length.
        withUnsafeTemporaryAllocation(of: (destination: Int, source: Int, count: Int).self, capacity: width) { runs in
            var runCount = 0
            var q = 0
            while q < width {
                let p = p0 + q
                let oy = p / wo, ox = p % wo, lane = q % nr
                let count = min(wo - ox, nr - lane, width - q)
                runs[runCount] = (q / nr * k * nr + lane, (oy - firstRow) * sy * paddedWidth + ox, count)
                runCount += 1
                q += count
            }
            let tail = panels * nr - width
            for (index, ci) in channels.enumerated() {
                let plane = UnsafePointer(padded + index * planeSize)
                for i in 0..<kh {
                    for j in 0..<kw {
                        let kIndex = ci * taps + i * kw + j
                        let source = plane + i * dy * paddedWidth + j * dx
                        let destination = packedB + kIndex * nr
                        for r in 0..<runCount {
                            let run = runs[r]
                            copyRun(destination + run.destination, source + run.source, run.count)
                        }
                        if tail > 0 { (destination + (panels - 1) * k * nr + nr - tail).update(repeating: 0, count: tail) }
                    }
                }
            }
        }
    }

    /// `out[row, p] = sum_k A[row, k] B[k, p] + bias[row]` for the rows of A panels `panels` of one
    /// group and pixels `pixels` (B holds their im2col panels); `out` is the group's first row.
    @inline(__always)
    static func multiplyPanels(_ weights: PackedWeights, group: Int, panels: Range<Int>, b packedB: UnsafePointer<Float>, pixels: Range<Int>,
                               out: UnsafeMutablePointer<Float>, ldc: Int, outputChannels: Int, bias: UnsafePointer<Float>?) {
        GEMM.multiplyPacked(k: weights.k, a: weights.data + group * weights.panels * weights.k * GEMM.mr, panels: panels, rows: outputChannels,
                            b: packedB, columns: pixels, c: out, ldc: ldc, rowBias: bias)
    }

    /// Copies a run of at most one panel row (`nr` floats): straight-line vector moves, because a
    /// `memmove` call per run (runs are 4 to 32 floats) cost more than the copy on small maps and 1x1 convolutions.
    @inline(__always)
    static func copyRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        var offset = 0
        @inline(__always) func move<V: SIMD>(_: V.Type) where V.Scalar == Float {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: offset, as: V.self), toByteOffset: offset, as: V.self)
            offset += MemoryLayout<V>.size
        }
        if n >= 16 { move(SIMD16<Float>.self) }
        if n >= 32 { move(SIMD16<Float>.self) }
        let rest = n & 15
        if rest & 8 != 0 { move(SIMD8<Float>.self) }
        if rest & 4 != 0 { move(SIMD4<Float>.self) }
        if rest & 2 != 0 { move(SIMD2<Float>.self) }
        if rest & 1 != 0 { d.storeBytes(of: s.load(fromByteOffset: offset, as: Float.self), toByteOffset: offset, as: Float.self) }
    }

    /// One input channel per output channel: a direct loop is far cheaper than a 1-row GEMM. The
    /// AVX-512 build of the loop (with a one-pass 3-tap row) runs where the CPU has it; this one elsewhere.
    /// Taps run outermost and output pixels innermost, over the range where the tap stays inside
    /// the input, so the inner loop has no bounds checks and vectorizes.
    static func depthwise(_ c: Conv2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool, epilogue: EpilogueContext?) {
        let (ch, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (out.shape[2], out.shape[3])
        let (kh, kw) = c.kernel
        let (sy, sx) = c.stride, (py, px) = c.pad, (dy, dx) = c.dilation
        let xd = x.data, wd = weight.data, od = out.data, bd = bias?.data
        pool.parallelFor(x.shape[0] * ch) { plane in
            let channel = plane % ch
            let src = xd + plane * h * w
            let dst = od + plane * ho * wo
            let kernel = wd + channel * kh * kw
            let b = bd?[channel] ?? 0
            if GEMM.avx512 {
                UNetKernelsAVX512.DepthwisePlane.plane(src: src, h: h, w: w, dst: dst, ho: ho, wo: wo, kernel: kernel, kh: kh, kw: kw,
                                                       stride: c.stride, pad: c.pad, dilation: c.dilation, bias: b)
            } else if GEMM.avx2 {
                UNetKernelsAVX2.DepthwisePlane.plane(src: src, h: h, w: w, dst: dst, ho: ho, wo: wo, kernel: kernel, kh: kh, kw: kw,
                                                     stride: c.stride, pad: c.pad, dilation: c.dilation, bias: b)
            } else {
            for oy in 0..<ho {
                let row = dst + oy * wo
                for ox in 0..<wo { row[ox] = b }
                for i in 0..<kh {
                    let iy = oy * sy - py + i * dy
                    if iy < 0 || iy >= h { continue }
                    let input = src + iy * w
                    for j in 0..<kw {
                        let weightValue = kernel[i * kw + j]
                        let offset = j * dx - px
                        // ox such that 0 <= ox * sx + offset < w
                        let first = offset >= 0 ? 0 : (-offset + sx - 1) / sx
                        let last = min(wo, (w - 1 - offset) >= 0 ? (w - 1 - offset) / sx + 1 : 0)
                        if first >= last { continue }
                        if sx == 1 {
                            let shifted = input + offset
                            for ox in first..<last { row[ox] += weightValue * shifted[ox] }
                        } else {
                            for ox in first..<last { row[ox] += weightValue * input[ox * sx + offset] }
                        }
                    }
                }
            }
            }
            if let e = epilogue {
                EpilogueKernel.apply(e, out: od, channels: ch, pixels: ho * wo, batch: plane / ch,
                                     channelRange: channel..<(channel + 1), pixelRange: 0..<(ho * wo))
            }
        }
    }

    /// Transposed convolution: `cols = Wᵀ·X` by GEMM, then each output channel gathers its columns (col2im) in a fixed order.
    static func convTranspose2d(_ c: ConvTranspose2D, x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool,
                                packed: PackedWeights? = nil) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let g = c.groups
        let cinG = cin / g, coutG = cout / g
        let (kh, kw) = c.kernel
        let rows = coutG * kh * kw
        if c.kernel == c.stride && c.pad == (0, 0) && c.dilation == (1, 1) && c.outputPadding == (0, 0) && ho == h * kh && wo == w * kw {
            convTransposeTiling(c, x: x, weights: packed ?? PackedWeights(transposed: c, weight: weight, inputChannels: cin), bias: bias, out: out,
                                pool: pool)
            return
        }
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

    /// Transposed convolution whose kernel equals its stride (the UNet's 2x2/2 upsampling): taps do
    /// not overlap, so each output pixel is one GEMM value plus the bias. The weights come packed
    /// into microkernel panels (rows `(co, i, j)` by input channels, done once at load); a tile
    /// is a block of `mr` output channels and a run of input pixels, whose GEMM rows go to per-thread
    /// scratch and straight to their output pixels: no whole-image column buffer, nothing summed twice.
    static func convTransposeTiling(_ c: ConvTranspose2D, x: Tensor, weights: PackedWeights, bias: Tensor?, out: Tensor, pool: ThreadPool) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, wo) = (out.shape[1], out.shape[3])
        let g = c.groups
        let cinG = cin / g, coutG = cout / g
        let (kh, kw) = c.kernel
        let taps = kh * kw
        let mr = GEMM.mr, nr = GEMM.nr
        let panels = weights.panels
        let pixels = h * w
        let pa = weights.data
        // Longer chunks for a short K, as for 1x1 convolutions (each channel's run streams), while
        // the chunk's input and its columns stay in L2.
        var chunk = GEMM.blockN
        while chunk < 512 && 2 * chunk * cinG * MemoryLayout<Float>.size <= 128 * 1024 { chunk *= 2 }
        let chunks = (pixels + chunk - 1) / chunk
        // A tile packs its input chunk once for all its output channels; channels are split (in
        // whole panels) only when there are too few chunks for the threads.
        let channelPanels = (coutG + mr - 1) / mr
        let splits = pool.threads == 1 ? 1 : max(1, min(channelPanels, (4 * pool.threads + n * g * chunks - 1) / (n * g * chunks)))
        let channelsPerTile = (channelPanels + splits - 1) / splits * mr
        let channelTiles = (coutG + channelsPerTile - 1) / channelsPerTile
        let xd = x.data, od = out.data, bd = bias?.data
        pool.parallelFor(n * g * channelTiles * chunks, withScratch: { tile, scratch in
            let p0 = (tile % chunks) * chunk, p1 = min(pixels, p0 + chunk)
            let channelTile = (tile / chunks) % channelTiles
            let group = (tile / (chunks * channelTiles)) % g
            let batch = tile / (chunks * channelTiles * g)
            let co0 = channelTile * channelsPerTile, co1 = min(coutG, co0 + channelsPerTile)
            let m0 = co0 * taps, m1 = co1 * taps
            let width = p1 - p0
            let panelsN = (width + nr - 1) / nr
            // B(k = ci, p) is the input's channel rows, as for a 1x1 convolution; C(m, p) goes to
            // `columns`, row m - m0, column p - p0.
            let packedB = scratch.region(1, count: panelsN * cinG * nr)
            let input = xd + (batch * cin + group * cinG) * pixels
            let columns = scratch.region(6, count: (m1 - m0) * width)
            let origin = columns - (m0 * width + p0)
            let a = pa + group * panels * cinG * mr, rowPanels = (m0 / mr)..<((m1 + mr - 1) / mr)
            if GEMM.avx512 && width >= nr {
                let full = width / nr * nr
                if full < width {
                    pointwiseColumns(input: input, plane: pixels, channels: 0..<cinG, pixels: (p0 + full)..<p1, k: cinG, into: packedB + full * cinG)
                }
                GEMM.multiplyPointwise(k: cinG, a: a, panels: rowPanels, rows: m1, source: input + p0, ldb: pixels, packedB: packedB,
                                       columns: p0..<p1, c: origin, ldc: width, rowBias: nil)
            } else {
                pointwiseColumns(input: input, plane: pixels, channels: 0..<cinG, pixels: p0..<p1, k: cinG, into: packedB)
                GEMM.multiplyPacked(k: cinG, a: a, panels: rowPanels, rows: m1, b: packedB, columns: p0..<p1, c: origin, ldc: width, rowBias: nil)
            }
            for co in co0..<co1 {
                let channel = group * coutG + co
                let dst = od + (batch * cout + channel) * pixels * taps
                let b0 = bd?[channel] ?? 0
                for i in 0..<kh {
                    let tapRow = columns + ((co - co0) * kh + i) * kw * width
                    var p = p0
                    while p < p1 {
                        // The rest of input row iy inside this run of pixels: output row iy * kh + i.
                        let iy = p / w, ix = p % w
                        let run = min(w - ix, p1 - p)
                        let row = dst + (iy * kh + i) * wo + ix * kw
                        if kw == 2 && GEMM.avx512 {
                            UNetKernelsAVX512.TapInterleave.pairs(even: tapRow + (p - p0), odd: tapRow + width + (p - p0), bias: b0, dst: row, count: run)
                        } else if kw == 2 && GEMM.avx2 {
                            UNetKernelsAVX2.TapInterleave.pairs(even: tapRow + (p - p0), odd: tapRow + width + (p - p0), bias: b0, dst: row, count: run)
                        } else if kw == 2 {
                            // Both taps of a pixel side by side: one pass over the output row.
                            let v0 = tapRow + (p - p0), v1 = v0 + width
                            for q in 0..<run {
                                row[2 * q] = v0[q] + b0
                                row[2 * q + 1] = v1[q] + b0
                            }
                        } else {
                            for j in 0..<kw {
                                let values = tapRow + j * width + (p - p0)
                                for q in 0..<run { row[q * kw + j] = values[q] + b0 }
                            }
                        }
                        p += run
                    }
                }
            }
        })
    }
}
