import UNetIR

/// linear, matmul, geglu: row-major GEMMs over the last axis.
enum DenseKernel {
    /// `out[r, o] = sum_i x[r, i] W[o, i] + b[o]` over every leading index r.
    static func linear(x: Tensor, weight: Tensor, bias: Tensor?, out: Tensor, pool: ThreadPool) {
        let inner = x.shape[x.shape.count - 1]
        let outer = x.count / inner
        let units = out.shape[out.shape.count - 1]
        if outer <= 4 {
            // A few rows (a time embedding's projections): packing the whole weight matrix for the
            // GEMM would cost more than reading it once, so each output is one dot product.
            let xd = x.data, wd = weight.data, od = out.data, bd = bias?.data
            let unitsPerTile = 64
            pool.parallelFor((units + unitsPerTile - 1) / unitsPerTile, elements: weight.count) { tile in
                for o in (tile * unitsPerTile)..<min(units, (tile + 1) * unitsPerTile) {
                    for r in 0..<outer {
                        od[r * units + o] = dot(xd + r * inner, wd + o * inner, count: inner) + (bd?[o] ?? 0)
                    }
                }
            }
            return
        }
        GEMM.multiply(m: outer, n: units, k: inner, a: MatrixView(x.data, rowStride: inner, columnStride: 1),
                      b: MatrixView(weight.data, rowStride: 1, columnStride: inner), c: out.data, ldc: units,
                      bias: bias.map { .perColumn(UnsafePointer($0.data)) } ?? .none, pool: pool)
    }

    /// `sum_i a[i] b[i]` in 16 lanes, then across them in a fixed order.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            lanes += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        var total = lanes.sum()
        while i < count {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    static func matmul(a: Tensor, b: Tensor, transposeB: Bool, out: Tensor, pool: ThreadPool) {
        let (m, k) = (a.shape[a.shape.count - 2], a.shape[a.shape.count - 1])
        let n = out.shape[out.shape.count - 1]
        let batchShape = Array(out.shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        for index in 0..<batches {
            let ao = Broadcast.offset(of: index, in: batchShape, for: aBatch) * m * k
            let bo = Broadcast.offset(of: index, in: batchShape, for: bBatch) * k * n
            let bv = transposeB ? MatrixView(b.data + bo, rowStride: 1, columnStride: k) : MatrixView(b.data + bo, rowStride: n, columnStride: 1)
            GEMM.multiply(m: m, n: n, k: k, a: MatrixView(a.data + ao, rowStride: k, columnStride: 1), b: bv,
                          c: out.data + index * m * n, ldc: n, pool: pool)
        }
    }

    /// diffusers' GEGLU: `h, gate = (x Wᵀ + b).chunk(2, -1)`; `h * gelu(gate)`.
    static func geglu(x: Tensor, weight: Tensor, bias: Tensor, out: Tensor, pool: ThreadPool) {
        var projectedShape = x.shape
        let units = out.shape[out.shape.count - 1]
        projectedShape[projectedShape.count - 1] = 2 * units
        let projected = Tensor(shape: projectedShape)
        linear(x: x, weight: weight, bias: bias, out: projected, pool: pool)
        let rows = out.count / units
        let pd = projected.data, od = out.data
        pool.parallelFor((rows + 63) / 64) { tile in
            for r in (tile * 64)..<min(rows, tile * 64 + 64) {
                let src = pd + r * 2 * units
                let dst = od + r * units
                for j in 0..<units { dst[j] = src[j] * Activation.gelu(src[units + j]) }
            }
        }
    }
}

/// numpy broadcasting helpers.
enum Broadcast {
    /// Offset (in elements of `shape`) of the element that broadcasts to linear `index` of `outShape`.
    static func offset(of index: Int, in outShape: [Int], for shape: [Int]) -> Int {
        var rest = index
        var offset = 0
        var step = 1
        let lead = outShape.count - shape.count
        for axis in stride(from: outShape.count - 1, through: 0, by: -1) {
            let coordinate = rest % outShape[axis]
            rest /= outShape[axis]
            let own = axis - lead
            if own >= 0 {
                if shape[own] != 1 { offset += coordinate * step }
                step *= shape[own]
            }
        }
        return offset
    }

    /// Per-axis strides of `shape` seen through broadcasting to `outShape` (0 on broadcast axes).
    static func strides(of shape: [Int], to outShape: [Int]) -> [Int] {
        var result = [Int](repeating: 0, count: outShape.count)
        var step = 1
        let lead = outShape.count - shape.count
        for axis in stride(from: outShape.count - 1, through: lead, by: -1) {
            let own = axis - lead
            result[axis] = shape[own] == 1 ? 0 : step
            step *= shape[own]
        }
        return result
    }
}
