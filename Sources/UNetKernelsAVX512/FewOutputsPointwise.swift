import CPrefetch

/// A 1x1 convolution with very few output channels (a UNet's head: 32 -> 1 or 2 classes), compiled
/// for AVX-512 and, through a symbolic link in `UNetKernelsAVX2`, for AVX2 (callers check the CPU
/// first). The GEMM path would pack the whole input and fill a
/// 6-row panel for one or two rows; here each block of 64 pixels of every input channel is read
/// once from memory and summed into each output channel while in L1.
public enum FewOutputsPointwise {
    /// `dst[co][p] = bias[co] + sum_ci w(co, ci) * src[ci * pixels + p]` for pixels `range`, summed
    /// over the input channels in order, with `w(co, ci) = weight[co * outputStride + ci * inputStride]`
    /// (plain filters, or the 6-row GEMM panel a plan stores).
    @inline(never)
    public static func run(src: UnsafePointer<Float>, inputs: Int, pixels: Int, weight: UnsafePointer<Float>, outputStride: Int, inputStride: Int,
                           bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>, outputs: Int, range: Range<Int>) {
        var p = range.lowerBound
        while p + 64 <= range.upperBound {
            for co in 0..<outputs {
                let b = SIMD16<Float>(repeating: bias?[co] ?? 0)
                var a0 = b, a1 = b, a2 = b, a3 = b
                let w = weight + co * outputStride
                for ci in 0..<inputs {
                    let x = UnsafeRawPointer(src + ci * pixels + p)
                    if co == 0 {
                        // Each channel's row is read 256 bytes at a time: too short a stream for the
                        // hardware prefetcher, so the block four ahead is asked for here.
                        for line in 0..<4 { unetc_prefetch(x + 1024 + 64 * line) }
                    }
                    let s = SIMD16<Float>(repeating: w[ci * inputStride])
                    a0.addProduct(s, x.loadUnaligned(as: SIMD16<Float>.self))
                    a1.addProduct(s, x.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
                    a2.addProduct(s, x.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self))
                    a3.addProduct(s, x.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self))
                }
                let out = UnsafeMutableRawPointer(dst + co * pixels + p)
                out.storeBytes(of: a0, as: SIMD16<Float>.self)
                out.storeBytes(of: a1, toByteOffset: 64, as: SIMD16<Float>.self)
                out.storeBytes(of: a2, toByteOffset: 128, as: SIMD16<Float>.self)
                out.storeBytes(of: a3, toByteOffset: 192, as: SIMD16<Float>.self)
            }
            p += 64
        }
        // The last pixels one at a time, in the same order over the input channels.
        while p < range.upperBound {
            for co in 0..<outputs {
                var acc = bias?[co] ?? 0
                for ci in 0..<inputs { acc.addProduct(weight[co * outputStride + ci * inputStride], src[ci * pixels + p]) }
                dst[co * pixels + p] = acc
            }
            p += 1
        }
    }
}
