import XCTest
import UNetIR
@testable import UNetPasses

/// Dead-code elimination, common-subexpression elimination and affine folding.
final class GraphCleanupPassTests: XCTestCase {
    func testCSEMergesRepeatedTimeEmbeddingActivations() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/bench/ddpm_unet.json", passes: [CommonSubexpressionElimination()])
        let silu = { (op: Op) in op == .unary(.silu) }
        XCTAssertLessThan(PassTestSupport.count(after, silu), PassTestSupport.count(before, silu))
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testDCERemovesWhatNoOutputReads() throws {
        var (_, graph) = try PassTestSupport.optimized("graphs/inpainting_unet.json", passes: [])
        let reference = graph
        let kept = graph.outputs.first!
        graph.outputs = [kept]
        XCTAssertGreaterThanOrEqual(DeadCodeElimination().run(&graph), 0)
        let users = graph.consumers()
        for (i, s) in graph.steps.enumerated() where s.live && i != kept.step {
            if case .input = s.op { continue }
            XCTAssertFalse(users[i].isEmpty, "\(s.name) is live but unread")
        }
        var reduced = reference
        reduced.outputs = [kept]
        try PassTestSupport.assertSameOutputs(reduced, graph)
    }

    func testScaleAfterConvFoldsIntoWeights() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/colorization_unet.json", passes: [AffineFolding()])
        let scale = { (op: Op) -> Bool in if case .unary(.scale) = op { true } else { false } }
        XCTAssertLessThanOrEqual(PassTestSupport.count(after, scale), PassTestSupport.count(before, scale))
        try PassTestSupport.assertSameOutputs(before, after)
    }
}
