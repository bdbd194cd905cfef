import Foundation
import XCTest
import UNetCompiler
import UNetRuntime

/// The README's library example, verbatim, and a check that the README still shows exactly this code.
final class LibraryExampleTests: XCTestCase {
    static let example = """
    let (compiled, _) = try ModelSession.compile(path: "graphs/unet_classic.json", weightsPath: nil, seed: 0,
                                                 options: CompileOptions())
    try PlanFile.write(compiled, to: "/tmp/classic.unetc")
    let session = try ModelSession(path: "/tmp/classic.unetc", threads: 2)
    let x = Tensor(shape: [1, 3, 128, 128], values: [Float](repeating: 0.5, count: 3 * 128 * 128))
    let outputs = try session.run(["x": x])
    print(outputs["logits"]?.shape ?? [], session.loadSeconds)
    """

    func testReadmeExampleRuns() throws {
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(PassTestSupport.root.path))
        // -- begin README example
        let (compiled, _) = try ModelSession.compile(path: "graphs/unet_classic.json", weightsPath: nil, seed: 0,
                                                     options: CompileOptions())
        try PlanFile.write(compiled, to: "/tmp/classic.unetc")
        let session = try ModelSession(path: "/tmp/classic.unetc", threads: 2)
        let x = Tensor(shape: [1, 3, 128, 128], values: [Float](repeating: 0.5, count: 3 * 128 * 128))
        let outputs = try session.run(["x": x])
        print(outputs["logits"]?.shape ?? [], session.loadSeconds)
        // -- end README example
        XCTAssertEqual(outputs["logits"]?.shape, [1, 2, 128, 128])
        let readme = try String(contentsOf: PassTestSupport.root.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.contains(Self.example), "README.md no longer shows the tested example")
    }

    /// Every example and bench graph: the optimized plan, run from the file with its prepared weights,
    /// computes what the unoptimized graph computes (1e-5 relative L2).
    func testEveryExamplePlanMatchesO0() throws {
        let fm = FileManager.default
        let root = PassTestSupport.root.appendingPathComponent("graphs")
        var files = try fm.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".json") }.map { "graphs/" + $0 }
        for folder in ["test", "bench"] {
            files += try fm.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path).filter { $0.hasSuffix(".json") }
                .map { "graphs/\(folder)/" + $0 }
        }
        for file in files.sorted() {
            let path = PassTestSupport.root.appendingPathComponent(file).path
            let (optimized, _) = try ModelSession.compile(path: path, weightsPath: nil, seed: 2, options: CompileOptions())
            let (plain, _) = try ModelSession.compile(path: path, weightsPath: nil, seed: 2, options: CompileOptions(optimize: false))
            let plan = fm.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString).unetc").path
            defer { try? fm.removeItem(atPath: plan) }
            try PlanFile.write(optimized, to: plan)
            let loaded = try PlanLoader.load(plan)
            XCTAssertLessThan(optimized.graph.liveSteps.count, plain.graph.liveSteps.count + 1, file)
            PassTestSupport.assertSameOutputs(try PassTestSupport.run(plain.graph), try PassTestSupport.run(loaded.program), file: #filePath, line: #line)
        }
    }
}
