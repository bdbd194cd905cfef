import XCTest
import UNetCompiler
@testable import UNetIR
@testable import UNetPasses
@testable import UNetRuntime

/// The 1x1 convolution after a nearest upsample runs on the small map; outputs are bit-identical.
final class PointwiseBeforeUpsampleTests: XCTestCase {
    func testMobileUNetDecodersConvolveBeforeTheyUpsample() throws {
        var (before, _) = try PassTestSupport.optimized("graphs/mobile_unet.json", passes: [])
        PassManager(passes: [BatchNormFolding()]).run(&before)
        var after = before
        XCTAssertEqual(PointwiseBeforeUpsample().run(&after), 4)
        var moved = 0
        for (i, s) in after.steps.enumerated() where s.live {
            guard case .upsample = s.op else { continue }
            let producer = after.steps[s.inputs[0]]
            guard case .conv2d(let c) = producer.op else { continue }
            XCTAssertEqual(c.kernel.0, 1)
            XCTAssertTrue(producer.name.hasSuffix(".up.conv"), producer.name)
            // The convolution reads the map before upsampling and keeps its channel count; the upsample
            // keeps the slot (and so the readers) of the old convolution.
            XCTAssertEqual(Array(producer.shape.prefix(2)), Array(s.shape.prefix(2)))
            XCTAssertEqual(producer.shape[2] * 2, s.shape[2])
            XCTAssertEqual(before.steps[i].name, producer.name, "the old convolution's slot now upsamples")
            moved += 1
        }
        XCTAssertEqual(moved, 4)
        // Every pixel is computed by the same kernel either way.
        try PassTestSupport.assertSameOutputs(before, after, tolerance: 0)
    }

    func testOnlyANearestUpsampleFeedingNothingElseMoves() throws {
        // Bilinear interpolation commutes with a 1x1 convolution only up to rounding; an upsample
        // something else also reads would have to be computed twice. Only `near.conv` may move.
        let json = """
        {"unetc": 1, "name": "upsample-cases", "inputs": {"x": {"shape": [1, 8, 8, 8]}},
         "nodes": [
          {"name": "near", "op": "upsample", "in": "x", "scale": 2, "mode": "nearest"},
          {"name": "near.conv", "op": "conv2d", "in": "near", "out": 4, "kernel": 1},
          {"name": "lin", "op": "upsample", "in": "x", "scale": 2, "mode": "bilinear"},
          {"name": "lin.conv", "op": "conv2d", "in": "lin", "out": 4, "kernel": 1},
          {"name": "shared", "op": "upsample", "in": "x", "scale": 2, "mode": "nearest"},
          {"name": "shared.conv", "op": "conv2d", "in": "shared", "out": 4, "kernel": 1},
          {"name": "shared.relu", "op": "relu", "in": "shared"},
          {"name": "wide", "op": "upsample", "in": "x", "scale": 2, "mode": "nearest"},
          {"name": "wide.conv", "op": "conv2d", "in": "wide", "out": 4, "kernel": 3, "pad": 1}
         ],
         "outputs": {"a": "near.conv", "b": "lin.conv", "c": "shared.conv", "d": "shared.relu", "e": "wide.conv"}}
        """
        let graph: Graph
        switch GraphLoader.load(bytes: Array(json.utf8), file: "upsample-cases.json") {
        case .success(let g): graph = g
        case .failure(let d): throw d
        }
        let before = OptimizedGraph(graph: graph, weights: WeightSet.seeded(for: graph, seed: 3))
        var after = before
        XCTAssertEqual(PointwiseBeforeUpsample().run(&after), 1)
        let near = try XCTUnwrap(after.steps.firstIndex { $0.name == "near.conv" })
        XCTAssertEqual(after.steps[near].shape, [1, 4, 8, 8])
        for name in ["lin.conv", "shared.conv", "wide.conv"] {
            let s = try XCTUnwrap(after.steps.first { $0.name == name })
            XCTAssertEqual(s.shape, [1, 4, 16, 16], name)
        }
        try PassTestSupport.assertSameOutputs(before, after, tolerance: 0)
    }
}
