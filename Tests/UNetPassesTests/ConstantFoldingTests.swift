import XCTest
import UNetIR
@testable import UNetPasses

/// Constant folding: identity operators disappear, chains of constant maps become one operator, outputs stay the same.
final class ConstantFoldingTests: XCTestCase {
    func testIdentitiesAndChainsFoldAway() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/test/ops_fold.json", passes: [ConstantFolding(), DeadCodeElimination()])
        let live = after.steps.filter(\.live).map(\.op.name)
        // What computes something survives: two convs, one scale (of two), one clamp (of two), one reshape, one transpose, gelu.
        XCTAssertEqual(live.filter { $0 != "input" }.sorted(), ["clamp", "conv2d", "conv2d", "gelu", "reshape", "scale", "transpose"], "\(live)")
        guard let scale = after.steps.first(where: { $0.live && $0.op.name == "scale" }), case .unary(.scale(let f, let o)) = scale.op else {
            return XCTFail("no merged scale")
        }
        XCTAssertEqual(f, -1)
        XCTAssertEqual(o, -1.75)
        guard let clamp = after.steps.first(where: { $0.live && $0.op.name == "clamp" }), case .unary(.clamp(let lo, let hi)) = clamp.op else {
            return XCTFail("no merged clamp")
        }
        XCTAssertEqual(lo, -1)
        XCTAssertEqual(hi, 2)
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testOperatorsThatComputeAreKept() throws {
        // A real example graph: folding must not remove anything that changes values.
        let (before, after) = try PassTestSupport.optimized("graphs/test/ops_spatial.json", passes: [ConstantFolding()])
        try PassTestSupport.assertSameOutputs(before, after)
        let folding = ConstantFolding()
        var again = after
        XCTAssertEqual(folding.run(&again), 0, "folding reaches a fixed point in one run")
    }
}
