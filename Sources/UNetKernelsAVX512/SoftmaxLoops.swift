/// Softmax of one contiguous row, compiled for AVX-512 and, through a symbolic link in
/// `UNetKernelsAVX2`, for AVX2 (callers check the CPU first): the row of
/// attention scores every query tile normalises, where a libm `expf` call per score cost more
/// than both score GEMMs.
public enum SoftmaxLoops {
    /// `row[j] = e^(s row[j] - m) / sum_i e^(s row[i] - m)` with `m = max_j s row[j]`, for `j < count`
    /// and a scale `s > 0`.
    /// Sums run in 16 lanes, then across them in a fixed order: the result does not depend on where
    /// the row sits or which thread runs it.
    @inline(never)
    public static func row(_ row: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        let raw = UnsafeMutableRawPointer(row)
        let full = count & ~15
        var maxima = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i < full {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            maxima.replace(with: v, where: maxima .< v)
            i += 16
        }
        var largest = maxima.max()
        for j in full..<count { largest = Swift.max(largest, row[j]) }
        let shift = SIMD16<Float>(repeating: largest * scale)
        let s = SIMD16<Float>(repeating: scale)
        var sums = SIMD16<Float>()
        i = 0
        while i < full {
            let e = ActivationLoops.exp(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * s - shift)
            raw.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            sums += e
            i += 16
        }
        var tail = SIMD16<Float>()
        var tailValues = SIMD16<Float>(repeating: -.infinity)
        for j in full..<count { tailValues[j - full] = row[j] * scale - shift[0] }
        if full < count {
            tail = ActivationLoops.exp(tailValues).replacing(with: 0, where: tailValues .== -.infinity)
            for j in full..<count { row[j] = tail[j - full] }
        }
        let inverse = SIMD16<Float>(repeating: 1 / (sums + tail).sum())
        i = 0
        while i < full {
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * inverse, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        for j in full..<count { row[j] *= inverse[0] }
    }

    /// The softmax down each column of `s` (`rows` x `columns`, row stride `ld`, `columns` a multiple
    /// of 16): scores stored key-major, one query per column, so sixteen queries are normalised at
    /// once and every reduction is a lane-wise one, summed over the rows in order.
    @inline(never)
    public static func columns(_ s: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ld: Int, scale: Float) {
        let raw = UnsafeMutableRawPointer(s)
        let scales = SIMD16<Float>(repeating: scale)
        var column = 0
        while column < columns {
            var maxima = SIMD16<Float>(repeating: -.infinity)
            for r in 0..<rows {
                let v = raw.loadUnaligned(fromByteOffset: 4 * (r * ld + column), as: SIMD16<Float>.self)
                maxima.replace(with: v, where: maxima .< v)
            }
            let shift = maxima * scales
            var sums = SIMD16<Float>()
            for r in 0..<rows {
                let offset = 4 * (r * ld + column)
                let e = ActivationLoops.exp(raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self) * scales - shift)
                raw.storeBytes(of: e, toByteOffset: offset, as: SIMD16<Float>.self)
                sums += e
            }
            let inverse = 1 / sums
            for r in 0..<rows {
                let offset = 4 * (r * ld + column)
                raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self) * inverse, toByteOffset: offset, as: SIMD16<Float>.self)
            }
            column += 16
        }
    }
}
