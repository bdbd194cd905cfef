import UNetIR
import UNetKernelsAVX512
import UNetKernelsAVX2

/// 3x3 stride-1 convolution by Winograd F(4x4, 3x3) in the channel-blocked layout NCHW16c, for the
/// Winograd convolutions `BlockedLayoutSelection` puts in blocks (so a UNet's 3x3 convolutions
/// need no reorder between the blocked pooling, upsampling and 1x1 steps around them).
///
/// A work tile is a run of `chunk` 4x4 output tiles of one image (in row-major tile order). Its
/// input patches are transformed 16 channels per vector into `[position][inputBlock][tile][16]`:
/// for each of the 36 positions that is a blocked feature map whose pixels are tiles, so the
/// products are 36 blocked 1x1 convolutions by the position's transformed filters, run by the
/// blocked 1x1 kernel into `[position][outputBlock][tile][16]`; the output transform adds the bias,
/// clamps and writes the 4x4 pixels of each block. When there are fewer work tiles than twice the
/// threads (small maps), all threads transform the input first and then split the output blocks.
/// The values are those of the plain Winograd convolution (same transforms, same order of every
/// sum), whatever the thread count.
enum BlockedWinogradConvolution {
    static let positions = 36

    /// Transformed filters `G g Gᵀ` as the blocked 1x1 kernel reads them, one 1x1 filter bank per
    /// position: `[position][outputBlock][cin][16]` (`WeightLayout.winogradBlocked`).
    final class Weights: @unchecked Sendable {
        let storage: Tensor
        var data: UnsafePointer<Float> { UnsafePointer(storage.data) }

        /// Filters already transformed and blocked (read from a plan), viewed where they are.
        init(transformed: Tensor) { storage = transformed }

        init(weight: Tensor, outputChannels cout: Int, inputChannels cin: Int) {
            storage = Tensor(zeros: [max(1, positions * cout * cin)])
            let data = storage.data
            let positionStride = cout * cin
            for co in 0..<cout {
                for ci in 0..<cin {
                    let dst = data + ((co / 16) * cin + ci) * 16 + co % 16
                    WinogradConvolution.transformFilter(weight.data + (co * cin + ci) * 9) { position, u in dst[position * positionStride] = u }
                }
            }
        }
    }

    /// What a work tile's tile count is rounded up to: the AVX-512 1x1 kernel runs 4-pixel tiles
    /// after its 12-pixel ones at full speed, the AVX2 one only its 6-pixel tiles.
    static var tileGranule: Int { GEMM.avx512 ? 4 : BlockedLayoutKernel.tilePixels }

    /// The work tiles of one convolution.
    struct Tiling {
        let n, cin, h, w, cout, ho, wo: Int
        let tileColumns, tilesPerImage: Int
        /// Tiles per work tile (the last one of an image may have fewer), and the tiles its buffers
        /// hold: rounded up to whole 1x1 tiles, the extra ones zero.
        let chunk, padded, chunks: Int
        /// Floats between two positions' transformed input or products. Padded by a cache line: at
        /// a multiple of 4 KB, the 36 positions of one tile would share an L1 set.
        var vStride: Int { cin * padded + 16 }
        var mStride: Int { cout * padded + 16 }

        init(x: Tensor, out: Tensor, threads: Int) {
            (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            (cout, ho, wo) = (out.shape[1], out.shape[2], out.shape[3])
            tileColumns = wo / 4
            tilesPerImage = ho / 4 * tileColumns
            let granule = BlockedWinogradConvolution.tileGranule
            func roundUp(_ v: Int) -> Int { (v + granule - 1) / granule * granule }
            // Transformed input and products of a work tile in about 768 KB of L2, and at least one
            // whole 12-pixel 1x1 tile.
            var tiles = max(12, 768 * 1024 / (positions * (cin + cout) * 4) / granule * granule)
            // Every work tile reads all the transformed filters: where they are larger than L2 they
            // come from L3 or memory each time, which costs more than products spilling from L2
            // (measured: 256 channels at 32x32, one thread: 13.2 ms for 4 convolutions in one work
            // tile, 15-24 ms in 2 to 6). So work tiles grow while the threads keep two each, and on
            // one thread, or with too few already (the threads then split the output blocks), to
            // the whole image; in at most 16 MB of scratch.
            if positions * cin * cout * 4 > 1 << 20 {
                let cap = max(tiles, (16 << 20) / (positions * (cin + cout) * 4) / granule * granule)
                let (images, all) = (n, tilesPerImage)
                func workTiles(_ t: Int) -> Int { images * ((all + t - 1) / t) }
                let wholeImage = threads == 1 || workTiles(tiles) < 2 * threads
                while tiles < all && 2 * tiles <= cap && (wholeImage || workTiles(2 * tiles) >= 2 * threads) { tiles *= 2 }
                if wholeImage && all <= cap { tiles = max(tiles, all) }
            }
            chunk = min(tiles, tilesPerImage)
            padded = roundUp(chunk)
            chunks = (tilesPerImage + chunk - 1) / chunk
        }

        func tileRange(_ chunkIndex: Int) -> Range<Int> { (chunkIndex * chunk)..<min(tilesPerImage, (chunkIndex + 1) * chunk) }
        var vCount: Int { positions * vStride }
        var mCount: Int { positions * mStride }

        /// Calls `body(ty, tx0, count, t)` for the runs of tiles of `range` along tile rows, at most
        /// `WinogradBlockedF4x4.maximumTiles` at a time; `t` counts from the range's first tile.
        func rowRuns(_ range: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
            var tile = range.lowerBound
            while tile < range.upperBound {
                let ty = tile / tileColumns, tx = tile % tileColumns
                let count = min(UNetKernelsAVX512.WinogradBlockedF4x4.maximumTiles, tileColumns - tx, range.upperBound - tile)
                body(ty, tx, count, tile - range.lowerBound)
                tile += count
            }
        }
    }

    /// Runs the convolution; the clamp `lower ... upper` is applied with the bias.
    static func conv2d(x: Tensor, weights: Weights, bias: Tensor?, out: Tensor, pool: ThreadPool, lower: Float, upper: Float) {
        let t = Tiling(x: x, out: out, threads: pool.threads)
        let xd = UnsafePointer(x.data), od = out.data, wd = weights.data, bd = bias.map { UnsafePointer($0.data) }
        let blocks = t.cout / 16
        let workTiles = t.n * t.chunks
        if pool.threads == 1 || workTiles >= 2 * pool.threads || blocks == 1 {
            pool.parallelFor(workTiles, withScratch: { tile, scratch in
                let batch = tile / t.chunks, range = t.tileRange(tile % t.chunks)
                let v = scratch.region(2, count: t.vCount)
                transformInput(t, x: xd, batch: batch, tiles: range, blocks: 0..<(t.cin / 16), v: v, scratch: scratch)
                multiply(t, weights: wd, bias: bd, v: v, batch: batch, tiles: range, outputBlocks: 0..<blocks, out: od,
                         lower: lower, upper: upper, scratch: scratch)
            })
            return
        }
        // Too few work tiles for the threads: the input is transformed once, the threads sharing its
        // blocks, then they split the output blocks (in pairs, as the 1x1 kernel computes them).
        // The caller's scratch holds it: tiles only use regions below 7.
        let shared = pool.scratch[0].region(7, count: workTiles * t.vCount)
        let inputBlocks = t.cin / 16
        pool.parallelFor(workTiles * inputBlocks, withScratch: { task, scratch in
            let workTile = task / inputBlocks, block = task % inputBlocks
            transformInput(t, x: xd, batch: workTile / t.chunks, tiles: t.tileRange(workTile % t.chunks), blocks: block..<(block + 1),
                           v: shared + workTile * t.vCount, scratch: scratch)
        })
        let pairs = (blocks + 1) / 2
        let parts = min(pairs, 2 * pool.threads)
        pool.parallelFor(workTiles * parts, withScratch: { task, scratch in
            let part = task % parts, workTile = task / parts
            let first = part * pairs / parts * 2, last = min(blocks, (part + 1) * pairs / parts * 2)
            guard first < last else { return }
            multiply(t, weights: wd, bias: bd, v: shared + workTile * t.vCount, batch: workTile / t.chunks, tiles: t.tileRange(workTile % t.chunks),
                     outputBlocks: first..<last, out: od, lower: lower, upper: upper, scratch: scratch)
        })
    }

    /// Input blocks `blocks` of the patches of `tiles` of one image into `v`
    /// (`[position][inputBlock][tile][16]`); the padding tiles past the last are zero.
    static func transformInput(_ t: Tiling, x xd: UnsafePointer<Float>, batch: Int, tiles: Range<Int>, blocks: Range<Int>,
                               v: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let columns = scratch.region(3, count: UNetKernelsAVX512.WinogradBlockedF4x4.scratchFloats)
        let plane = t.h * t.w * 16
        for block in blocks {
            let src = xd + (batch * t.cin / 16 + block) * plane
            let dst = v + block * t.padded * 16
            t.rowRuns(tiles) { ty, tx0, count, first in
                if GEMM.avx512 {
                    UNetKernelsAVX512.WinogradBlockedF4x4.inputTiles(plane: src, h: t.h, w: t.w, ty: ty, tx0: tx0, count: count, v: dst + first * 16,
                                                                     positionStride: t.vStride, scratch: columns)
                } else {
                    UNetKernelsAVX2.WinogradBlockedF4x4.inputTiles(plane: src, h: t.h, w: t.w, ty: ty, tx0: tx0, count: count, v: dst + first * 16,
                                                                   positionStride: t.vStride, scratch: columns)
                }
            }
            if tiles.count < t.padded {
                // Zeros, not whatever the scratch held: the products of padding tiles are computed
                // (and dropped), and garbage could be slow denormals.
                for position in 0..<positions {
                    (dst + position * t.vStride + tiles.count * 16).initialize(repeating: 0, count: (t.padded - tiles.count) * 16)
                }
            }
        }
    }

    /// The 36 products of output blocks `outputBlocks` with the transformed input `v` of `tiles`,
    /// then the output transform with bias and clamp into those blocks of the output.
    static func multiply(_ t: Tiling, weights wd: UnsafePointer<Float>, bias bd: UnsafePointer<Float>?, v: UnsafePointer<Float>, batch: Int,
                         tiles: Range<Int>, outputBlocks: Range<Int>, out od: UnsafeMutablePointer<Float>, lower: Float, upper: Float,
                         scratch: Scratch) {
        let m = scratch.region(5, count: t.mCount)
        let inputBlocks = t.cin / 16, filterStride = t.cout * t.cin
        for position in 0..<positions {
            BlockedLayoutKernel.pointwise(src: v + position * t.vStride, inputBlocks: inputBlocks, plane: t.padded, weight: wd + position * filterStride,
                                          bias: nil, dst: m + position * t.mStride, outputPlane: t.padded, outputBlocks: outputBlocks,
                                          pixels: 0..<t.padded, lower: -.infinity, upper: .infinity)
        }
        let plane = t.ho * t.wo * 16
        for block in outputBlocks {
            let products = UnsafePointer(m + block * t.padded * 16)
            let dst = od + (batch * t.cout / 16 + block) * plane
            let bias = bd.map { $0 + 16 * block }
            t.rowRuns(tiles) { ty, tx0, count, first in
                if GEMM.avx512 {
                    UNetKernelsAVX512.WinogradBlockedF4x4.outputTiles(m: products + first * 16, positionStride: t.mStride, bias: bias, dst: dst, wo: t.wo,
                                                                      ty: ty, tx0: tx0, count: count, lower: lower, upper: upper)
                } else {
                    UNetKernelsAVX2.WinogradBlockedF4x4.outputTiles(m: products + first * 16, positionStride: t.mStride, bias: bias, dst: dst, wo: t.wo,
                                                                    ty: ty, tx0: tx0, count: count, lower: lower, upper: upper)
                }
            }
        }
    }
}
