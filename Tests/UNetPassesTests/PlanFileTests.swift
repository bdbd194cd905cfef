import Foundation
import XCTest
import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// Plan files: a plan runs like the graph it came from, and every damaged or foreign plan is refused with a message.
final class PlanFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func compiledPlan(_ graph: String, optimize: Bool = true, blocked: Bool = CompileOptions().blockedLayout) throws -> (String, Compiler.Result) {
        let (result, _) = try ModelSession.compile(path: PassTestSupport.root.appendingPathComponent(graph).path, weightsPath: nil, seed: 3,
                                                   options: CompileOptions(optimize: optimize, blockedLayout: blocked))
        let path = dir.appendingPathComponent(optimize ? "m.unetc" : "m-O0.unetc").path
        try PlanFile.write(result, to: path)
        return (path, result)
    }

    func testPlanRunsLikeTheUnoptimizedGraph() throws {
        let (path, result) = try compiledPlan("graphs/test/all_kernels_small.json")
        let loaded = try PlanLoader.load(path)
        XCTAssertEqual(loaded.manifest.memory, result.memory)
        XCTAssertEqual(loaded.program.graph.liveSteps.count, result.graph.liveSteps.count)
        let (_, unoptimized) = try compiledPlan("graphs/test/all_kernels_small.json", optimize: false)
        try PassTestSupport.assertSameOutputs(unoptimized.graph, result.graph)
        try assertPlanRunsLikeMemory(path, result)
        // A segmentation head (1x1 to one channel on a 64x64 map), whose kernel reads the filters as the plan stores them.
        let (tinyPath, tiny) = try compiledPlan("graphs/dag_tiny.json")
        try assertPlanRunsLikeMemory(tinyPath, tiny)
    }

    /// The plan's own executor against the in-memory compilation: identical bytes.
    func assertPlanRunsLikeMemory(_ path: String, _ result: Compiler.Result, line: UInt = #line) throws {
        let session = try ModelSession(path: path, threads: 2)
        var inputs: [String: Tensor] = [:]
        for (name, _, _) in session.graph.inputs { inputs[name] = session.defaultInput(name, seed: 5) }
        let fromPlan = try session.run(inputs)
        let inMemory = try Executor(program: Program(graph: result.graph, memory: result.memory), threads: 1).run(inputs: inputs)
        for (name, t) in fromPlan { XCTAssertEqual(t.values, inMemory[name]?.values, "\(path): \(name)", line: line) }
    }

    func testDamagedPlansAreRefused() throws {
        let (path, _) = try compiledPlan("graphs/dag_tiny.json")
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        func variant(_ name: String, _ change: (inout Data) -> Void) throws -> String {
            var data = original
            change(&data)
            let p = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: p))
            return p
        }
        let cases: [(String, (inout Data) -> Void, String)] = [
            ("truncated", { $0 = $0.prefix($0.count - 1000) }, "truncated"),
            ("header-only", { $0 = $0.prefix(30) }, "truncated"),
            ("flipped", { $0[$0.count - 7] ^= 0x40 }, "checksum mismatch"),
            ("version", { $0[8] = 9 }, "format version 9"),
            ("isa", { $0.replaceSubrange(48..<64, with: Data("riscv64/vector\0\0".utf8)) }, "compiled for riscv64/vector"),
            ("magic", { $0[0] = 0x41 }, "bad magic"),
        ]
        for (name, change, needle) in cases {
            let p = try variant(name, change)
            do {
                _ = try PlanLoader.load(p)
                XCTFail("\(name) accepted")
            } catch {
                XCTAssertTrue(error.message.contains(needle), "\(name): \(error.message)")
            }
        }
    }

    func testInputsOfAnotherShapeAreRefused() throws {
        let (path, _) = try compiledPlan("graphs/dag_tiny.json")
        let session = try ModelSession(path: path, threads: 1)
        XCTAssertThrowsError(try session.run(["x": Tensor(zeros: [1, 3, 32, 32])])) { error in
            XCTAssertTrue("\(error)".contains("expects [1, 3, 64, 64]"), "\(error)")
        }
    }

    func testShapeOverrideCompilesForAnotherSize() throws {
        let (result, _) = try ModelSession.compile(path: PassTestSupport.root.appendingPathComponent("graphs/dag_tiny.json").path, weightsPath: nil,
                                                   seed: 0, options: CompileOptions(), shapes: ["x": [1, 3, 32, 48]])
        XCTAssertEqual(result.graph.outputs.first.map { result.graph.steps[$0.step].shape }, [1, 1, 32, 48])
    }

    /// Plan manifests are not trusted: operator attributes and epilogue operands are checked as well as indices.
    func testHostileManifestsAreRefused() throws {
        // Plain (blocked convolutions store other filter layouts, checked in BlockedLayoutTests).
        let (path, _) = try compiledPlan("graphs/dag_tiny.json", blocked: false)
        let manifest = try PlanLoader.load(path).manifest
        XCTAssertNil(manifest.validate())
        guard let conv = manifest.steps.firstIndex(where: { if case .conv2d = $0.op { $0.live } else { false } }),
              case .conv2d(let c) = manifest.steps[conv].op else { return XCTFail("no convolution in dag_tiny") }
        var zeroStride = manifest
        var strided = c
        strided.stride = (0, 1)
        zeroStride.steps[conv].op = .conv2d(strided)
        XCTAssertTrue(zeroStride.validate()?.contains("stride = 0") ?? false, zeroStride.validate() ?? "accepted")
        var huge = manifest
        strided.stride = (1, 1)
        strided.kernel = (Int.max, 1)
        huge.steps[conv].op = .conv2d(strided)
        XCTAssertNotNil(huge.validate())
        // A residual add reading an operand of another shape would read past it.
        var badAdd = manifest
        let small = badAdd.steps.firstIndex { $0.shape != badAdd.steps[conv].shape && $0.shape.count == 4 } ?? 0
        badAdd.steps[conv].inputs.append(small)
        badAdd.steps[conv].epilogue.append(.add(operand: badAdd.steps[conv].inputs.count - 1))
        XCTAssertTrue(badAdd.validate()?.contains("bad epilogue operand") ?? false, badAdd.validate() ?? "accepted")
        // Prepared weights must be in the layout the step's algorithm reads, and of exactly its size.
        XCTAssertEqual(manifest.steps[conv].weights.first??.layout, .gemmPanels)
        var winograd = manifest
        winograd.steps[conv].algorithm = .winograd4x4
        XCTAssertTrue(winograd.validate()?.contains("layout") ?? false, winograd.validate() ?? "accepted")
        var short = manifest
        short.steps[conv].weights[0]?.storedCount -= 1
        XCTAssertTrue(short.validate()?.contains("layout") ?? false, short.validate() ?? "accepted")
        // Found in review: shapes whose element counts overflow must be refused, not trap.
        var overflowing = manifest
        overflowing.steps[conv].weights[0]?.shape = [Int.max, 1, 3, 3]
        XCTAssertNotNil(overflowing.validate())
        overflowing = manifest
        overflowing.steps[conv].weights[0]?.shape = [6, 1 << 32, 1 << 32, 1]
        XCTAssertNotNil(overflowing.validate())
        var hugeInput = manifest
        if let x = hugeInput.steps.firstIndex(where: { if case .input = $0.op { true } else { false } }) {
            hugeInput.steps[x].shape = [0, 3, Int.max, 64]
            XCTAssertTrue(hugeInput.validate()?.contains("malformed") ?? false, hugeInput.validate() ?? "accepted")
        }
        // A 1x1 kernel is no Winograd convolution, whatever its weights.
        var pointwise = c
        pointwise.kernel = (1, 1)
        pointwise.pad = (0, 0)
        winograd.steps[conv].op = .conv2d(pointwise)
        XCTAssertTrue(winograd.validate()?.contains("Winograd") ?? false, winograd.validate() ?? "accepted")
    }

    func testMemoryBudgetIsCheckedBeforeAllocating() throws {
        let (path, result) = try compiledPlan("graphs/dag_tiny.json")
        XCTAssertThrowsError(try PlanLoader.load(path, budget: MemoryBudget(arenaBytes: result.memory.arenaBytes - 1))) { error in
            XCTAssertTrue("\(error)".contains("over the limit"), "\(error)")
        }
        XCTAssertNoThrow(try PlanLoader.load(path, budget: MemoryBudget(arenaBytes: result.memory.arenaBytes)))
        let graph = PassTestSupport.root.appendingPathComponent("graphs/bench/ddpm_unet.json").path
        XCTAssertThrowsError(try ModelSession.compile(path: graph, weightsPath: nil, seed: 0,
                                                      options: CompileOptions(budget: MemoryBudget(weightBytes: 100 << 20)))) { error in
            XCTAssertTrue("\(error)".contains("136 MiB of weights, over the limit of 100 MiB"), "\(error)")
        }
    }
}
