import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// Zero pads computed by the blocked 3x3 convolution that reads them: which pads the pass fuses,
/// that outputs are bit-identical to the separate pad at any thread count, and that plans marking
/// a pad the convolution cannot compute are refused.
final class PadConvolutionFusionTests: XCTestCase {
    static let downsamplerPads = ["down_blocks.0.downsamplers.0.pad", "down_blocks.1.downsamplers.0.pad", "down_blocks.2.downsamplers.0.pad"]

    func fusedPads(_ g: OptimizedGraph) -> [String] {
        BlockedPlanSupport.fusedSteps(g, { if case .pad = $0 { true } else { false } }, readBy: { _ in true })
    }

    func testDiffusionUNetDownsamplersReadTheirInputUnpadded() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try BlockedPlanSupport.compiledBlockedDDPM()
        XCTAssertEqual(fusedPads(result.graph), Self.downsamplerPads)
        XCTAssertTrue(result.log.contains { $0.0 == "pad-convolution-fusion" && $0.1 == 3 }, "\(result.log)")
        for (i, s) in result.graph.steps.enumerated() where s.live && s.fusedIntoConsumer { XCTAssertNil(result.memory.offsets[i], s.name) }
        // diffusers pads right and bottom only: the 3x3 keeps its own padding, none.
        guard let pad = result.graph.steps.first(where: { $0.name == Self.downsamplerPads[0] }), case .pad(let p) = pad.op,
              let conv = result.graph.steps.first(where: { $0.name == "down_blocks.0.downsamplers.0.conv" }), case .conv2d(let c) = conv.op
        else { return XCTFail("no downsampler") }
        XCTAssertTrue(PadConvolutionFusion.padding(of: c, fused: p) == (0, 0))
        XCTAssertTrue(fusedPads(try BlockedPlanSupport.compiled("graphs/bench/ddpm_unet.json", blocked: false).graph).isEmpty)
    }

    func testFusedOutputsEqualTheSeparatePadsAtAnyThreadCount() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let fused = try BlockedPlanSupport.compiledBlockedDDPM()
        let separate = BlockedPlanSupport.unfusing(fused, fusedPads(fused.graph))
        XCTAssertTrue(fusedPads(separate.graph).isEmpty)
        try BlockedPlanSupport.assertBitIdentical(fused, to: separate, "ddpm")
    }

    func testPlansRefusePadsTheConvolutionCannotCompute() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        try BlockedPlanSupport.roundTrip(try BlockedPlanSupport.compiledBlockedDDPM()) { loaded in
            XCTAssertEqual(fusedPads(loaded.program.graph), Self.downsamplerPads)
            guard let i = loaded.manifest.steps.firstIndex(where: { $0.name == Self.downsamplerPads[1] }),
                  case .pad(let p) = loaded.manifest.steps[i].op else { return XCTFail("no pad") }
            // A reflecting pad, and a pad of ones: the im2col writes zeros outside the map.
            var (reflecting, ones) = (p, p)
            reflecting.mode = .reflect
            ones.value = 1
            for changed in [reflecting, ones] {
                var manifest = loaded.manifest
                manifest.steps[i].op = .pad(changed)
                XCTAssertTrue(manifest.validate()?.contains("cannot compute it") ?? false, manifest.validate() ?? "accepted")
            }
        }
    }
}
