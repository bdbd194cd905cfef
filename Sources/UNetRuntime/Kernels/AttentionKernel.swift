import Foundation
import UNetIR
import UNetKernelsAVX512

/// Multi-head attention with its projections. Scores are formed a tile of queries at a time (two
/// GEMMs and a softmax per tile), so no more than a tile of the score matrix exists per thread.
enum AttentionKernel {
    /// A multiple of the AVX-512 microkernel's 6 rows.
    static let queriesPerTile = 48

    /// `row = softmax(scale * row)`: the AVX-512 row kernel where the CPU has it, else libm's `expf`.
    static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        if GEMM.avx512 {
            SoftmaxAVX512.row(row, count: count, scale: scale)
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
