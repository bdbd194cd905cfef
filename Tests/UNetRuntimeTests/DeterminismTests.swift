import XCTest
import UNetCompiler
@testable import UNetRuntime

/// Outputs are bit-identical for any thread count: each tile is owned by one thread and sums in a fixed order.
final class DeterminismTests: XCTestCase {
    func testThreadCountsGiveIdenticalBytes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for graph in ["graphs/dag_tiny.json", "graphs/test/all_kernels_small.json"] {
            var reference: [String: [Float]]?
            for threads in [1, 2, 3, 7] {
                let session = try ModelSession(path: root.appendingPathComponent(graph).path, seed: 3, threads: threads)
                var inputs: [String: Tensor] = [:]
                for (name, _, _) in session.graph.inputs { inputs[name] = session.defaultInput(name, seed: 1) }
                let outputs = try session.run(inputs).mapValues(\.values)
                if let reference {
                    for (name, values) in outputs {
                        XCTAssertTrue(values.elementsEqual(reference[name] ?? [], by: { $0.bitPattern == $1.bitPattern }),
                                      "\(graph) output \(name) differs at \(threads) threads")
                    }
                } else {
                    reference = outputs
                    XCTAssertFalse(outputs.isEmpty)
                }
            }
        }
    }
}
