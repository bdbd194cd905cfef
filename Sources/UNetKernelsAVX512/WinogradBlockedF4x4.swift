/// The data transforms of Winograd F(4x4, 3x3) in the channel-blocked layout NCHW16c; callers
/// check the CPU first.
///
/// Each SIMD lane is one of a block's 16 channels, so a tile's 6x6 input patch is 36 vectors loaded
/// where they lie and nothing is permuted (`WinogradF4x4`, on plain planes, spends a third of its
/// transform time rebuilding tiles from lanes). The arithmetic is `WinogradF4x4`'s own terms
/// (`inputTerms`, `outputTerms`, `outputPixels`) in the same order (Bᵀ down the patch's columns,
/// then along its rows; Aᵀ down, then along), so a blocked convolution computes the same values
/// as a plain one.
///
/// One source compiled twice: here for AVX-512, and through a symbolic link in `UNetKernelsAVX2`,
/// where each 16-lane vector is a pair of ymm registers.
public enum WinogradBlockedF4x4 {
    /// Tiles one `inputTiles` call transforms at most: their column-transformed patch columns
    /// (`4 * maximumTiles + 2`, six vectors each) fill `scratch`, which stays in L1.
    public static let maximumTiles = 8

    /// Floats of scratch `inputTiles` needs.
    public static let scratchFloats = (4 * maximumTiles + 2) * 6 * 16

    /// `Bᵀ d B` of tiles `tx0 ..< tx0 + count` (`count <= maximumTiles`) of tile row `ty` of one
    /// block plane (`h x w` pixels of 16 channels, padding 1: patch `(ty, tx)` starts at pixel
    /// `(4 ty - 1, 4 tx - 1)`, zero outside the plane). Value `(i, k)` of the `t`-th tile goes to
    /// `v[(6i + k) * positionStride + 16 t ..< + 16]`.
    @inline(never)
    public static func inputTiles(plane: UnsafePointer<Float>, h: Int, w: Int, ty: Int, tx0: Int, count: Int,
                                  v: UnsafeMutablePointer<Float>, positionStride: Int, scratch: UnsafeMutablePointer<Float>) {
        let y0 = 4 * ty - 1, x0 = 4 * tx0 - 1
        let columns = 4 * count + 2
        // Bᵀ down each of the tiles' patch columns (neighbouring patches share two): six vectors per column.
        let raw = UnsafeRawPointer(plane)
        var validRows = 0  // bit k: patch row k lies in the plane
        for k in 0..<6 where y0 + k >= 0 && y0 + k < h { validRows |= 1 << k }
        let t = UnsafeMutableRawPointer(scratch)
        for c in 0..<columns {
            let x = x0 + c
            let out = t + c * 6 * 64
            guard x >= 0 && x < w else {
                for i in 0..<6 { out.storeBytes(of: SIMD16<Float>(), toByteOffset: i * 64, as: SIMD16<Float>.self) }
                continue
            }
            @inline(__always) func load(_ k: Int) -> SIMD16<Float> {
                validRows >> k & 1 != 0 ? raw.loadUnaligned(fromByteOffset: ((y0 + k) * w + x) * 64, as: SIMD16<Float>.self) : SIMD16<Float>()
            }
            let v = WinogradF4x4.inputTerms(load(0), load(1), load(2), load(3), load(4), load(5))
            out.storeBytes(of: v.0, as: SIMD16<Float>.self)
            out.storeBytes(of: v.1, toByteOffset: 64, as: SIMD16<Float>.self)
            out.storeBytes(of: v.2, toByteOffset: 128, as: SIMD16<Float>.self)
            out.storeBytes(of: v.3, toByteOffset: 192, as: SIMD16<Float>.self)
            out.storeBytes(of: v.4, toByteOffset: 256, as: SIMD16<Float>.self)
            out.storeBytes(of: v.5, toByteOffset: 320, as: SIMD16<Float>.self)
        }
        // Bᵀ along each patch row i: columns 4 tile .. 4 tile + 5 of the column-transformed row i.
        let vraw = UnsafeMutableRawPointer(v)
        let step = positionStride * 4
        for tile in 0..<count {
            for i in 0..<6 {
                @inline(__always) func load(_ j: Int) -> SIMD16<Float> {
                    UnsafeRawPointer(t).loadUnaligned(fromByteOffset: ((4 * tile + j) * 6 + i) * 64, as: SIMD16<Float>.self)
                }
                let v = WinogradF4x4.inputTerms(load(0), load(1), load(2), load(3), load(4), load(5))
                let out = vraw + 6 * i * step + tile * 64
                out.storeBytes(of: v.0, as: SIMD16<Float>.self)
                out.storeBytes(of: v.1, toByteOffset: step, as: SIMD16<Float>.self)
                out.storeBytes(of: v.2, toByteOffset: 2 * step, as: SIMD16<Float>.self)
                out.storeBytes(of: v.3, toByteOffset: 3 * step, as: SIMD16<Float>.self)
                out.storeBytes(of: v.4, toByteOffset: 4 * step, as: SIMD16<Float>.self)
                out.storeBytes(of: v.5, toByteOffset: 5 * step, as: SIMD16<Float>.self)
            }
        }
    }

    /// `clamp(Aᵀ m A + bias, lower, upper)` of tiles `tx0 ..< tx0 + count` of tile row `ty`: value
    /// `(i, k)` of the `t`-th tile is `m[(6i + k) * positionStride + 16 t ..< + 16]`; output pixel
    /// `(a, b)` of tile `(ty, tx)` goes to pixel `(4 ty + a, 4 tx + b)` of the block plane `dst`,
    /// `wo` pixels wide. `bias` (16 floats) nil is zero.
    @inline(never)
    public static func outputTiles(m: UnsafePointer<Float>, positionStride: Int, bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>,
                                   wo: Int, ty: Int, tx0: Int, count: Int, lower: Float, upper: Float) {
        let bv = bias.map { UnsafeRawPointer($0).loadUnaligned(as: SIMD16<Float>.self) } ?? SIMD16<Float>()
        let lo = SIMD16<Float>(repeating: lower), hi = SIMD16<Float>(repeating: upper)
        let step = positionStride * 4
        let out = UnsafeMutableRawPointer(dst)
        for tile in 0..<count {
            let raw = UnsafeRawPointer(m) + tile * 64
            @inline(__always) func load(_ position: Int) -> SIMD16<Float> {
                raw.loadUnaligned(fromByteOffset: position * step, as: SIMD16<Float>.self)
            }
            // Aᵀ down the six rows, column k at a time: s[a][k].
            @inline(__always) func column(_ k: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
                WinogradF4x4.outputTerms(load(k), load(6 + k), load(12 + k), load(18 + k), load(24 + k), load(30 + k))
            }
            let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
            let pixel0 = (4 * ty * wo + 4 * (tx0 + tile)) * 64
            @inline(__always) func row(_ s0: SIMD16<Float>, _ s1: SIMD16<Float>, _ s2: SIMD16<Float>, _ s3: SIMD16<Float>,
                                       _ s4: SIMD16<Float>, _ s5: SIMD16<Float>, _ a: Int) {
                var (y0, y1, y2, y3) = WinogradF4x4.outputPixels(s0, s1, s2, s3, s4, s5, bias: bv)
                y0.replace(with: lo, where: y0 .< lo); y0.replace(with: hi, where: hi .< y0)
                y1.replace(with: lo, where: y1 .< lo); y1.replace(with: hi, where: hi .< y1)
                y2.replace(with: lo, where: y2 .< lo); y2.replace(with: hi, where: hi .< y2)
                y3.replace(with: lo, where: y3 .< lo); y3.replace(with: hi, where: hi .< y3)
                let o = pixel0 + a * wo * 64
                out.storeBytes(of: y0, toByteOffset: o, as: SIMD16<Float>.self)
                out.storeBytes(of: y1, toByteOffset: o + 64, as: SIMD16<Float>.self)
                out.storeBytes(of: y2, toByteOffset: o + 128, as: SIMD16<Float>.self)
                out.storeBytes(of: y3, toByteOffset: o + 192, as: SIMD16<Float>.self)
            }
            row(c0.0, c1.0, c2.0, c3.0, c4.0, c5.0, 0)
            row(c0.1, c1.1, c2.1, c3.1, c4.1, c5.1, 1)
            row(c0.2, c1.2, c2.2, c3.2, c4.2, c5.2, 2)
            row(c0.3, c1.3, c2.3, c3.3, c4.3, c5.3, 3)
        }
    }
}
