import XCTest
@testable import UNetIR
@testable import UNetPasses
@testable import UNetRuntime

/// Winograd chosen for the 3x3 convolutions where it pays, outputs unchanged within 1e-5.
final class ConvolutionAlgorithmSelectionTests: XCTestCase {
    func testClassicUNetRunsThe3x3ConvolutionsOfItsLargeMapsByWinograd() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/bench/classic_unet.json",
                                                            passes: [BatchNormFolding(), EpilogueFusion(), ConvolutionAlgorithmSelection()])
        var chosen: [String] = [], direct: [String] = []
        for s in after.steps where s.live {
            guard case .conv2d(let c) = s.op, c.kernel == (3, 3) else { continue }
            if s.algorithm == .winograd4x4 { chosen.append(s.name) } else { direct.append(s.name) }
        }
        // 18 3x3 convolutions: only the first, which reads 3 channels, stays direct; the bottleneck's
        // 16x16 map (16 tiles, the 12x16 kernel) is the smallest chosen.
        XCTAssertEqual(direct, ["encoders.0.conv1"])
        XCTAssertEqual(chosen.count, 17)
        XCTAssertTrue(chosen.contains("encoders.3.conv2"))
        XCTAssertTrue(chosen.contains("connector.conv2"))
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testShapesTheKernelCannotTileStayDirect() {
        let c = Conv2D(out: 32, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true)
        XCTAssertTrue(ConvolutionAlgorithmSelection.winogradApplies(c, input: [1, 32, 16, 16], output: [1, 32, 16, 16]))
        XCTAssertFalse(ConvolutionAlgorithmSelection.winogradApplies(c, input: [1, 32, 16, 20], output: [1, 32, 16, 20]), "width not a multiple of 16")
        XCTAssertFalse(ConvolutionAlgorithmSelection.winogradApplies(c, input: [1, 32, 18, 16], output: [1, 32, 18, 16]), "height not a multiple of 4")
        var strided = c
        strided.stride = (2, 2)
        XCTAssertFalse(ConvolutionAlgorithmSelection.winogradApplies(strided, input: [1, 32, 32, 32], output: [1, 32, 16, 16]))
        var grouped = c
        grouped.groups = 2
        XCTAssertFalse(ConvolutionAlgorithmSelection.winogradApplies(grouped, input: [1, 32, 16, 16], output: [1, 32, 16, 16]))
        var dilated = c
        dilated.dilation = (2, 2)
        dilated.pad = (2, 2)
        XCTAssertFalse(ConvolutionAlgorithmSelection.winogradApplies(dilated, input: [1, 32, 16, 16], output: [1, 32, 16, 16]))
    }
}
