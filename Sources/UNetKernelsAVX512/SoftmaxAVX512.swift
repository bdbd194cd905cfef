/// Softmax of one contiguous row, compiled for AVX-512 (callers check the CPU first): the row of
/// attention scores every query tile normalises, where a libm `expf` call per score cost more
/// than both score GEMMs.
public enum SoftmaxAVX512 {
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
            let e = ActivationAVX512.exp(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * s - shift)
            raw.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            sums += e
            i += 16
        }
        var tail = SIMD16<Float>()
        var tailValues = SIMD16<Float>(repeating: -.infinity)
        for j in full..<count { tailValues[j - full] = row[j] * scale - shift[0] }
        if full < count {
            tail = ActivationAVX512.exp(tailValues).replacing(with: 0, where: tailValues .== -.infinity)
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
}
