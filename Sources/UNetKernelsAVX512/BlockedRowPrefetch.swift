/// Rows a blocked 1x1 kernel call prefetches while its tiles run: `lines` contiguous cache lines
/// from `base` in each of `blocks` block planes `blockStride` floats apart. A fused depthwise
/// convolution reads them next; asked for a line per step of k, they arrive while the tiles
/// compute instead of stalling the depthwise pass. ISA-neutral: compiled into both kernel modules
/// (linked into `UNetKernelsAVX2`).
public struct BlockedRowPrefetch {
    public var base: UnsafePointer<Float>
    public var blockStride: Int
    public var lines: Int
    public var blocks: Int

    public init(base: UnsafePointer<Float>, blockStride: Int, lines: Int, blocks: Int) {
        (self.base, self.blockStride, self.lines, self.blocks) = (base, blockStride, lines, blocks)
    }
}
