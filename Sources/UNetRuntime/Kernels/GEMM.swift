import UNetKernelsAVX512
import UNetKernelsAVX2

/// Single-precision matrix multiply `C = A·B (+ bias)` on strided operands, tiled for the thread pool.
///
/// Each tile owns a block of C and sums over the whole of K in order, so the result does not
/// depend on how tiles are spread over threads. Operands are packed into microkernel panels
/// (6 rows and 32 columns with AVX-512, 4 and 16 portable) so the microkernel reads both contiguously.
public struct MatrixView {
    public var base: UnsafePointer<Float>
    /// Distance between consecutive rows and columns, in elements.
    public var rowStride: Int
    public var columnStride: Int

    public init(_ base: UnsafePointer<Float>, rowStride: Int, columnStride: Int) {
        self.base = base
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    @inline(__always) func at(_ r: Int, _ c: Int) -> Float { base[r * rowStride + c * columnStride] }
}

public enum GEMM {
    static let avx512 = CPUFeatures.isa == .avx512
    static let avx2 = CPUFeatures.isa == .avx2
    /// Microkernel tile: 6x32 with AVX-512, 6x16 with AVX2, 4x16 portable.
    static let mr = avx512 ? Microkernel6x32AVX512.rows : avx2 ? Microkernel6x16AVX2.rows : 4
    static let nr = avx512 ? Microkernel6x32AVX512.columns : avx2 ? Microkernel6x16AVX2.columns : 16
    public static let blockM = mr == 6 ? 72 : 64
    public static let blockN = 128

    public enum Bias {
        case none
        /// One value per row of C.
        case perRow(UnsafePointer<Float>)
        /// One value per column of C.
        case perColumn(UnsafePointer<Float>)
    }

    /// `C[m, n] = sum_k A[m, k] B[k, n] + bias`, with C row-major (`ldc`). Runs tiles on `pool`.
    public static func multiply(m: Int, n: Int, k: Int, a: MatrixView, b: MatrixView, c: UnsafeMutablePointer<Float>, ldc: Int,
                                bias: Bias = .none, accumulate: Bool = false, pool: ThreadPool?) {
        let tilesN = (n + blockN - 1) / blockN
        // Every tile packs its rows of A and its columns of B: taller tiles pack B fewer times, as long
        // as the threads still get a few tiles each and the packed rows stay in L2.
        let wanted = pool.map { $0.threads == 1 ? 1 : 2 * $0.threads } ?? 1
        var rowsPerTile = blockM
        while rowsPerTile < m, tilesN * ((m + 2 * rowsPerTile - 1) / (2 * rowsPerTile)) >= wanted,
              2 * rowsPerTile * max(k, 1) * MemoryLayout<Float>.size <= 512 * 1024 { rowsPerTile *= 2 }
        let tilesM = (m + rowsPerTile - 1) / rowsPerTile
        let body: (Int, Scratch) -> Void = { tile, scratch in
            let tm = tile / tilesN
            let tn = tile % tilesN
            block(m0: tm * rowsPerTile, m1: min(m, tm * rowsPerTile + rowsPerTile), n0: tn * blockN, n1: min(n, tn * blockN + blockN), k: k,
                  a: a, b: b, c: c, ldc: ldc, bias: bias, accumulate: accumulate, scratch: scratch)
        }
        if let pool {
            pool.parallelFor(tilesM * tilesN, withScratch: body)
        } else {
            let scratch = Scratch()
            for t in 0..<(tilesM * tilesN) { body(t, scratch) }
        }
    }

    /// One tile of C, computed on the calling thread.
    static func block(m0: Int, m1: Int, n0: Int, n1: Int, k: Int, a: MatrixView, b: MatrixView,
                             c: UnsafeMutablePointer<Float>, ldc: Int, bias: Bias, accumulate: Bool, scratch: Scratch) {
        let panelsN = (n1 - n0 + nr - 1) / nr
        let packedB = scratch.region(1, count: panelsN * nr * max(k, 1))
        packB(n0: n0, n1: n1, k: k, b: b, into: packedB)
        blockPackedB(m0: m0, m1: m1, n0: n0, n1: n1, k: k, a: a, packedB: packedB, c: c, ldc: ldc, bias: bias, accumulate: accumulate, scratch: scratch)
    }

    /// Columns `n0..<n1` of B as microkernel panels `[panel][k][nr]`, zero past `n1`: for operands
    /// several tiles share, packed once.
    static func packB(n0: Int, n1: Int, k: Int, b: MatrixView, into packedB: UnsafeMutablePointer<Float>) {
        let kk = max(k, 1)
        let panelsN = (n1 - n0 + nr - 1) / nr
        for p in 0..<panelsN {
            let dst = packedB + p * nr * kk
            let c0 = n0 + p * nr
            let width = min(nr, n1 - c0)
            if b.rowStride == 1 && b.columnStride != 1 {
                for j in 0..<width {
                    let src = b.base + (c0 + j) * b.columnStride
                    for kIndex in 0..<k { dst[kIndex * nr + j] = src[kIndex] }
                }
                for kIndex in 0..<k { for j in width..<nr { dst[kIndex * nr + j] = 0 } }
                continue
            }
            for kIndex in 0..<k {
                let src = b.base + kIndex * b.rowStride + c0 * b.columnStride
                let out = dst + kIndex * nr
                if b.columnStride == 1 {
                    for j in 0..<width { out[j] = src[j] }
                } else {
                    for j in 0..<width { out[j] = src[j * b.columnStride] }
                }
                for j in width..<nr { out[j] = 0 }
            }
        }
    }

    /// Rows `m0..<m1` of A as microkernel panels `[panel][k][mr]`, zero past `m1`: for operands
    /// several products share, packed once.
    static func packA(m0: Int, m1: Int, k: Int, a: MatrixView, into packedA: UnsafeMutablePointer<Float>) {
        let kk = max(k, 1)
        let panelsM = (m1 - m0 + mr - 1) / mr
        // Each operand is packed reading along whichever of its axes is contiguous (a token-major view
        // of a feature map, a transposed weight), so no packing loop strides through memory.
        for p in 0..<panelsM {
            let dst = packedA + p * mr * kk
            let rows = max(0, min(mr, m1 - (m0 + p * mr)))
            if a.rowStride == 1 && rows == mr {
                let src = a.base + (m0 + p * mr)
                for kIndex in 0..<k {
                    let column = src + kIndex * a.columnStride
                    for r in 0..<mr { dst[kIndex * mr + r] = column[r] }
                }
                continue
            }
            for r in 0..<mr {
                let row = m0 + p * mr + r
                if row < m1 {
                    let src = a.base + row * a.rowStride
                    for kIndex in 0..<k { dst[kIndex * mr + r] = src[kIndex * a.columnStride] }
                } else {
                    for kIndex in 0..<k { dst[kIndex * mr + r] = 0 }
                }
            }
        }
    }

    /// One tile of C against B columns `n0..<n1` already packed by `packB` (`packedB` is their first panel).
    static func blockPackedB(m0: Int, m1: Int, n0: Int, n1: Int, k: Int, a: MatrixView, packedB: UnsafePointer<Float>,
                             c: UnsafeMutablePointer<Float>, ldc: Int, bias: Bias, accumulate: Bool, scratch: Scratch) {
        let rows = m1 - m0
        let cols = n1 - n0
        let panelsM = (rows + mr - 1) / mr
        let panelsN = (cols + nr - 1) / nr
        let kk = max(k, 1)
        let packedA = scratch.region(0, count: panelsM * mr * kk)
        packA(m0: m0, m1: m1, k: k, a: a, into: packedA)
        for pm in 0..<panelsM {
            for pn in 0..<panelsN {
                let row0 = m0 + pm * mr, col0 = n0 + pn * nr
                let rows = min(mr, m1 - row0), cols = min(nr, n1 - col0)
                var rowBias: UnsafePointer<Float>?
                var columnBias: UnsafePointer<Float>?
                switch bias {
                case .none: break
                case .perRow(let p): rowBias = p + row0
                case .perColumn(let p): columnBias = p + col0
                }
                if avx512 {
                    Microkernel6x32AVX512.run(k: k, a: packedA + pm * mr * kk, b: packedB + pn * nr * kk, c: c + row0 * ldc + col0, ldc: ldc,
                                              rows: rows, cols: cols, rowBias: rowBias, columnBias: columnBias, accumulate: accumulate)
                } else if avx2 {
                    Microkernel6x16AVX2.run(k: k, a: packedA + pm * mr * kk, b: packedB + pn * nr * kk, c: c + row0 * ldc + col0, ldc: ldc,
                                            rows: rows, cols: cols, rowBias: rowBias, columnBias: columnBias, accumulate: accumulate)
                } else {
                    micro4x16(k: k, a: packedA + pm * mr * kk, b: packedB + pn * nr * kk, c: c, ldc: ldc, row0: row0, rows: rows,
                              col0: col0, cols: cols, bias: bias, accumulate: accumulate)
                }
            }
        }
    }

    /// `C[row, p] = sum_k A[row, k] B[k, p] + rowBias[row]` for the rows of A panels `panels`
    /// (`a` is panel 0, `rows` rows in all) and the columns `columns` of B panels (`b` holds them
    /// from `columns.lowerBound`); `c` is row 0, column 0. Both operands are packed already:
    /// convolution filters and im2col panels, attention's per-head operands.
    @inline(__always)
    static func multiplyPacked(k: Int, a aPanels: UnsafePointer<Float>, panels: Range<Int>, rows: Int, b packedB: UnsafePointer<Float>,
                               columns: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int, rowBias: UnsafePointer<Float>?) {
        let p0 = columns.lowerBound, width = columns.count
        let panelsN = (width + nr - 1) / nr
        if panelsN > 1 && panelsN * k * nr * MemoryLayout<Float>.size > 512 * 1024 {
            // B larger than L2 (deep maps, long K): each B panel stays in L2 while the A panels
            // stream past it, instead of every A panel pulling all of B from L3 again.
            for pn in 0..<panelsN {
                let col0 = p0 + pn * nr
                for panel in panels {
                    let row0 = panel * mr
                    microkernel(k: k, a: aPanels + panel * k * mr, b: packedB + pn * k * nr, c: c + row0 * ldc + col0, ldc: ldc,
                                rows: min(mr, rows - row0), cols: min(nr, columns.upperBound - col0), rowBias: rowBias.map { $0 + row0 })
                }
            }
            return
        }
        var panel = panels.lowerBound
        while panel < panels.upperBound {
            let row0 = panel * mr
            let a = aPanels + panel * k * mr
            let bias = rowBias.map { $0 + row0 }
            if avx512 && width <= Microkernel12x16AVX512.columns && panel + 1 < panels.upperBound {
                Microkernel12x16AVX512.run(k: k, a: a, a2: a + k * mr, b: packedB, ldb: nr, c: c + row0 * ldc + p0, ldc: ldc,
                                           rows: min(2 * mr, rows - row0), cols: width, rowBias: bias)
                panel += 2
                continue
            }
            for pn in 0..<panelsN {
                let col0 = p0 + pn * nr
                microkernel(k: k, a: a, b: packedB + pn * k * nr, c: c + row0 * ldc + col0, ldc: ldc,
                            rows: min(mr, rows - row0), cols: min(nr, columns.upperBound - col0), rowBias: bias)
            }
            panel += 1
        }
    }

    /// `multiplyPacked` for a 1x1 convolution whose B rows are read where they lie (row `kk` of
    /// column `p` at `source[kk * ldb + p]`, `p` counted from `columns.lowerBound`): the first A
    /// panel packs the whole panels into `packedB` as it multiplies them, so the input's loads
    /// overlap its products; the others read the packed panels. `packedB` already holds the last,
    /// partial panel. AVX-512 only.
    static func multiplyPointwise(k: Int, a aPanels: UnsafePointer<Float>, panels: Range<Int>, rows: Int, source: UnsafePointer<Float>, ldb: Int,
                                  packedB: UnsafeMutablePointer<Float>, columns: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                  rowBias: UnsafePointer<Float>?) {
        let p0 = columns.lowerBound, width = columns.count
        let full = width / nr, panelsN = (width + nr - 1) / nr
        let first = panels.lowerBound, row0 = first * mr
        let a = aPanels + first * k * mr
        let bias = rowBias.map { $0 + row0 }
        for pn in 0..<full {
            Microkernel6x32AVX512.runPacking(k: k, a: a, source: source + pn * nr, ldb: ldb, packed: packedB + pn * k * nr,
                                             c: c + row0 * ldc + p0 + pn * nr, ldc: ldc, rows: min(mr, rows - row0), rowBias: bias)
        }
        if full < panelsN {
            microkernel(k: k, a: a, b: packedB + full * k * nr, c: c + row0 * ldc + p0 + full * nr, ldc: ldc,
                        rows: min(mr, rows - row0), cols: width - full * nr, rowBias: bias)
        }
        multiplyPacked(k: k, a: aPanels, panels: (first + 1)..<panels.upperBound, rows: rows, b: packedB, columns: columns, c: c, ldc: ldc,
                       rowBias: rowBias)
    }

    /// About `parts` ranges of A panels, each a whole number of pairs (the 12x16 kernel takes two
    /// panels at a time): the split of output channels when small maps share one B.
    static func panelPairSplits(panels: Int, parts: Int) -> [Range<Int>] {
        var perSplit = max(1, (panels + parts - 1) / parts)
        perSplit += perSplit & 1
        return stride(from: 0, to: panels, by: perSplit).map { $0..<min(panels, $0 + perSplit) }
    }

    /// One microkernel call on packed panels, with an optional per-row bias, writing C.
    @inline(__always)
    static func microkernel(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                            rows: Int, cols: Int, rowBias: UnsafePointer<Float>?) {
        if avx512 {
            Microkernel6x32AVX512.run(k: k, a: a, b: b, c: c, ldc: ldc, rows: rows, cols: cols, rowBias: rowBias, columnBias: nil,
                                      accumulate: false)
        } else if avx2 {
            Microkernel6x16AVX2.run(k: k, a: a, b: b, c: c, ldc: ldc, rows: rows, cols: cols, rowBias: rowBias, columnBias: nil, accumulate: false)
        } else {
            micro4x16(k: k, a: a, b: b, c: c, ldc: ldc, row0: 0, rows: rows, col0: 0, cols: cols,
                      bias: rowBias.map { .perRow($0) } ?? .none, accumulate: false)
        }
    }

    @inline(__always)
    static func micro4x16(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                          row0: Int, rows: Int, col0: Int, cols: Int, bias: Bias, accumulate: Bool) {
        var c0 = SIMD16<Float>(repeating: 0)
        var c1 = SIMD16<Float>(repeating: 0)
        var c2 = SIMD16<Float>(repeating: 0)
        var c3 = SIMD16<Float>(repeating: 0)
        let bv = UnsafeRawPointer(b)
        for kIndex in 0..<k {
            let v = bv.loadUnaligned(fromByteOffset: kIndex * 64, as: SIMD16<Float>.self)  // nr == 16 on this path
            let ap = a + kIndex * 4
            c0 = c0 + ap[0] * v
            c1 = c1 + ap[1] * v
            c2 = c2 + ap[2] * v
            c3 = c3 + ap[3] * v
        }
        @inline(__always) func store(_ value: SIMD16<Float>, _ r: Int) {
            let out = c + (row0 + r) * ldc + col0
            var v = value
            switch bias {
            case .none: break
            case .perRow(let p): v = v + SIMD16<Float>(repeating: p[row0 + r])
            case .perColumn(let p):
                for j in 0..<cols { v[j] += p[col0 + j] }
            }
            if accumulate {
                for j in 0..<cols { out[j] += v[j] }
            } else if cols == 16 {
                UnsafeMutableRawPointer(out).storeBytes(of: v, as: SIMD16<Float>.self)
            } else {
                for j in 0..<cols { out[j] = v[j] }
            }
        }
        store(c0, 0)
        if rows > 1 { store(c1, 1) }
        if rows > 2 { store(c2, 2) }
        if rows > 3 { store(c3, 3) }
    }
}
