import Foundation
import UNetIR

/// Scalar activation functions, shared by the elementwise kernel and fused users (GEGLU).
enum Activation {
    @inline(__always) static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    @inline(__always) static func geluTanh(_ x: Float) -> Float {
        0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}

/// Unary and broadcasting binary elementwise ops, and FiLM.
enum ElementwiseKernel {
    static let chunk = 1 << 14

    /// Copies each chunk and applies the activation in place while the chunk is in cache; the
    /// activation itself is the one fused epilogues use (`EpilogueKernel.unary`).
    static func unary(_ op: UnaryOp, x: Tensor, out: Tensor, pool: ThreadPool) {
        let count = x.count
        let xd = x.data, od = out.data
        pool.parallelFor((count + chunk - 1) / chunk) { tile in
            let start = tile * chunk
            let end = min(count, start + chunk)
            if xd != od { (od + start).update(from: xd + start, count: end - start) }
            EpilogueKernel.unary(op, od, start..<end)
        }
    }

    static func binary(_ op: BinaryOp, a: Tensor, b: Tensor, out: Tensor, pool: ThreadPool) {
        let shape = out.shape
        let width = shape.last ?? 1
        let rows = out.count / width
        let sa = Broadcast.strides(of: a.shape, to: shape)
        let sb = Broadcast.strides(of: b.shape, to: shape)
        let la = sa.last ?? 0, lb = sb.last ?? 0
        let ad = a.data, bd = b.data, od = out.data
        let rowsPerTile = max(1, chunk / max(width, 1))
        pool.parallelFor((rows + rowsPerTile - 1) / rowsPerTile) { tile in
            for r in (tile * rowsPerTile)..<min(rows, tile * rowsPerTile + rowsPerTile) {
                var rest = r
                var oa = 0, ob = 0
                for axis in stride(from: shape.count - 2, through: 0, by: -1) {
                    let coordinate = rest % shape[axis]
                    rest /= shape[axis]
                    oa += coordinate * sa[axis]
                    ob += coordinate * sb[axis]
                }
                let pa = ad + oa, pb = bd + ob, po = od + r * width
                switch op {
                case .add: for j in 0..<width { po[j] = pa[j * la] + pb[j * lb] }
                case .sub: for j in 0..<width { po[j] = pa[j * la] - pb[j * lb] }
                case .mul: for j in 0..<width { po[j] = pa[j * la] * pb[j * lb] }
                case .div: for j in 0..<width { po[j] = pa[j * la] / pb[j * lb] }
                }
            }
        }
    }

    static func film(x: Tensor, e: Tensor, out: Tensor, pool: ThreadPool) {
        let channels = x.shape[1]
        let plane = x.count / (x.shape[0] * channels)
        let xd = x.data, ed = e.data, od = out.data
        pool.parallelFor(x.shape[0] * channels) { p in
            let n = p / channels, c = p % channels
            let scale = 1 + ed[n * 2 * channels + c]
            let shift = ed[n * 2 * channels + channels + c]
            let src = xd + p * plane, dst = od + p * plane
            for i in 0..<plane { dst[i] = src[i] * scale + shift }
        }
    }

    static func softmax(axis: Int, x: Tensor, out: Tensor, pool: ThreadPool) {
        let a = axis < 0 ? axis + x.shape.count : axis
        let length = x.shape[a]
        let inner = x.shape[(a + 1)...].reduce(1, *)
        let outer = x.count / (length * inner)
        let xd = x.data, od = out.data
        pool.parallelFor(outer) { o in
            for i in 0..<inner {
                let base = o * length * inner + i
                var m = -Float.infinity
                for j in 0..<length { m = max(m, xd[base + j * inner]) }
                var total: Float = 0
                for j in 0..<length {
                    let e = expf(xd[base + j * inner] - m)
                    od[base + j * inner] = e
                    total += e
                }
                let inverse = 1 / total
                for j in 0..<length { od[base + j * inner] *= inverse }
            }
        }
    }
}
