/// A 1x1 convolution to at most 4 channels (a segmentation head) reading the channel-blocked
/// layout NCHW16c and writing plain NCHW, compiled for AVX-512 and, through a symbolic link in
/// `UNetKernelsAVX2`, for AVX2 (callers check the CPU first): the last step of a blocked region
/// converts to plain itself, so no reorder runs before it.
///
/// 16 pixels at a time: each input block's 16x16 tile is transposed into an L1 scratch tile
/// (`HeadTileTranspose`: in registers, whole or by quarters as `wholeTiles` says, where the ISA
/// has the registers), whose channel rows every output then sums in channel order from its bias,
/// as `FewOutputsPointwise` does on the plain layout: bit-identical outputs.
public enum FewOutputsBlocked {
    /// `dst[co][p] = bias[co] + sum_ci w(co, ci) * x(ci, p)` for pixels `range`, with `x(ci, p) =
    /// src[(ci / 16 * plane + p) * 16 + ci % 16]` and `w(co, ci) = weight[co * outputStride + ci * inputStride]`.
    @inline(never)
    public static func run(src: UnsafePointer<Float>, inputBlocks: Int, plane: Int, weight: UnsafePointer<Float>, outputStride: Int,
                           inputStride: Int, bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>, outputs: Int, range: Range<Int>,
                           wholeTiles: Bool) {
        let outputs = min(outputs, 4)
        var p = range.lowerBound
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { scratch in
            guard let tile = scratch.baseAddress else { return }
            while p + 16 <= range.upperBound {
                var a00 = SIMD16<Float>(repeating: bias?[0] ?? 0)
                var a10 = SIMD16<Float>(repeating: outputs > 1 ? bias?[1] ?? 0 : 0)
                var a20 = SIMD16<Float>(repeating: outputs > 2 ? bias?[2] ?? 0 : 0)
                var a30 = SIMD16<Float>(repeating: outputs > 3 ? bias?[3] ?? 0 : 0)
                for kb in 0..<inputBlocks {
                    // tile[c][i]: channel 16 kb + c of pixel p + i.
                    HeadTileTranspose.toPlain(tile: tile, blocked: src + (kb * plane + p) * 16, wholeTile: wholeTiles)
                    let w = weight + kb * 16 * inputStride
                    for c in 0..<16 {
                        let row = UnsafeRawPointer(tile + 16 * c)
                        let v0 = row.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
                        do { let s = SIMD16<Float>(repeating: w[c * inputStride]); a00.addProduct(s, v0) }
                        if outputs > 1 {
                            let s = SIMD16<Float>(repeating: w[1 * outputStride + c * inputStride]); a10.addProduct(s, v0)
                        }
                        if outputs > 2 {
                            let s = SIMD16<Float>(repeating: w[2 * outputStride + c * inputStride]); a20.addProduct(s, v0)
                        }
                        if outputs > 3 {
                            let s = SIMD16<Float>(repeating: w[3 * outputStride + c * inputStride]); a30.addProduct(s, v0)
                        }
                    }
                }
                let out = UnsafeMutableRawPointer(dst + p)
                out.storeBytes(of: a00, toByteOffset: 0, as: SIMD16<Float>.self)
                if outputs > 1 { out.storeBytes(of: a10, toByteOffset: 1 * plane * 4, as: SIMD16<Float>.self) }
                if outputs > 2 { out.storeBytes(of: a20, toByteOffset: 2 * plane * 4, as: SIMD16<Float>.self) }
                if outputs > 3 { out.storeBytes(of: a30, toByteOffset: 3 * plane * 4, as: SIMD16<Float>.self) }
                p += 16
            }
        }
        // The last pixels one at a time, in the same order over the input channels.
        while p < range.upperBound {
            for co in 0..<outputs {
                var acc = bias?[co] ?? 0
                for ci in 0..<(inputBlocks * 16) {
                    acc.addProduct(weight[co * outputStride + ci * inputStride], src[(ci / 16 * plane + p) * 16 + ci % 16])
                }
                dst[co * plane + p] = acc
            }
            p += 1
        }
    }
}
