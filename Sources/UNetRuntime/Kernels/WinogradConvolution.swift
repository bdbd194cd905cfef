import UNetIR
import UNetKernelsAVX512
import UNetKernelsAVX2

/// 3x3 stride-1 convolution by Winograd F(4x4, 3x3): 36 multiplies per 4x4 output tile and channel
/// pair instead of 144, for the convolutions the compiler marked `.winograd4x4`.
///
/// A tile of work is a run of whole tile rows (4 output rows each) of one image: its input patches
/// are transformed into GEMM panels (`[position][channel][32 tiles]`, 16 tiles at a time), each of
/// the 36 positions is one GEMM of the transformed filters against them (the 6x32 AVX-512
/// microkernel, or the 12x16 one for 16 tiles; the 6x16 one on AVX2, whose panels are 16 tiles),
/// and the output transform writes whole output rows,
/// so the epilogue and the statistics blocks see a contiguous pixel range. When there are fewer
/// work tiles than twice the threads (small maps), the input is transformed once by all threads
/// and the products are split by output channels. Every output is computed in a fixed order:
/// results do not depend on the thread count.
enum WinogradConvolution {
    static let positions = 36
    static var tilesPerPanel: Int { GEMM.nr }

    /// Whether this machine runs the Winograd kernels (AVX-512 or AVX2); elsewhere the step runs
    /// as a direct convolution.
    static var available: Bool { GEMM.avx512 || GEMM.avx2 }

    /// Filters in the Winograd domain, `G g Gᵀ`, packed as microkernel A panels: `[position][panel][cin][mr]`.
    final class TransformedWeights: @unchecked Sendable {
        let storage: Tensor
        let panels: Int
        let inputChannels: Int
        var data: UnsafeMutablePointer<Float> { storage.data }

        /// Filters already transformed (`WeightLayout.winogradPanels`), viewed where they are.
        init(transformed: Tensor, outputChannels cout: Int, inputChannels cin: Int) {
            panels = (cout + GEMM.mr - 1) / GEMM.mr
            inputChannels = cin
            storage = transformed
        }

        init(weight: Tensor, outputChannels cout: Int, inputChannels cin: Int) {
            let mr = GEMM.mr
            panels = (cout + mr - 1) / mr
            inputChannels = cin
            storage = Tensor(zeros: [max(1, WinogradConvolution.positions * panels * cin * mr)])
            let data = storage.data
            let stride = panels * cin * mr
            for co in 0..<cout {
                let panel = co / mr, r = co % mr
                for ci in 0..<cin {
                    let dst = data + (panel * cin + ci) * mr + r
                    WinogradConvolution.transformFilter(weight.data + (co * cin + ci) * 9) { position, u in dst[position * stride] = u }
                }
            }
        }
    }

    /// `G g Gᵀ` of one 3x3 filter `k` (row-major), value by value: `store(6i + j, u)`. In double:
    /// G has thirds and sixths, so float32 would round twice.
    @inline(__always)
    static func transformFilter(_ k: UnsafePointer<Float>, _ store: (Int, Float) -> Void) {
        let g = filterTransform
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 18) { buffer in
            guard let t = buffer.baseAddress else { return }
            for i in 0..<6 {
                for b in 0..<3 { t[i * 3 + b] = g[i][0] * Double(k[b]) + g[i][1] * Double(k[3 + b]) + g[i][2] * Double(k[6 + b]) }
            }
            for i in 0..<6 {
                for j in 0..<6 { store(i * 6 + j, Float(t[i * 3] * g[j][0] + t[i * 3 + 1] * g[j][1] + t[i * 3 + 2] * g[j][2])) }
            }
        }
    }

    /// G of F(4x4, 3x3).
    static let filterTransform: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                                              [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]

    /// The tiling of one convolution: work tiles are runs of whole tile rows of one image.
    struct Tiling {
        let n, cin, h, w, cout, ho, wo, py, px: Int
        let tileColumns, tileRows, rowsPerTile, rowTiles: Int
        /// Column-transformed rows: 4 per tile and the 2 columns past the last tile, padded for the
        /// 16-wide reads of the last group.
        var tStride: Int { 4 * tileColumns + 16 }
        /// Floats between the transformed input of two positions (a panel of tiles, every input
        /// channel). Padded by a cache line: at a multiple of 4 KB, the 36 positions of one tile
        /// would all fall in one L1 set.
        var vStride: Int { cin * tilesPerPanel + 16 }

        init(_ c: Conv2D, x: Tensor, out: Tensor, threads: Int) {
            (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
            (py, px) = c.pad
            // Tile columns come in groups of four (output width a multiple of 16), so 16 lanes of tiles
            // are four groups of four, each group inside one tile row.
            tileColumns = wo / 4
            tileRows = ho / 4
            // About one panel of tiles per work tile, in whole tile rows. Every work tile reads all the
            // transformed filters: where they are larger than L2 they come from L3 or memory each time,
            // so work tiles take more panels (up to 4, while the threads keep two work tiles each or,
            // on maps too small for that, the whole image).
            let rowsPerPanel = max(1, tilesPerPanel / tileColumns)
            let (images, allRows) = (n, tileRows)
            func workTiles(_ rows: Int) -> Int { images * ((allRows + rows - 1) / rows) }
            var rows = min(allRows, rowsPerPanel)
            if positions * cin * cout * MemoryLayout<Float>.size > 1 << 20 {
                let fewTiles = threads > 1 && workTiles(rows) < 2 * threads
                while rows < allRows && 2 * rows <= 4 * rowsPerPanel && (fewTiles || workTiles(2 * rows) >= 2 * threads || threads == 1) {
                    rows = min(allRows, 2 * rows)
                }
            }
            rowsPerTile = rows
            rowTiles = (tileRows + rowsPerTile - 1) / rowsPerTile
        }

        func tileRowRange(_ rowTile: Int) -> Range<Int> { (rowTile * rowsPerTile)..<min(tileRows, (rowTile + 1) * rowsPerTile) }
        func tiles(_ rows: Range<Int>) -> Int { rows.count * tileColumns }
        /// Floats of transformed input for a work tile: `[panel][position][cin][nr]`.
        func vCount(_ rows: Range<Int>) -> Int { (tiles(rows) + tilesPerPanel - 1) / tilesPerPanel * positions * vStride }
    }

    static func conv2d(_ c: Conv2D, x: Tensor, weights: TransformedWeights, bias: Tensor?, out: Tensor, pool: ThreadPool,
                       epilogue: EpilogueContext?) {
        let t = Tiling(c, x: x, out: out, threads: pool.threads)
        let xd = x.data, od = out.data, bd = bias?.data
        let workTiles = t.n * t.rowTiles
        if pool.threads == 1 || workTiles >= 2 * pool.threads || weights.panels == 1 {
            pool.parallelFor(workTiles, withScratch: { tile, scratch in
                let batch = tile / t.rowTiles, rows = t.tileRowRange(tile % t.rowTiles)
                let v = scratch.region(2, count: t.vCount(rows))
                transformInput(t, x: xd, batch: batch, tileRows: rows, channels: 0..<t.cin, v: v, scratch: scratch)
                multiply(t, weights: weights, bias: bd, v: v, batch: batch, tileRows: rows, panels: 0..<weights.panels, out: od,
                         epilogue: epilogue, scratch: scratch)
            })
            return
        }
        // Too few row tiles for the threads (small maps): the input is transformed once, the threads
        // sharing its channels, then they split the output channels. The caller's scratch holds it:
        // tiles only use regions below 7.
        let vImage = t.vCount(t.tileRowRange(0))
        let shared = pool.scratch[0].region(7, count: workTiles * vImage)
        let parts = 2 * pool.threads
        let channelsPerPart = (t.cin + parts - 1) / parts
        pool.parallelFor(workTiles * parts, withScratch: { tile, scratch in
            let part = tile % parts, workTile = tile / parts
            let first = part * channelsPerPart, last = min(t.cin, first + channelsPerPart)
            guard first < last else { return }
            let channels = first..<last
            transformInput(t, x: xd, batch: workTile / t.rowTiles, tileRows: t.tileRowRange(workTile % t.rowTiles), channels: channels,
                           v: shared + workTile * vImage, scratch: scratch)
        })
        let splits = GEMM.panelPairSplits(panels: weights.panels, parts: parts)
        pool.parallelFor(workTiles * splits.count, withScratch: { tile, scratch in
            let split = tile % splits.count, workTile = tile / splits.count
            multiply(t, weights: weights, bias: bd, v: shared + workTile * vImage, batch: workTile / t.rowTiles,
                     tileRows: t.tileRowRange(workTile % t.rowTiles), panels: splits[split], out: od, epilogue: epilogue, scratch: scratch)
        })
    }

    /// Input patches of tile rows `tileRows` of one image, input channels `channels`, into GEMM
    /// panels `v` (`[panel][position][cin][nr]`, 16 tiles at a time).
    static func transformInput(_ t: Tiling, x xd: UnsafePointer<Float>, batch: Int, tileRows: Range<Int>, channels: Range<Int>,
                               v: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let nr = tilesPerPanel, tStride = t.tStride, vStride = t.vStride
        let (tr0, tr1) = (tileRows.lowerBound, tileRows.upperBound)
        let tiles = t.tiles(tileRows)
        let blocks = (tiles + 15) / 16
        // Six transformed rows per tile row.
        let rowsT = scratch.region(3, count: tileRows.count * 6 * tStride)
        let zeros = scratch.region(4, count: t.w)
        zeros.initialize(repeating: 0, count: t.w)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 6) { rowPointers in
            guard let rows = rowPointers.baseAddress else { return }
            for ci in channels {
                let plane = xd + (batch * t.cin + ci) * t.h * t.w
                for tr in tr0..<tr1 {
                    for k in 0..<6 {
                        let y = 4 * tr - t.py + k
                        rows[k] = y >= 0 && y < t.h ? UnsafePointer(plane + y * t.w) : UnsafePointer(zeros)
                    }
                    let columns = rowsT + (tr - tr0) * 6 * tStride
                    if GEMM.avx512 {
                        UNetKernelsAVX512.WinogradF4x4.columnTransform(rows: UnsafePointer(rows), w: t.w, x0: -t.px, width: tStride, t: columns)
                    } else {
                        UNetKernelsAVX2.WinogradF4x4.columnTransform(rows: UnsafePointer(rows), w: t.w, x0: -t.px, width: tStride, t: columns)
                    }
                }
                for block in 0..<blocks {
                    // Four groups of four tiles; a missing group (past the last tile) repeats the first.
                    for q in 0..<4 {
                        let index = min(16 * block + 4 * q, tiles - 4)
                        rows[q] = UnsafePointer(rowsT + (index / t.tileColumns) * 6 * tStride + 4 * (index % t.tileColumns))
                    }
                    let first = 16 * block
                    let panel = v + (first / nr) * positions * vStride + ci * nr + first % nr
                    if GEMM.avx512 {
                        UNetKernelsAVX512.WinogradF4x4.inputTransform16(t: UnsafePointer(rows), rowStride: tStride, v: panel, stride: vStride)
                    } else {
                        UNetKernelsAVX2.WinogradF4x4.inputTransform16(t: UnsafePointer(rows), rowStride: tStride, v: panel, stride: vStride)
                    }
                }
            }
        }
    }

    /// The 36 products of filter panels `panels` with the transformed input `v` of tile rows
    /// `tileRows`, the output transform into whole output rows (so the epilogue and the statistics
    /// blocks see a contiguous pixel range), and the epilogue.
    static func multiply(_ t: Tiling, weights: TransformedWeights, bias bd: UnsafePointer<Float>?, v: UnsafePointer<Float>, batch: Int,
                         tileRows: Range<Int>, panels weightPanels: Range<Int>, out od: UnsafeMutablePointer<Float>,
                         epilogue: EpilogueContext?, scratch: Scratch) {
        guard !weightPanels.isEmpty else { return }
        let mr = GEMM.mr, nr = tilesPerPanel, cin = t.cin, cout = t.cout, wo = t.wo, vStride = t.vStride
        let (firstPanel, lastPanel) = (weightPanels.lowerBound, weightPanels.upperBound)
        let firstChannel = firstPanel * mr, channels = min(cout, lastPanel * mr) - firstChannel
        let tr0 = tileRows.lowerBound
        let tiles = t.tiles(tileRows)
        let panels = (tiles + nr - 1) / nr
        let pixels = t.ho * wo
        let ud = weights.data
        let panelStride = weights.panels * cin * mr
        // m: [panel][position][channel][nr].
        // Padded like `vStride`, for the output transform's 36 reads.
        let mStride = channels * nr + 16
        let m = scratch.region(5, count: panels * positions * mStride)
        // Positions outermost: a position's filter panels come from memory once and serve every
        // panel of tiles from L2.
        for position in 0..<positions {
            for p in 0..<panels {
                // This split's filter panels against one panel of tiles (the 12x16 kernel for pairs of
                // panels when there are at most 16 tiles).
                GEMM.multiplyPacked(k: cin, a: ud + position * panelStride + firstPanel * cin * mr, panels: 0..<(lastPanel - firstPanel),
                                    rows: channels, b: v + (p * positions + position) * vStride, columns: 0..<min(nr, tiles - p * nr),
                                    c: m + (p * positions + position) * mStride, ldc: nr, rowBias: nil)
            }
        }
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 4) { outPointers in
            guard let outputs = outPointers.baseAddress else { return }
            for p in 0..<panels {
                let columns = min(nr, tiles - p * nr)
                let mp = m + p * positions * mStride
                for cc in 0..<channels {
                    let co = firstChannel + cc
                    let plane = od + (batch * cout + co) * pixels
                    let b = bd?[co] ?? 0
                    var first = p * nr
                    while first < p * nr + columns {
                        let groups = min(4, (tiles - first) / 4)
                        for q in 0..<groups {
                            let index = first + 4 * q
                            outputs[q] = plane + 4 * (tr0 + index / t.tileColumns) * wo + 4 * (index % t.tileColumns)
                        }
                        let tiles = mp + cc * nr + first - p * nr
                        if GEMM.avx512 {
                            UNetKernelsAVX512.WinogradF4x4.outputTransform16(m: tiles, stride: mStride, bias: b, out: UnsafePointer(outputs),
                                                                             groups: groups, ldo: wo)
                        } else {
                            UNetKernelsAVX2.WinogradF4x4.outputTransform16(m: tiles, stride: mStride, bias: b, out: UnsafePointer(outputs),
                                                                           groups: groups, ldo: wo)
                        }
                        first += 16
                    }
                }
            }
        }
        if let e = epilogue {
            EpilogueKernel.apply(e, out: od, channels: cout, pixels: pixels, batch: batch,
                                 channelRange: firstChannel..<(firstChannel + channels), pixelRange: (4 * tr0 * wo)..<(4 * tileRows.upperBound * wo))
        }
    }
}
