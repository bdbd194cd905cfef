import XCTest
@testable import UNetIR
@testable import UNetPasses
@testable import UNetRuntime

/// Winograd F(4x4, 3x3) against the im2col convolution (itself checked against plain loops) on
/// shapes that exercise every edge of the tiling: tile rows that cross panels, partial panels,
/// output channels that do not fill a microkernel panel, padding 0 and 2, batches.
final class WinogradConvolutionTests: XCTestCase {
    var rng = SplitMix64(seed: 5)

    func random(_ shape: [Int]) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = rng.nextNormal() }
        return t
    }

    func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
        var diff = 0.0, norm = 0.0
        for i in 0..<a.count {
            diff += Double(a[i] - b[i]) * Double(a[i] - b[i])
            norm += Double(b[i]) * Double(b[i])
        }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    func testMatchesTheDirectConvolution() throws {
        try XCTSkipUnless(WinogradConvolution.available, "Winograd kernels need AVX2 or AVX-512")
        // (input shape, output channels, pad)
        let cases: [([Int], Int, Int)] = [
            ([1, 16, 16, 16], 16, 1),    // one panel of 16 tiles
            ([2, 20, 16, 16], 64, 1),    // 16 tiles: panel pairs through the 12x16 kernel, one panel left over, two images
            ([2, 20, 24, 48], 13, 1),    // 12 tiles per row: rows cross panels; 13 channels: a partial panel
            ([1, 32, 64, 256], 40, 1),   // 64 tiles per row: two panels per row
            ([1, 17, 22, 18], 8, 0),     // no padding: 20x16 output
            ([1, 18, 14, 30], 7, 2),     // padding 2: 16x32 output
            ([1, 24, 8, 16], 30, 1),     // 8 tiles: half a block of 16 lanes
            // Filters over 1 MB: work tiles of several panels (the filters are read once for all of them).
            ([1, 96, 32, 32], 96, 1),    // two panels in one work tile (also shared by the threads)
            ([2, 64, 24, 48], 120, 1),   // the whole image: panels of 32, 32 and 8 tiles
            ([1, 40, 64, 64], 200, 1),   // 256 tiles: four panels per work tile at 1 thread, fewer at 2 and 3
        ]
        for (shape, cout, pad) in cases {
            let c = Conv2D(out: cout, kernel: (3, 3), stride: (1, 1), pad: (pad, pad), dilation: (1, 1), groups: 1, bias: true)
            let outShape = try OpSemantics.outputShape(of: .conv2d(c), inputs: [shape])
            XCTAssertTrue(ConvolutionAlgorithmSelection.winogradApplies(c, input: shape, output: outShape), "\(shape)")
            let x = random(shape), w = random([cout, shape[1], 3, 3]), b = random([cout])
            let direct = Tensor(shape: outShape)
            ConvolutionKernel.conv2d(c, x: x, weight: w, bias: b, out: direct, pool: ThreadPool(threads: 1))
            let transformed = WinogradConvolution.TransformedWeights(weight: w, outputChannels: cout, inputChannels: shape[1])
            var outputs: [Tensor] = []
            for threads in [1, 2, 3] {
                let out = Tensor(shape: outShape)
                for i in 0..<out.count { out[i] = .nan }
                WinogradConvolution.conv2d(c, x: x, weights: transformed, bias: b, out: out, pool: ThreadPool(threads: threads), epilogue: nil)
                outputs.append(out)
            }
            let error = relativeL2(outputs[0], direct)
            print("winograd \(shape) -> \(outShape): relative L2 vs direct \(error)")
            // F(4x4, 3x3) rounds in its transforms: a few float32 ulps of the output's scale, measured below 1e-6.
            XCTAssertLessThan(error, 5e-6, "\(shape) -> \(outShape): relative L2 \(error)")
            XCTAssertFalse(outputs[0].values.contains { $0.isNaN }, "\(shape): an output was not written")
            for k in 1..<outputs.count {
                let differing = (0..<outputs[0].count).filter { outputs[0][$0].bitPattern != outputs[k][$0].bitPattern }.count
                XCTAssertEqual(differing, 0, "\(shape): \(differing) outputs differ between 1 and \(k + 1) threads")
            }
        }
    }

    /// The fused epilogue (residual add, ReLU) and the statistics a following GroupNorm reads.
    func testEpilogueAndStatistics() throws {
        try XCTSkipUnless(WinogradConvolution.available, "Winograd kernels need AVX2 or AVX-512")
        let shape = [1, 24, 32, 32]
        let c = Conv2D(out: 32, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: false)
        let outShape = [1, 32, 32, 32]
        let x = random(shape), w = random([32, 24, 3, 3]), residual = random(outShape)
        let blocks = 32 * 32 / Epilogue.statisticsBlock
        let statistics = Tensor(zeros: [32 * blocks * 2])
        let context = EpilogueContext(ops: [.add(operand: 1), .unary(.relu), .statistics], operands: [x, residual], statistics: statistics.data)
        let pool = ThreadPool(threads: 2)
        let fused = Tensor(shape: outShape)
        WinogradConvolution.conv2d(c, x: x, weights: WinogradConvolution.TransformedWeights(weight: w, outputChannels: 32, inputChannels: 24),
                                   bias: nil, out: fused, pool: pool, epilogue: context)
        let reference = Tensor(shape: outShape)
        ConvolutionKernel.conv2d(c, x: x, weight: w, bias: nil, out: reference, pool: pool)
        for i in 0..<reference.count { reference[i] = max(0, reference[i] + residual[i]) }
        XCTAssertLessThan(relativeL2(fused, reference), 5e-6)
        let fromStatistics = Tensor(shape: outShape), direct = Tensor(shape: outShape)
        NormalizationKernel.groupNorm(groups: 8, eps: 1e-5, x: fused, weight: nil, bias: nil, out: direct, pool: pool)
        NormalizationKernel.groupNorm(groups: 8, eps: 1e-5, x: fused, weight: nil, bias: nil, out: fromStatistics, pool: pool,
                                      statistics: statistics.data)
        XCTAssertLessThan(relativeL2(fromStatistics, direct), 1e-6)
    }
}
