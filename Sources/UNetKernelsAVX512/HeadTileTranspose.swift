/// The transpose of one L1-resident 16x16 tile of the blocked head (`FewOutputsBlocked`), per ISA.
/// AVX-512: the whole tile in registers (`BlockedReorderAVX512`), or by 8x8 quarters
/// (`BlockedReorderQuarters`) where 512-bit permutes run as two halves (`wholeTile` false).
enum HeadTileTranspose {
    @inline(__always)
    static func toPlain(tile: UnsafeMutablePointer<Float>, blocked: UnsafePointer<Float>, wholeTile: Bool) {
        if wholeTile {
            BlockedReorderAVX512.block(plain: tile, blocked: UnsafeMutablePointer(mutating: blocked), plane: 16, pixels: 0..<16, toBlocked: false)
        } else {
            BlockedReorderQuarters.block(plain: tile, blocked: UnsafeMutablePointer(mutating: blocked), plane: 16, pixels: 0..<16, toBlocked: false)
        }
    }
}
