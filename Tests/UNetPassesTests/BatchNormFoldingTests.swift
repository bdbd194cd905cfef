import XCTest
import UNetIR
@testable import UNetPasses

final class BatchNormFoldingTests: XCTestCase {
    func testEveryBatchNormAfterAConvIsFolded() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/unet_classic.json", passes: [BatchNormFolding()])
        XCTAssertEqual(PassTestSupport.count(before) { if case .batchNorm = $0 { true } else { false } }, 18)
        XCTAssertEqual(PassTestSupport.count(after) { if case .batchNorm = $0 { true } else { false } }, 0)
        let conv = try XCTUnwrap(after.steps.first { $0.live && $0.name == "encoders.0.conv1" })
        XCTAssertEqual(conv.absorbed, ["encoders.0.bn1"])
        XCTAssertEqual(conv.weights.count, 2, "a folded conv gains a bias")
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testTransposedConvolutionFoldingIsExact() throws {
        // mobile_unet has depthwise convs followed by BN; shuffle_unet grouped ones.
        for graph in ["graphs/mobile_unet.json", "graphs/shuffle_unet.json"] {
            let (before, after) = try PassTestSupport.optimized(graph, passes: [BatchNormFolding()])
            XCTAssertLessThan(PassTestSupport.count(after) { if case .batchNorm = $0 { true } else { false } },
                              PassTestSupport.count(before) { if case .batchNorm = $0 { true } else { false } }, graph)
            try PassTestSupport.assertSameOutputs(before, after)
        }
    }
}
