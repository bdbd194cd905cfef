import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// Nearest 2x upsamplings computed by the im2col of the blocked 3x3 convolution that reads them:
/// which the pass fuses, that outputs are bit-identical to the separate upsampling at any thread
/// count, and that plans marking an upsampling the convolution cannot compute are refused.
final class UpsampleConvolutionFusionTests: XCTestCase {
    func fusedUpsamplings(_ g: OptimizedGraph) -> [String] {
        BlockedPlanSupport.fusedSteps(g, { if case .upsample = $0 { true } else { false } }, readBy: { _ in true })
    }

    func testDiffusionUNetUpsamplesItsSmallestMapInTheConvolution() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try BlockedPlanSupport.compiledBlockedDDPM()
        // 4x4 to 8x8: an im2col convolution; the 16x16 and 32x32 ones feed Winograd convolutions.
        XCTAssertEqual(fusedUpsamplings(result.graph), ["up_blocks.0.upsamplers.0.upsample"])
        XCTAssertTrue(result.log.contains { $0.0 == "upsample-convolution-fusion" && $0.1 == 1 }, "\(result.log)")
        let separate = BlockedPlanSupport.unfusing(result, fusedUpsamplings(result.graph))
        XCTAssertTrue(fusedUpsamplings(separate.graph).isEmpty)
        try BlockedPlanSupport.assertBitIdentical(result, to: separate, "ddpm")
    }

    func testPlansRefuseUpsamplingsTheConvolutionCannotCompute() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        try BlockedPlanSupport.roundTrip(try BlockedPlanSupport.compiledBlockedDDPM()) { loaded in
            XCTAssertEqual(fusedUpsamplings(loaded.program.graph), ["up_blocks.0.upsamplers.0.upsample"])
            // The 8x8-to-16x16 upsampling, read by a Winograd convolution.
            var winograd = loaded.manifest
            guard let w = winograd.steps.firstIndex(where: { $0.name == "up_blocks.1.upsamplers.0.upsample" }) else { return XCTFail("no upsample") }
            winograd.steps[w].fusedIntoConsumer = true
            XCTAssertTrue(winograd.validate()?.contains("cannot compute it") ?? false, winograd.validate() ?? "accepted")
            // A bilinear upsampling, which the im2col does not interpolate.
            var bilinear = loaded.manifest
            guard let b = bilinear.steps.firstIndex(where: { $0.name == "up_blocks.0.upsamplers.0.upsample" }),
                  case .upsample(var u) = bilinear.steps[b].op else { return XCTFail("no upsample") }
            u.mode = .bilinear
            bilinear.steps[b].op = .upsample(u)
            XCTAssertNotNil(bilinear.validate())
        }
    }
}
