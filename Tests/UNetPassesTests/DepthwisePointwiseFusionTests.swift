import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// Depthwise convolutions computed by the 1x1 convolution that reads them: which pairs the pass
/// fuses, that the arena keeps the depthwise input alive for the 1x1 step, that outputs are
/// bit-identical to the unfused steps at any thread count (from graphs and from plans), and that
/// plans marking a step the fused kernel cannot compute are refused.
final class DepthwisePointwiseFusionTests: XCTestCase {
    func compiled(_ graph: String, blocked: Bool = true) throws -> Compiler.Result { try BlockedPlanSupport.compiled(graph, blocked: blocked) }

    /// `result` with every fusible pair fused, whatever its size (the test graph's maps are small).
    func fusedEverywhere(_ result: Compiler.Result) -> Compiler.Result {
        var g = result.graph
        _ = DepthwisePointwiseFusion(minimumInputBytes: 0).run(&g)
        return Compiler.Result(graph: g, memory: MemoryPlan.plan(g), log: result.log)
    }

    func fusedNames(_ g: OptimizedGraph) -> [String] { g.steps.filter { $0.live && $0.fusedIntoConsumer }.map(\.name) }

    /// Each fused step has no buffer, and its input's buffer does not overlap its reader's output.
    func assertArenaKeepsDepthwiseInputs(_ result: Compiler.Result, _ name: String) {
        let g = result.graph, users = g.consumers()
        for (i, s) in g.steps.enumerated() where s.live && s.fusedIntoConsumer {
            XCTAssertNil(result.memory.offsets[i], "\(name): \(s.name) has a buffer")
            guard let reader = users[i].first, let x = s.inputs.first else { return XCTFail("\(name): \(s.name) is not read") }
            guard let a = result.memory.offsets[x], let b = result.memory.offsets[reader] else { continue }
            let (sizeA, sizeB) = (MemoryPlan.bytes(g.steps[x].shape), MemoryPlan.bytes(g.steps[reader].shape))
            XCTAssertTrue(a + sizeA <= b || b + sizeB <= a, "\(name): \(g.steps[reader].name) writes over \(s.name)'s input")
        }
    }

    func testMobileUNetFusesItsLargeSeparableBlocks() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try compiled("graphs/bench/mobile_unet.json")
        // Depthwise inputs of at least 4 MiB: the 256x256 and 128x128 levels, and 256 channels at 64x64.
        XCTAssertEqual(fusedNames(result.graph), ["encoders.0.dw1", "encoders.0.dw2", "encoders.1.dw2", "decoders.1.dw1", "decoders.2.dw1",
                                                  "decoders.2.dw2", "decoders.3.dw1", "decoders.3.dw2"])
        assertArenaKeepsDepthwiseInputs(result, "mobile")
        XCTAssertTrue(result.log.contains { $0.0 == "depthwise-pointwise-fusion" && $0.1 == 8 }, "\(result.log)")
        // Without the blocked layout there is nothing to fuse.
        XCTAssertTrue(fusedNames(try compiled("graphs/bench/mobile_unet.json", blocked: false).graph).isEmpty)
    }

    func testFusedOutputsEqualTheUnfusedOnesAtAnyThreadCount() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let separate = try compiled("graphs/test/blocked_layout.json")
        XCTAssertTrue(fusedNames(separate.graph).isEmpty, "small maps stay separate")
        let fused = fusedEverywhere(separate)
        // 48 channels on a 10x14 map (a block pair and a single block, pixel tails), a 1x3 map, 7x11, 2x2, 33x33.
        // e too, whose 1x1 reader adds a residual in its epilogue; not pc, read by an upsample, nor the last depthwise steps.
        XCTAssertEqual(fusedNames(fused.graph), ["b", "e", "y2", "z2", "v2", "t2", "t4"])
        assertArenaKeepsDepthwiseInputs(fused, "blocked_layout")
        try BlockedPlanSupport.assertBitIdentical(fused, to: separate, "blocked_layout")
    }

    func testFusedPlanRunsLikeTheGraphAndIsCheckedWhenLoaded() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = fusedEverywhere(try compiled("graphs/test/blocked_layout.json"))
        try BlockedPlanSupport.roundTrip(result) { loaded in
            XCTAssertEqual(fusedNames(loaded.program.graph), fusedNames(result.graph))

            func refused(_ edit: (inout PlanManifest) -> Void, _ expected: String, line: UInt = #line) {
                var manifest = loaded.manifest
                edit(&manifest)
                let problem = manifest.validate()
                XCTAssertTrue(problem?.contains(expected) ?? false, problem ?? "accepted", line: line)
            }
            func index(_ name: String) -> Int { loaded.manifest.steps.firstIndex { $0.name == name } ?? 0 }
            // A 1x1 step marked as computed by its reader (the fused kernel computes depthwise steps only).
            refused({ $0.steps[index("c")].fusedIntoConsumer = true }, "computed by its reader")
            // A depthwise step whose reader is not a 1x1 convolution.
            refused({ $0.steps[index("pc")].fusedIntoConsumer = true }, "computed by its reader")
            // A fused depthwise step that is also a graph output (it would have no buffer to be read from;
            // outputs are plain, and fused steps blocked).
            refused({ m in
                let b = index("b")
                m.outputs.append(PlanManifest.Binding(name: "extra", step: b, role: nil, shape: m.steps[b].shape))
            }, "not in the plain layout")
            // A fused step's flag cleared: it then needs the buffer the plan does not give it.
            refused({ $0.steps[index("b")].fusedIntoConsumer = nil }, "no valid place in the arena")
        }
    }
}
