import XCTest
import UNetIR
@testable import UNetPasses

final class MemoryPlanTests: XCTestCase {
    func testConcatsOfTheClassicUNetAreElidedAndRunInPlace() throws {
        let (before, after) = try PassTestSupport.optimized("graphs/unet_classic.json", passes: PassManager.standard.passes)
        let concats = after.steps.enumerated().filter { $0.element.live && { if case .concat = $0.element.op { true } else { false } }($0) }
        XCTAssertEqual(concats.count, 4)
        XCTAssertEqual(Set(concats.map(\.offset)), after.elidedConcats)
        let plan = MemoryPlan.plan(after)
        for (c, step) in concats {
            XCTAssertTrue(plan.inPlace.contains(c))
            // Each operand sits exactly at its slice of the concat's buffer.
            var offset = try XCTUnwrap(plan.offsets[c])
            for v in step.inputs {
                XCTAssertEqual(plan.offsets[v], offset, "\(after.steps[v].name)")
                offset += (OpSemantics.elementCount(after.steps[v].shape) ?? 0) * 4
            }
        }
        try PassTestSupport.assertSameOutputs(before, after)
    }

    func testNoTwoLiveBuffersOverlap() throws {
        for graph in ["graphs/bench/ddpm_unet.json", "graphs/sd_unet.json", "graphs/unet_classic.json", "graphs/test/all_kernels_small.json"] {
            let (_, g) = try PassTestSupport.optimized(graph, passes: PassManager.standard.passes)
            let plan = MemoryPlan.plan(g)
            // Independent liveness: from the producing step to the last reader, outputs to the end;
            // whatever lives inside an in-place step's buffer lives as long as that step's value.
            var last = [Int](repeating: -1, count: g.steps.count)
            for (i, s) in g.steps.enumerated() where s.live { for v in s.inputs { last[v] = max(last[v], i) } }
            for (_, v) in g.outputs { last[v] = Int.max }
            for i in g.steps.indices.reversed() where plan.inPlace.contains(i) {
                for v in g.steps[i].inputs { last[v] = max(last[v], last[i]) }
            }
            let values = g.steps.indices.filter { g.steps[$0].live && plan.offsets[$0] != nil && !plan.inPlace.contains($0) }
            for a in values {
                for b in values where a < b && b <= last[a] {
                    guard let sa = plan.offsets[a], let sb = plan.offsets[b] else { continue }
                    let ea = sa + (OpSemantics.elementCount(g.steps[a].shape) ?? 0) * 4
                    let eb = sb + (OpSemantics.elementCount(g.steps[b].shape) ?? 0) * 4
                    XCTAssertFalse(sa < eb && sb < ea, "\(graph): '\(g.steps[a].name)' and '\(g.steps[b].name)' share memory while both are live")
                }
            }
        }
    }

    func testClassicBenchArenaIsAtMostHalfOfAllIntermediates() throws {
        let (_, g) = try PassTestSupport.optimized("graphs/bench/classic_unet.json", passes: PassManager.standard.passes)
        let plan = MemoryPlan.plan(g)
        XCTAssertLessThanOrEqual(Double(plan.arenaBytes), 0.5 * Double(plan.unplannedBytes),
                                 "arena \(plan.arenaBytes) vs \(plan.unplannedBytes)")
    }
}
