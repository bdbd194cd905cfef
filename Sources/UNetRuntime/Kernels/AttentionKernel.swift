import Foundation
import UNetIR
import UNetKernelsAVX512
import UNetKernelsAVX2

/// Multi-head attention with its projections. Scores are formed a tile of queries at a time (two
/// GEMMs and a softmax per tile), so no more than a tile of the score matrix exists per thread.
/// Self-attention on a feature map runs `runSpatial` (packed projections, channel-major operands);
/// sequences and cross-attention run `run`.
enum AttentionKernel {
    /// Queries per tile of `run`: a multiple of the AVX-512 microkernel's 6 rows.
    static let queriesPerTile = 48

    /// `row = softmax(scale * row)`: the vector row kernel where the CPU has AVX-512 or AVX2, else libm's `expf`.
    static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        if GEMM.avx512 {
            UNetKernelsAVX512.SoftmaxLoops.row(row, count: count, scale: scale)
            return
        }
        if GEMM.avx2 {
            UNetKernelsAVX2.SoftmaxLoops.row(row, count: count, scale: scale)
            return
        }
        var maxScore = -Float.infinity
        for j in 0..<count { maxScore = max(maxScore, row[j] * scale) }
        var total: Float = 0
        for j in 0..<count {
            let e = expf(row[j] * scale - maxScore)
            row[j] = e
            total += e
        }
        let inverse = 1 / total
        for j in 0..<count { row[j] *= inverse }
    }

    /// The projections of a self-attention on a feature map as 1x1 convolutions, their filters
    /// packed once when the program is loaded: Q, K and V stacked (`[3 inner, channels]`, one
    /// product for all three) and the output projection (`[channels, inner]`).
    final class PackedProjections: @unchecked Sendable {
        let qkv: ConvolutionKernel.PackedWeights
        let qkvBias: Tensor?
        let out: ConvolutionKernel.PackedWeights
        let outBias: Tensor?
        let qkvConvolution: Conv2D
        let outConvolution: Conv2D

        init(_ a: Attention, channels: Int, weights w: (q: Tensor, qb: Tensor?, k: Tensor, kb: Tensor?, v: Tensor, vb: Tensor?, o: Tensor, ob: Tensor?)) {
            let inner = a.heads * (a.headDim ?? channels / a.heads)
            func oneByOne(_ out: Int, bias: Bool) -> Conv2D {
                Conv2D(out: out, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: bias)
            }
            qkvConvolution = oneByOne(3 * inner, bias: w.qb != nil)
            outConvolution = oneByOne(channels, bias: w.ob != nil)
            let stacked = Tensor(shape: [3 * inner, channels])
            for (index, part) in [w.q, w.k, w.v].enumerated() { (stacked.data + index * inner * channels).update(from: part.data, count: inner * channels) }
            qkv = ConvolutionKernel.PackedWeights(qkvConvolution, weight: stacked, inputChannels: channels)
            if let qb = w.qb, let kb = w.kb, let vb = w.vb {
                let bias = Tensor(shape: [3 * inner])
                for (index, part) in [qb, kb, vb].enumerated() { (bias.data + index * inner).update(from: part.data, count: inner) }
                qkvBias = bias
            } else {
                qkvBias = nil
            }
            out = ConvolutionKernel.PackedWeights(outConvolution, weight: w.o, inputChannels: inner)
            outBias = w.ob
        }
    }

    /// Self-attention on a feature map with packed projections. Every operand stays channel-major,
    /// so nothing is transposed: `[Q; K; V]ᵀ` is one 1x1 convolution, a query tile's scores are
    /// formed key-major (`Sᵀ = K Q_tileᵀ`, softmax down the columns), `O_tileᵀ = V_hᵀ Sᵀ`, and the
    /// output projection is a 1x1 convolution of `Oᵀ` that also applies the step's epilogue.
    static func runSpatial(_ a: Attention, x: Tensor, projections p: PackedProjections, out: Tensor, pool: ThreadPool,
                           epilogue: EpilogueContext?, probabilities: Tensor?) {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = height * width
        let headDim = a.headDim ?? channels / a.heads
        let heads = a.heads, inner = heads * headDim
        let qkv = Tensor(shape: [batch, 3 * inner, height, width])
        // The packed filters are all the 1x1 convolution reads; its `weight` argument is not used.
        ConvolutionKernel.conv2d(p.qkvConvolution, x: x, weight: p.qkv.storage, bias: p.qkvBias, out: qkv, pool: pool, packed: p.qkv)
        let attended = Tensor(shape: [batch, inner, height, width])
        let mr = GEMM.mr, nr = GEMM.nr
        // Per head, K_h (keys x headDim) and V_hᵀ (headDim x keys) as A panels, packed once.
        let keyPanels = (tokens + mr - 1) / mr, valuePanels = (headDim + mr - 1) / mr
        let kSize = keyPanels * mr * max(headDim, 1), vSize = valuePanels * mr * max(tokens, 1)
        let packedK = Tensor(shape: [batch * heads * kSize]), packedV = Tensor(shape: [batch * heads * vSize])
        let qd = qkv.data, pk = packedK.data, pv = packedV.data, ad = attended.data, pd = probabilities?.data
        func headRows(_ b: Int, _ part: Int, _ h: Int) -> UnsafeMutablePointer<Float> { qd + (b * 3 * inner + part * inner + h * headDim) * tokens }
        pool.parallelFor(batch * heads * 2) { task in
            let bh = task / 2, (b, h) = (bh / heads, bh % heads)
            if task % 2 == 0 {
                GEMM.packA(m0: 0, m1: tokens, k: headDim, a: MatrixView(headRows(b, 1, h), rowStride: 1, columnStride: tokens), into: pk + bh * kSize)
            } else {
                GEMM.packA(m0: 0, m1: headDim, k: tokens, a: MatrixView(headRows(b, 2, h), rowStride: tokens, columnStride: 1), into: pv + bh * vSize)
            }
        }
        let scale = 1 / Float(headDim).squareRoot()
        let queriesPerTile = 2 * nr
        let queryTiles = (tokens + queriesPerTile - 1) / queriesPerTile
        pool.parallelFor(batch * heads * queryTiles, withScratch: { tile, scratch in
            let qt = tile % queryTiles, bh = tile / queryTiles
            let (b, h) = (bh / heads, bh % heads)
            let t0 = qt * queriesPerTile, queries = min(queriesPerTile, tokens - t0)
            // Whole panels of queries: packB zero-fills past the last one, so every score column is defined.
            let lanes = (queries + nr - 1) / nr * nr
            let packedQ = scratch.region(1, count: lanes * max(headDim, 1))
            GEMM.packB(n0: 0, n1: queries, k: headDim, b: MatrixView(headRows(b, 0, h) + t0, rowStride: tokens, columnStride: 1), into: packedQ)
            let scores = scratch.region(3, count: tokens * lanes)
            GEMM.multiplyPacked(k: headDim, a: pk + bh * kSize, panels: 0..<keyPanels, rows: tokens, b: packedQ, columns: 0..<lanes,
                                c: scores, ldc: lanes, rowBias: nil)
            softmaxColumns(scores, rows: tokens, columns: lanes, scale: scale)
            if let pd {
                for q in 0..<queries {
                    let row = pd + (bh * tokens + t0 + q) * tokens
                    for key in 0..<tokens { row[key] = scores[key * lanes + q] }
                }
            }
            let packedP = scratch.region(1, count: lanes * max(tokens, 1))
            GEMM.packB(n0: 0, n1: lanes, k: tokens, b: MatrixView(scores, rowStride: lanes, columnStride: 1), into: packedP)
            GEMM.multiplyPacked(k: tokens, a: pv + bh * vSize, panels: 0..<valuePanels, rows: headDim, b: packedP, columns: 0..<queries,
                                c: ad + (b * inner + h * headDim) * tokens + t0, ldc: tokens, rowBias: nil)
        })
        ConvolutionKernel.conv2d(p.outConvolution, x: attended, weight: p.out.storage, bias: p.outBias, out: out, pool: pool, epilogue: epilogue,
                                 packed: p.out)
    }

    /// `runSpatial` on a feature map in the channel-blocked layout. Attention mixes every token
    /// with every other, so its operands are matrices, not maps: the input becomes the token-major
    /// operand of the Q, K, V projection (the copy the plain path makes when it packs that
    /// product's panels) and the output comes back to blocks. The caller applies the step's
    /// epilogue to `out` in the blocked layout.
    ///
    /// With `norm` (`NormAttentionFusion`), `x` is the norm's input: its scale and shift per
    /// channel are found first (from `statistics`, the producer's block statistics, when it
    /// recorded them) and applied in the copy.
    static func runSpatialBlocked(_ a: Attention, x: Tensor, projections p: PackedProjections, out: Tensor, pool: ThreadPool,
                                  probabilities: Tensor?, norm: NormalizationKernel.FusedNorm? = nil,
                                  statistics: UnsafeMutablePointer<Float>? = nil) {
        let plainInput = Tensor(shape: x.shape), plainOutput = Tensor(shape: out.shape)
        let affine = norm.map { $0.affine(x: x, pool: pool, statistics: statistics) }
        BlockedLayoutKernel.reorder(x: x, out: plainInput, to: .plain, pool: pool, affine: affine.map { UnsafePointer($0.data) })
        withExtendedLifetime(affine) {}
        runSpatial(a, x: plainInput, projections: p, out: plainOutput, pool: pool, epilogue: nil, probabilities: probabilities)
        BlockedLayoutKernel.reorder(x: plainOutput, out: out, to: .blocked16, pool: pool)
    }

    /// Softmax down each column of `s` (`rows` x `columns`, rows contiguous): the vector kernel
    /// (AVX-512 or AVX2), or libm's `expf`.
    static func softmaxColumns(_ s: UnsafeMutablePointer<Float>, rows: Int, columns: Int, scale: Float) {
        if GEMM.avx512 && columns % 16 == 0 {
            UNetKernelsAVX512.SoftmaxLoops.columns(s, rows: rows, columns: columns, ld: columns, scale: scale)
            return
        }
        if GEMM.avx2 && columns % 16 == 0 {
            UNetKernelsAVX2.SoftmaxLoops.columns(s, rows: rows, columns: columns, ld: columns, scale: scale)
            return
        }
        for c in 0..<columns {
            var largest = -Float.infinity
            for r in 0..<rows { largest = max(largest, s[r * columns + c]) }
            var total: Float = 0
            for r in 0..<rows {
                let e = expf(s[r * columns + c] * scale - largest * scale)
                s[r * columns + c] = e
                total += e
            }
            let inverse = 1 / total
            for r in 0..<rows { s[r * columns + c] *= inverse }
        }
    }

    static func run(_ a: Attention, x: Tensor, context: Tensor?, weights: (q: Tensor, qb: Tensor?, k: Tensor, kb: Tensor?, v: Tensor, vb: Tensor?, o: Tensor, ob: Tensor?),
                     out: Tensor, pool: ThreadPool, probabilities: Tensor? = nil) {
        let spatial = x.shape.count == 4
        let batch = x.shape[0]
        let channels = spatial ? x.shape[1] : x.shape[2]
        let tokens = spatial ? x.shape[2] * x.shape[3] : x.shape[1]
        let headDim = a.headDim ?? channels / a.heads
        let inner = a.heads * headDim
        let source = context ?? x
        let sourceSpatial = context == nil && spatial
        let keys = context?.shape[1] ?? tokens
        let sourceChannels = context?.shape[2] ?? channels

        let q = Tensor(shape: [batch, tokens, inner])
        let k = Tensor(shape: [batch, keys, inner])
        let v = Tensor(shape: [batch, keys, inner])
        let attended = Tensor(shape: [batch, tokens, inner])
        func project(_ src: Tensor, _ isSpatial: Bool, count: Int, width: Int, b: Int, _ w: Tensor, _ bias: Tensor?, into dst: Tensor) {
            // Tokens of a feature map are its columns: token t, channel c sits at c * count + t.
            let base = src.data + b * count * width
            let view = isSpatial ? MatrixView(base, rowStride: 1, columnStride: count) : MatrixView(base, rowStride: width, columnStride: 1)
            GEMM.multiply(m: count, n: inner, k: width, a: view, b: MatrixView(w.data, rowStride: 1, columnStride: width),
                          c: dst.data + b * count * inner, ldc: inner, bias: bias.map { .perColumn(UnsafePointer($0.data)) } ?? .none, pool: pool)
        }
        for b in 0..<batch {
            project(x, spatial, count: tokens, width: channels, b: b, weights.q, weights.qb, into: q)
            project(source, sourceSpatial, count: keys, width: sourceChannels, b: b, weights.k, weights.kb, into: k)
            project(source, sourceSpatial, count: keys, width: sourceChannels, b: b, weights.v, weights.vb, into: v)
        }

        let scale = 1 / Float(headDim).squareRoot()
        let queryTiles = (tokens + queriesPerTile - 1) / queriesPerTile
        let heads = a.heads
        let qd = q.data, kd = k.data, vd = v.data, ad = attended.data
        let pd = probabilities?.data
        // Every query tile of a head multiplies by the same K_hᵀ and V_h: packed into GEMM panels once.
        let nr = GEMM.nr
        let keyPanels = (keys + nr - 1) / nr, valuePanels = (headDim + nr - 1) / nr
        let kSize = keyPanels * nr * max(headDim, 1), vSize = valuePanels * nr * max(keys, 1)
        let packedK = Tensor(shape: [batch * heads * kSize]), packedV = Tensor(shape: [batch * heads * vSize])
        let pk = packedK.data, pv = packedV.data
        pool.parallelFor(batch * heads * (keyPanels + valuePanels)) { task in
            let panel = task % (keyPanels + valuePanels), bh = task / (keyPanels + valuePanels)
            let (b, h) = (bh / heads, bh % heads)
            let headOffset = h * headDim
            if panel < keyPanels {
                GEMM.packB(n0: panel * nr, n1: min(keys, (panel + 1) * nr), k: headDim,
                           b: MatrixView(kd + b * keys * inner + headOffset, rowStride: 1, columnStride: inner),
                           into: pk + bh * kSize + panel * nr * max(headDim, 1))
            } else {
                let p = panel - keyPanels
                GEMM.packB(n0: p * nr, n1: min(headDim, (p + 1) * nr), k: keys,
                           b: MatrixView(vd + b * keys * inner + headOffset, rowStride: inner, columnStride: 1),
                           into: pv + bh * vSize + p * nr * max(keys, 1))
            }
        }
        pool.parallelFor(batch * heads * queryTiles, withScratch: { tile, scratch in
            let qt = tile % queryTiles
            let h = (tile / queryTiles) % heads
            let b = tile / (queryTiles * heads)
            let t0 = qt * queriesPerTile
            let rows = min(queriesPerTile, tokens - t0)
            // Scores of this tile only: S = Q_tile K_hᵀ, [rows, keys].
            let scores = scratch.region(3, count: rows * keys)
            let headOffset = h * headDim
            GEMM.blockPackedB(m0: 0, m1: rows, n0: 0, n1: keys, k: headDim,
                              a: MatrixView(qd + (b * tokens + t0) * inner + headOffset, rowStride: inner, columnStride: 1),
                              packedB: pk + (b * heads + h) * kSize, c: scores, ldc: keys, bias: .none, accumulate: false, scratch: scratch)
            for r in 0..<rows {
                let row = scores + r * keys
                softmax(row, count: keys, scale: scale)
                if let pd { (pd + ((b * heads + h) * tokens + t0 + r) * keys).update(from: row, count: keys) }
            }
            // O_tile = P V_h, written into this head's columns of the attended rows.
            GEMM.blockPackedB(m0: 0, m1: rows, n0: 0, n1: headDim, k: keys, a: MatrixView(scores, rowStride: keys, columnStride: 1),
                              packedB: pv + (b * heads + h) * vSize, c: ad + (b * tokens + t0) * inner + headOffset, ldc: inner,
                              bias: .none, accumulate: false, scratch: scratch)
        })

        for b in 0..<batch {
            let o = MatrixView(attended.data + b * tokens * inner, rowStride: inner, columnStride: 1)
            if spatial {
                // out[c, t] = sum_i Wo[c, i] O[t, i] + bo[c]: written straight into NCHW.
                GEMM.multiply(m: channels, n: tokens, k: inner, a: MatrixView(weights.o.data, rowStride: inner, columnStride: 1),
                              b: MatrixView(attended.data + b * tokens * inner, rowStride: 1, columnStride: inner),
                              c: out.data + b * channels * tokens, ldc: tokens,
                              bias: weights.ob.map { .perRow(UnsafePointer($0.data)) } ?? .none, pool: pool)
            } else {
                GEMM.multiply(m: tokens, n: channels, k: inner, a: o, b: MatrixView(weights.o.data, rowStride: 1, columnStride: inner),
                              c: out.data + b * tokens * channels, ldc: channels,
                              bias: weights.ob.map { .perColumn(UnsafePointer($0.data)) } ?? .none, pool: pool)
            }
        }
    }
}
