import XCTest
import UNetIR
@testable import UNetPasses

final class EpilogueFusionTests: XCTestCase {
    func isUnary(_ op: Op) -> Bool { if case .unary = op { true } else { false } }

    func testActivationsResidualsAndFiLMJoinTheirProducers() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/test/all_kernels_small.json",
                                                            passes: [CommonSubexpressionElimination(), ConditioningHoisting(), EpilogueFusion()])
        let fused = after.steps.filter { $0.live && !$0.epilogue.isEmpty }
        XCTAssertTrue(fused.contains { $0.epilogue.contains(.unary(.silu)) && { if case .groupNorm = $0.op { true } else { false } }($0) },
                      "GroupNorm + SiLU")
        XCTAssertTrue(fused.contains { $0.epilogue.contains { if case .film = $0 { true } else { false } } }, "conv + FiLM")
        XCTAssertTrue(fused.contains { $0.epilogue.contains { if case .add = $0 { true } else { false } } }, "conv + residual add")
        XCTAssertLessThan(PassTestSupport.count(after, isUnary), PassTestSupport.count(before, isUnary))
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testDDPMResBlocksFuseCompletely() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/ddpm_unet.json",
                                                            passes: PassManager.standard.passes)
        // Every SiLU after a GroupNorm is fused; only silu(temb) remains, once, thanks to CSE.
        XCTAssertLessThanOrEqual(PassTestSupport.count(after) { $0 == .unary(.silu) }, 1)
        XCTAssertLessThan(after.liveSteps.count, before.liveSteps.count * 2 / 3)
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testAProducerReadTwiceIsNotFused() throws {
        let (_, after) = try PassTestSupport.optimized("graphs/unet_classic.json", passes: [BatchNormFolding(), EpilogueFusion()])
        // Encoder outputs feed both the pool and the decoder: their ReLU is fused, and both readers see the post-ReLU value.
        let conv = try XCTUnwrap(after.steps.first { $0.live && $0.name == "encoders.0.conv2" })
        XCTAssertEqual(conv.epilogue, [.unary(.relu)])
    }
}

