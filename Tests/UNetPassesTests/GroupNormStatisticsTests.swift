import XCTest
@testable import UNetIR
@testable import UNetPasses

/// GroupNorm statistics gathered by the producer: every norm fed by a convolution gets them, outputs unchanged.
final class GroupNormStatisticsTests: XCTestCase {
    func testDDPMNormsReadStatisticsTheirProducersRecorded() throws {
        // Hoisting first, as in the standard pipeline: it lets the time-embedding add fuse into conv1, so norm2 reads a conv.
        let (before, after) = try PassTestSupport.optimized("graphs/bench/ddpm_unet.json",
                                                            passes: [ConditioningHoisting(), EpilogueFusion(), ConcatElimination(), GroupNormStatistics()])
        var fedByConvolution = 0
        for s in after.steps where s.live {
            guard case .groupNorm = s.op else { continue }
            let producer = after.steps[s.inputs[0]]
            guard case .conv2d = producer.op else { continue }
            fedByConvolution += 1
            XCTAssertEqual(producer.epilogue.last, .statistics, "\(producer.name) feeds \(s.name)")
        }
        // Every res block's norm2 (22 of them) reads its conv1, and the encoder's norm1s read the previous conv.
        XCTAssertGreaterThanOrEqual(fedByConvolution, 30)
        XCTAssertEqual(PassTestSupport.count(before) { if case .groupNorm = $0 { true } else { false } },
                       PassTestSupport.count(after) { if case .groupNorm = $0 { true } else { false } })
        for s in after.steps where s.live && s.epilogue.contains(.statistics) {
            XCTAssertEqual(s.epilogue.last, .statistics, "\(s.name): statistics come after everything that changes the values")
        }
        try PassTestSupport.assertSameOutputs(before, after)
    }

}
