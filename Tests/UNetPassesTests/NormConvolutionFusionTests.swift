import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// GroupNorms (and the SiLU after them) computed by the im2col of the blocked 3x3 convolution
/// that reads them: which norms the pass fuses, that outputs are bit-identical to the separate
/// norm at any thread count (with the producer's block statistics and without them), and that
/// plans marking a norm the convolution cannot compute are refused.
final class NormConvolutionFusionTests: XCTestCase {
    /// The norms fused into the convolution that reads them.
    func fusedNorms(_ g: OptimizedGraph) -> [String] {
        BlockedPlanSupport.fusedSteps(g, { if case .groupNorm = $0 { true } else { false } },
                                      readBy: { if case .conv2d = $0 { true } else { false } })
    }

    func unfused(_ result: Compiler.Result) -> Compiler.Result { BlockedPlanSupport.unfusing(result, fusedNorms(result.graph)) }

    func testDiffusionUNetResnetsNormaliseInTheirSmallMapConvolutions() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try BlockedPlanSupport.compiledBlockedDDPM()
        let g = result.graph
        let names = fusedNorms(g)
        // Both norms of every resnet on the 8x8 and 4x4 maps (im2col convolutions); the 32x32 and
        // 16x16 ones feed Winograd convolutions and stay separate.
        let levels = ["down_blocks.2.resnets.", "down_blocks.3.resnets.", "mid_block.resnets.", "up_blocks.0.resnets.", "up_blocks.1.resnets."]
        XCTAssertEqual(names.count, 24, "\(names)")
        XCTAssertTrue(names.allSatisfy { n in levels.contains { n.hasPrefix($0) } && (n.hasSuffix(".norm1") || n.hasSuffix(".norm2")) }, "\(names)")
        XCTAssertTrue(result.log.contains { $0.0 == "norm-convolution-fusion" && $0.1 == 24 }, "\(result.log)")
        for (i, s) in g.steps.enumerated() where s.live && s.fusedIntoConsumer { XCTAssertNil(result.memory.offsets[i], s.name) }
        XCTAssertTrue(fusedNorms(try BlockedPlanSupport.compiled("graphs/bench/ddpm_unet.json", blocked: false).graph).isEmpty)
    }

    func testFusedOutputsEqualTheSeparateNormsAtAnyThreadCount() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let fused = try BlockedPlanSupport.compiledBlockedDDPM()
        try BlockedPlanSupport.assertBitIdentical(fused, to: unfused(fused), "ddpm")
        // Without the producers' block statistics the im2col finds the moments itself.
        var g = fused.graph
        for name in fusedNorms(g) {
            guard let i = g.steps.firstIndex(where: { $0.name == name }) else { continue }
            g.steps[g.steps[i].inputs[0]].epilogue.removeAll { $0 == .statistics }
        }
        let own = Compiler.Result(graph: g, memory: MemoryPlan.plan(g), log: fused.log)
        try BlockedPlanSupport.assertBitIdentical(own, to: unfused(own), "ddpm without producer statistics")
    }

    func testPlansRefuseNormsTheConvolutionCannotCompute() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        try BlockedPlanSupport.roundTrip(try BlockedPlanSupport.compiledBlockedDDPM()) { loaded in
            XCTAssertEqual(fusedNorms(loaded.program.graph).count, 24)
            // A norm on the 16x16 map, read by a Winograd convolution.
            var winograd = loaded.manifest
            guard let w = winograd.steps.firstIndex(where: { $0.name == "down_blocks.1.resnets.0.norm2" }) else { return XCTFail("no norm2") }
            winograd.steps[w].fusedIntoConsumer = true
            XCTAssertTrue(winograd.validate()?.contains("cannot compute it") ?? false, winograd.validate() ?? "accepted")
            // A fused norm that also records statistics, which the copy does not.
            var recording = loaded.manifest
            guard let a = recording.steps.firstIndex(where: { $0.name == "down_blocks.2.resnets.0.norm1" }) else { return XCTFail("no norm1") }
            XCTAssertTrue(recording.steps[a].fusedIntoConsumer == true)
            recording.steps[a].epilogue.append(.statistics)
            XCTAssertTrue(recording.validate()?.contains("cannot compute it") ?? false, recording.validate() ?? "accepted")
        }
    }
}
