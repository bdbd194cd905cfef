import UNetIR

/// Data movement: concat, slice, reshape, transpose, pixel/channel shuffle, pad, crop, token layouts.
enum LayoutKernel {
    static func copy(_ x: Tensor, into out: Tensor) {
        out.data.update(from: x.data, count: x.count)
    }

    static func concat(axis: Int, inputs: [Tensor], out: Tensor, pool: ThreadPool) {
        let a = axis < 0 ? axis + out.shape.count : axis
        let outer = out.shape[..<a].reduce(1, *)
        let inner = out.shape[(a + 1)...].reduce(1, *)
        let outRow = out.shape[a] * inner
        var offset = 0
        let od = out.data
        for input in inputs {
            let row = input.shape[a] * inner
            let src = input.data, start = offset
            pool.parallelFor(outer) { o in
                (od + o * outRow + start).update(from: src + o * row, count: row)
            }
            offset += row
        }
    }

    static func slice(axis: Int, start: Int, x: Tensor, out: Tensor) {
        let outer = x.shape[..<axis].reduce(1, *)
        let inner = x.shape[(axis + 1)...].reduce(1, *)
        let inRow = x.shape[axis] * inner, outRow = out.shape[axis] * inner
        for o in 0..<outer { (out.data + o * outRow).update(from: x.data + o * inRow + start * inner, count: outRow) }
    }

    static func transpose(perm: [Int], x: Tensor, out: Tensor, pool: ThreadPool) {
        let rank = x.shape.count
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        let strides = perm.map { inStrides[$0] }
        let shape = out.shape
        let width = shape[rank - 1]
        let rows = out.count / width
        let last = strides[rank - 1]
        let xd = x.data, od = out.data
        pool.parallelFor((rows + 255) / 256) { tile in
            for r in (tile * 256)..<min(rows, tile * 256 + 256) {
                var rest = r, offset = 0
                for axis in stride(from: rank - 2, through: 0, by: -1) {
                    offset += (rest % shape[axis]) * strides[axis]
                    rest /= shape[axis]
                }
                let dst = od + r * width
                for j in 0..<width { dst[j] = xd[offset + j * last] }
            }
        }
    }

    static func pixelShuffle(factor r: Int, x: Tensor, out: Tensor) {
        let (n, c, h, w) = (out.shape[0], out.shape[1], x.shape[2], x.shape[3])
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<r {
                    for j in 0..<r {
                        let src = x.data + ((b * c * r * r) + ch * r * r + i * r + j) * h * w
                        for y in 0..<h {
                            let dst = out.data + ((b * c + ch) * h * r + y * r + i) * w * r + j
                            for xx in 0..<w { dst[xx * r] = src[y * w + xx] }
                        }
                    }
                }
            }
        }
    }

    static func channelShuffle(groups g: Int, x: Tensor, out: Tensor) {
        let n = x.shape[0], c = x.shape[1]
        let plane = x.count / (n * c)
        let perGroup = c / g
        for b in 0..<n {
            for i in 0..<g {
                for j in 0..<perGroup {
                    // Output channel j*g + i takes input channel i*perGroup + j.
                    (out.data + (b * c + j * g + i) * plane).update(from: x.data + (b * c + i * perGroup + j) * plane, count: plane)
                }
            }
        }
    }

    /// `lanes` is 16 for the channel-blocked layout, whose planes hold 16-channel pixels: padding
    /// moves whole pixels, so the same loops serve both layouts.
    static func pad(_ p: Pad, x: Tensor, out: Tensor, lanes: Int = 1, pool: ThreadPool) {
        let (h, w) = (x.shape[2], x.shape[3])
        let (ho, wo) = (out.shape[2], out.shape[3])
        let xd = x.data, od = out.data
        let value = Float(p.value)
        pool.parallelFor(x.shape[0] * x.shape[1] / lanes, elements: x.count + out.count) { plane in
            let src = xd + plane * h * w * lanes, dst = od + plane * ho * wo * lanes
            if p.mode == .zero {
                // Rows of the fill value around each input row's copy.
                for oy in 0..<ho {
                    let row = dst + oy * wo * lanes, iy = oy - p.top
                    let first = max(0, p.left), last = min(wo, p.left + w)
                    guard iy >= 0 && iy < h && first < last else {
                        row.update(repeating: value, count: wo * lanes)
                        continue
                    }
                    row.update(repeating: value, count: first * lanes)
                    (row + first * lanes).update(from: src + (iy * w + (first - p.left)) * lanes, count: (last - first) * lanes)
                    (row + last * lanes).update(repeating: value, count: (wo - last) * lanes)
                }
                return
            }
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var iy = oy - p.top, ix = ox - p.left
                    switch p.mode {
                    case .zero:
                        for lane in 0..<lanes {
                            dst[(oy * wo + ox) * lanes + lane] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? src[(iy * w + ix) * lanes + lane] : value
                        }
                        continue
                    case .reflect:
                        if iy < 0 { iy = -iy } else if iy >= h { iy = 2 * (h - 1) - iy }
                        if ix < 0 { ix = -ix } else if ix >= w { ix = 2 * (w - 1) - ix }
                    case .replicate:
                        iy = min(max(iy, 0), h - 1)
                        ix = min(max(ix, 0), w - 1)
                    }
                    (dst + (oy * wo + ox) * lanes).update(from: src + (iy * w + ix) * lanes, count: lanes)
                }
            }
        }
    }

    static func crop(_ c: Crop, x: Tensor, out: Tensor) {
        let (h, w) = (x.shape[2], x.shape[3])
        let top = c.top ?? (h - c.height) / 2
        let left = c.left ?? (w - c.width) / 2
        for plane in 0..<(x.shape[0] * x.shape[1]) {
            for y in 0..<c.height {
                (out.data + (plane * c.height + y) * c.width).update(from: x.data + plane * h * w + (top + y) * w + left, count: c.width)
            }
        }
    }

    /// `[B, C, H, W]` to `[B, H*W, C]`, and back.
    static func tokens(x: Tensor, out: Tensor, toTokens: Bool, pool: ThreadPool) {
        let b = x.shape[0]
        let (rows, cols) = toTokens ? (x.shape[1], x.count / (b * x.shape[1])) : (x.shape[1], x.shape[2])
        for i in 0..<b {
            let view = Tensor(shape: [rows, cols])
            view.data.update(from: x.data + i * rows * cols, count: rows * cols)
            let t = Tensor(shape: [cols, rows])
            transpose(perm: [1, 0], x: view, out: t, pool: pool)
            (out.data + i * rows * cols).update(from: t.data, count: rows * cols)
        }
    }
}
