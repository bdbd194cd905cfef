import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// GroupNorms computed by the blocked self-attention that reads them: which norms the pass fuses,
/// that outputs are bit-identical to the unfused steps at any thread count (with the producer's
/// block statistics and without them), and that plans marking a norm the attention cannot compute
/// are refused.
final class NormAttentionFusionTests: XCTestCase {
    static let attentionNorms = ["down_blocks.1.attentions.0.group_norm", "down_blocks.1.attentions.1.group_norm",
                                 "mid_block.attentions.0.group_norm", "up_blocks.2.attentions.0.group_norm",
                                 "up_blocks.2.attentions.1.group_norm", "up_blocks.2.attentions.2.group_norm"]

    /// The norms fused into the attention that reads them.
    func fusedNorms(_ g: OptimizedGraph) -> [String] {
        BlockedPlanSupport.fusedSteps(g, { if case .groupNorm = $0 { true } else { false } },
                                      readBy: { if case .attention = $0 { true } else { false } })
    }

    func unfused(_ result: Compiler.Result) -> Compiler.Result { BlockedPlanSupport.unfusing(result, fusedNorms(result.graph)) }

    func testDiffusionUNetFusesEveryAttentionNorm() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try BlockedPlanSupport.compiledBlockedDDPM()
        XCTAssertEqual(fusedNorms(result.graph), Self.attentionNorms)
        XCTAssertTrue(result.log.contains { $0.0 == "norm-attention-fusion" && $0.1 == 6 }, "\(result.log)")
        // A fused norm has no buffer; its input stays alive for the attention, which reads it.
        let g = result.graph, users = g.consumers()
        for (i, s) in g.steps.enumerated() where s.live && s.fusedIntoConsumer {
            XCTAssertNil(result.memory.offsets[i], s.name)
            guard let reader = users[i].first, let x = s.inputs.first, let a = result.memory.offsets[x],
                  let b = result.memory.offsets[reader] else { return XCTFail("\(s.name): no reader or no buffers") }
            let (sizeA, sizeB) = (MemoryPlan.bytes(g.steps[x].shape), MemoryPlan.bytes(g.steps[reader].shape))
            XCTAssertTrue(a + sizeA <= b || b + sizeB <= a, "\(g.steps[reader].name) writes over \(s.name)'s input")
        }
        // Plain attention reads the normalised map itself: nothing to fuse.
        XCTAssertTrue(fusedNorms(try BlockedPlanSupport.compiled("graphs/bench/ddpm_unet.json", blocked: false).graph).isEmpty)
    }

    func testFusedOutputsEqualTheUnfusedOnesAtAnyThreadCount() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let fused = try BlockedPlanSupport.compiledBlockedDDPM()
        try BlockedPlanSupport.assertBitIdentical(fused, to: unfused(fused), "ddpm")
        // Without the producers' block statistics the attention finds the moments itself.
        var g = fused.graph
        for i in g.steps.indices where g.steps[i].fusedIntoConsumer {
            let x = g.steps[i].inputs[0]
            g.steps[x].epilogue.removeAll { $0 == .statistics }
        }
        let ownStatistics = Compiler.Result(graph: g, memory: MemoryPlan.plan(g), log: fused.log)
        try BlockedPlanSupport.assertBitIdentical(ownStatistics, to: unfused(ownStatistics), "ddpm without producer statistics")
        try BlockedPlanSupport.assertAgrees(ownStatistics, with: fused, tolerance: 1e-5, "ddpm, own statistics against the producer's")
    }

    func testPlansKeepTheFusionAndRefuseNormsTheAttentionCannotCompute() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try BlockedPlanSupport.compiledBlockedDDPM()
        try BlockedPlanSupport.roundTrip(result) { loaded in
            XCTAssertEqual(fusedNorms(loaded.program.graph), Self.attentionNorms)
            // A resnet's norm, read by a convolution.
            var wrongReader = loaded.manifest
            guard let n = wrongReader.steps.firstIndex(where: { $0.name == "down_blocks.1.resnets.0.norm2" }) else { return XCTFail("no norm2") }
            wrongReader.steps[n].fusedIntoConsumer = true
            XCTAssertTrue(wrongReader.validate()?.contains("cannot compute it") ?? false, wrongReader.validate() ?? "accepted")
            // An attention norm with a SiLU fused after it, which the copy does not apply.
            var withEpilogue = loaded.manifest
            guard let a = withEpilogue.steps.firstIndex(where: { $0.name == Self.attentionNorms[0] }) else { return XCTFail("no norm") }
            withEpilogue.steps[a].epilogue = [.unary(.silu)]
            XCTAssertTrue(withEpilogue.validate()?.contains("cannot compute it") ?? false, withEpilogue.validate() ?? "accepted")
        }
    }
}
