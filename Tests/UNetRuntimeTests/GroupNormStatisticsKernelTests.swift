import XCTest
@testable import UNetIR
@testable import UNetPasses
@testable import UNetRuntime

/// Block statistics recorded by a producer's epilogue give the norm the statistics it would compute itself.
final class GroupNormStatisticsKernelTests: XCTestCase {
    /// A tensor whose mean dwarfs its spread (where sum-of-squares formulas cancel), recorded in uneven
    /// tiles as a convolution would, normalised both ways.
    func testRecordedStatisticsMatchTheNormsOwnPass() {
        let pool = ThreadPool(threads: 2)
        let (batch, channels, h, w) = (2, 8, 7, 9)
        let pixels = h * w
        let x = Tensor(shape: [batch, channels, h, w])
        var rng = SplitMix64(seed: 11)
        for i in 0..<x.count { x[i] = 1000 + Float(i % channels) + 0.01 * rng.nextNormal() }
        let blocks = (pixels + Epilogue.statisticsBlock - 1) / Epilogue.statisticsBlock
        let statistics = Tensor(zeros: [batch * channels * blocks * 2])
        let context = EpilogueContext(ops: [.statistics], operands: [], statistics: statistics.data)
        for b in 0..<batch {
            // Tiles of 32 then 16 pixels (block-aligned, like the convolution's chunks), channels split unevenly.
            var p0 = 0
            var width = 32
            while p0 < pixels {
                let p1 = min(pixels, p0 + width)
                EpilogueKernel.apply(context, out: x.data, channels: channels, pixels: pixels, batch: b, channelRange: 0..<3, pixelRange: p0..<p1)
                EpilogueKernel.apply(context, out: x.data, channels: channels, pixels: pixels, batch: b, channelRange: 3..<channels, pixelRange: p0..<p1)
                p0 = p1
                width = 16
            }
        }
        for groups in [1, 2, 8] {
            let direct = Tensor(shape: x.shape), recorded = Tensor(shape: x.shape)
            NormalizationKernel.groupNorm(groups: groups, eps: 1e-5, x: x, weight: nil, bias: nil, out: direct, pool: pool)
            NormalizationKernel.groupNorm(groups: groups, eps: 1e-5, x: x, weight: nil, bias: nil, out: recorded, pool: pool,
                                          statistics: statistics.data)
            var worst: Float = 0
            for i in 0..<x.count { worst = max(worst, abs(direct[i] - recorded[i])) }
            // Outputs are O(1) after normalisation; the inputs carry only ~5 significant digits of spread.
            XCTAssertLessThan(worst, 2e-3, "groups \(groups)")
        }
    }
}
