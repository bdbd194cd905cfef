/// The transpose of one L1-resident 16x16 tile of the blocked head (`FewOutputsBlocked`), per ISA.
/// AVX2: by 8x8 quarters (`BlockedReorderQuarters`), which fit its 16 ymm registers; `wholeTile`
/// is for the AVX-512 build.
enum HeadTileTranspose {
    @inline(__always)
    static func toPlain(tile: UnsafeMutablePointer<Float>, blocked: UnsafePointer<Float>, wholeTile: Bool) {
        BlockedReorderQuarters.block(plain: tile, blocked: UnsafeMutablePointer(mutating: blocked), plane: 16, pixels: 0..<16, toBlocked: false)
    }
}
