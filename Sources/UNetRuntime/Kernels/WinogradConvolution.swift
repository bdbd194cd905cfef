import UNetIR
import UNetKernelsAVX512

/// 3x3 stride-1 convolution by Winograd F(4x4, 3x3): 36 multiplies per 4x4 output tile and channel
/// pair instead of 144, for the convolutions the compiler marked `.winograd4x4`.
///
/// A tile of work is a run of whole tile rows (4 output rows each) of one image and a range of output
/// channels: its input patches are transformed into GEMM panels (`[position][channel][32 tiles]`, 16
/// tiles at a time),
/// each of the 36 positions is one GEMM of the transformed filters against them (the AVX-512
/// microkernel), and the output transform writes whole output rows, so the epilogue and the
/// statistics blocks see a contiguous pixel range. Every output is computed by one tile in a fixed
/// order: results do not depend on the thread count.
enum WinogradConvolution {
    static let positions = 36
    static var tilesPerPanel: Int { GEMM.nr }

    /// Whether this machine runs the Winograd kernels; elsewhere the step runs as a direct convolution.
    static var available: Bool { GEMM.avx512 }

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
            // Double inside the transform: G has thirds and sixths, so float32 would round twice.
            let g: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                                 [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
            let stride = panels * cin * mr
            var gk = [Double](repeating: 0, count: 18)
            for co in 0..<cout {
                let panel = co / mr, r = co % mr
                for ci in 0..<cin {
                    let k = weight.data + (co * cin + ci) * 9
                    for i in 0..<6 {
                        for b in 0..<3 { gk[i * 3 + b] = g[i][0] * Double(k[b]) + g[i][1] * Double(k[3 + b]) + g[i][2] * Double(k[6 + b]) }
                    }
                    let dst = data + (panel * cin + ci) * mr + r
                    for i in 0..<6 {
                        for j in 0..<6 {
                            let u = gk[i * 3] * g[j][0] + gk[i * 3 + 1] * g[j][1] + gk[i * 3 + 2] * g[j][2]
                            dst[(i * 6 + j) * stride] = Float(u)
                        }
                    }
                }
            }
        }
    }

    static func conv2d(_ c: Conv2D, x: Tensor, weights: TransformedWeights, bias: Tensor?, out: Tensor, pool: ThreadPool,
                       epilogue: EpilogueContext?) {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
        let (py, px) = c.pad
        // Tile columns come in groups of four (output width a multiple of 16), so 16 lanes of tiles
        // are four groups of four, each group inside one tile row.
        let tileColumns = wo / 4, tileRows = ho / 4
        let pixels = ho * wo
        let mr = GEMM.mr, nr = tilesPerPanel
        // About one panel of tiles per work tile, in whole tile rows; with several threads and too few
        // row tiles to share, output channels are split too (each part transforms the input again).
        let rowsPerTile = max(1, min(tileRows, nr / tileColumns))
        let rowTiles = (tileRows + rowsPerTile - 1) / rowsPerTile
        let splits = pool.threads == 1 ? 1 : min(weights.panels, max(1, (2 * pool.threads + n * rowTiles - 1) / (n * rowTiles)))
        let panelsPerSplit = (weights.panels + splits - 1) / splits
        // Column-transformed rows: 4 per tile and the 2 columns past the last tile, padded for the
        // 16-wide reads of the last group.
        let tStride = 4 * tileColumns + 16
        let xd = x.data, od = out.data, bd = bias?.data, ud = weights.data
        let panelStride = weights.panels * cin * mr
        pool.parallelFor(n * rowTiles * splits, withScratch: { tile, scratch in
            let split = tile % splits
            let rowTile = (tile / splits) % rowTiles
            let batch = tile / (splits * rowTiles)
            let firstPanel = split * panelsPerSplit
            let lastPanel = min(weights.panels, firstPanel + panelsPerSplit)
            guard firstPanel < lastPanel else { return }
            let firstChannel = firstPanel * mr, channels = min(cout, lastPanel * mr) - firstChannel
            let tr0 = rowTile * rowsPerTile, tr1 = min(tileRows, tr0 + rowsPerTile)
            let tiles = (tr1 - tr0) * tileColumns
            let panels = (tiles + nr - 1) / nr
            let blocks = (tiles + 15) / 16
            // v: [panel][position][cin][nr]; t: six transformed rows per tile row; m: [position][channel][nr].
            let vStride = cin * nr
            let v = scratch.region(2, count: panels * positions * vStride)
            let t = scratch.region(3, count: (tr1 - tr0) * 6 * tStride)
            let zeros = scratch.region(4, count: w)
            zeros.initialize(repeating: 0, count: w)
            let mStride = channels * nr
            let m = scratch.region(5, count: positions * mStride)
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 6) { rowPointers in
                guard let rows = rowPointers.baseAddress else { return }
                for ci in 0..<cin {
                    let plane = xd + (batch * cin + ci) * h * w
                    for tr in tr0..<tr1 {
                        for k in 0..<6 {
                            let y = 4 * tr - py + k
                            rows[k] = y >= 0 && y < h ? UnsafePointer(plane + y * w) : UnsafePointer(zeros)
                        }
                        WinogradF4x4AVX512.columnTransform(rows: UnsafePointer(rows), w: w, x0: -px, width: tStride,
                                                           t: t + (tr - tr0) * 6 * tStride)
                    }
                    for block in 0..<blocks {
                        // Four groups of four tiles; a missing group (past the last tile) repeats the first.
                        for q in 0..<4 {
                            let index = min(16 * block + 4 * q, tiles - 4)
                            rows[q] = UnsafePointer(t + (index / tileColumns) * 6 * tStride + 4 * (index % tileColumns))
                        }
                        let first = 16 * block
                        WinogradF4x4AVX512.inputTransform16(t: UnsafePointer(rows), rowStride: tStride,
                                                            v: v + (first / nr) * positions * vStride + ci * nr + first % nr, stride: vStride)
                    }
                }
            }
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 4) { outPointers in
                guard let outputs = outPointers.baseAddress else { return }
                for p in 0..<panels {
                    let columns = min(nr, tiles - p * nr)
                    for position in 0..<positions {
                        for panel in firstPanel..<lastPanel {
                            GEMM.microkernel(k: cin, a: ud + position * panelStride + panel * cin * mr,
                                             b: v + (p * positions + position) * vStride,
                                             c: m + position * mStride + (panel - firstPanel) * mr * nr, ldc: nr,
                                             rows: min(mr, cout - panel * mr), cols: columns, rowBias: nil)
                        }
                    }
                    for cc in 0..<channels {
                        let co = firstChannel + cc
                        let plane = od + (batch * cout + co) * pixels
                        let b = bd?[co] ?? 0
                        var first = p * nr
                        while first < p * nr + columns {
                            let groups = min(4, (tiles - first) / 4)
                            for q in 0..<groups {
                                let index = first + 4 * q
                                outputs[q] = plane + 4 * (tr0 + index / tileColumns) * wo + 4 * (index % tileColumns)
                            }
                            WinogradF4x4AVX512.outputTransform16(m: m + cc * nr + first - p * nr, stride: mStride, bias: b,
                                                                 out: UnsafePointer(outputs), groups: groups, ldo: wo)
                            first += 16
                        }
                    }
                }
            }
            if let e = epilogue {
                EpilogueKernel.apply(e, out: od, channels: cout, pixels: pixels, batch: batch,
                                     channelRange: firstChannel..<(firstChannel + channels), pixelRange: (4 * tr0 * wo)..<(4 * tr1 * wo))
            }
        })
    }
}
