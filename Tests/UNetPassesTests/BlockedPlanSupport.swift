import Foundation
import XCTest
@testable import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// Shared by the blocked-layout and fusion tests: compile a graph with or without the blocked
/// layout, run it on seeded inputs, check outputs bit for bit at every thread count, and round-trip
/// a compiled result through a plan file.
enum BlockedPlanSupport {
    static func compiled(_ graph: String, blocked: Bool) throws -> Compiler.Result {
        let (result, _) = try ModelSession.compile(path: PassTestSupport.root.appendingPathComponent(graph).path, weightsPath: nil, seed: 3,
                                                   options: CompileOptions(blockedLayout: blocked))
        return result
    }

    /// The steps of `g` computed by their reader (`Step.fusedIntoConsumer`) whose operator is a
    /// `kind` and whose reader's operator is a `reader`, in order.
    static func fusedSteps(_ g: OptimizedGraph, _ kind: (Op) -> Bool, readBy reader: (Op) -> Bool) -> [String] {
        let users = g.consumers()
        return g.steps.indices.filter { i in
            guard g.steps[i].live, g.steps[i].fusedIntoConsumer, kind(g.steps[i].op), let r = users[i].first else { return false }
            return reader(g.steps[r].op)
        }.map { g.steps[$0].name }
    }

    /// `result` with the steps named `names` computed by their own steps again.
    static func unfusing(_ result: Compiler.Result, _ names: [String]) -> Compiler.Result {
        var g = result.graph
        let set = Set(names)
        for i in g.steps.indices where set.contains(g.steps[i].name) { g.steps[i].fusedIntoConsumer = false }
        return Compiler.Result(graph: g, memory: MemoryPlan.plan(g), log: result.log)
    }

    /// The blocked DDPM UNet, compiled once for every test that reads it (5 s in a debug build).
    nonisolated(unsafe) private static var blockedDDPM: Compiler.Result?
    static func compiledBlockedDDPM() throws -> Compiler.Result {
        if let result = blockedDDPM { return result }
        let result = try compiled("graphs/bench/ddpm_unet.json", blocked: true)
        blockedDDPM = result
        return result
    }

    static func inputs(_ g: OptimizedGraph) -> [String: Tensor] {
        var inputs: [String: Tensor] = [:]
        for (name, step, _) in g.inputs {
            let t = Tensor(shape: g.steps[step].shape)
            var rng = SplitMix64(seed: 11 ^ UInt64(name.utf8.count))
            for i in 0..<t.count { t[i] = rng.nextNormal() }
            inputs[name] = t
        }
        return inputs
    }

    static func outputs(_ result: Compiler.Result, threads: Int) throws -> [String: [Float]] {
        try Executor(program: Program(graph: result.graph, memory: result.memory), threads: threads).run(inputs: inputs(result.graph))
            .mapValues(\.values)
    }

    /// `result`'s outputs at 1, 2 and 3 threads equal `reference`'s at 1, bit for bit.
    static func assertBitIdentical(_ result: Compiler.Result, to reference: Compiler.Result, _ context: String,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try outputs(reference, threads: 1)
        for threads in [1, 2, 3] {
            let values = try outputs(result, threads: threads)
            XCTAssertEqual(Set(values.keys), Set(expected.keys), context, file: file, line: line)
            for (name, v) in values { XCTAssertEqual(v, expected[name], "\(context): \(name) at \(threads) threads", file: file, line: line) }
        }
    }

    /// `result`'s outputs are the same bits at 1, 2 and 3 threads, and within `tolerance` relative
    /// L2 (no NaN) of `reference`'s: layouts whose kernels sum in different orders.
    static func assertAgrees(_ result: Compiler.Result, with reference: Compiler.Result, tolerance: Float, _ context: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try outputs(reference, threads: 1), own = try outputs(result, threads: 1)
        XCTAssertEqual(Set(own.keys), Set(expected.keys), context, file: file, line: line)
        for (name, v) in own {
            let r = expected[name] ?? []
            XCTAssertEqual(v.count, r.count, "\(context): \(name)", file: file, line: line)
            var difference: Float = 0, norm: Float = 0
            for (a, b) in zip(v, r) { (difference, norm) = (difference + (a - b) * (a - b), norm + b * b) }
            XCTAssertFalse(v.contains { $0.isNaN }, "\(context): \(name) has NaN", file: file, line: line)
            XCTAssertLessThanOrEqual((difference / max(norm, .leastNormalMagnitude)).squareRoot(), tolerance, "\(context): \(name)",
                                     file: file, line: line)
        }
        for threads in [2, 3] {
            for (name, v) in try outputs(result, threads: threads) {
                XCTAssertEqual(v, own[name], "\(context): \(name) at \(threads) threads", file: file, line: line)
            }
        }
    }

    /// Writes `result` to a plan file, checks that the plan runs like the graph in memory, and hands
    /// the loaded plan to `body` (for tampering with its manifest).
    static func roundTrip(_ result: Compiler.Result, file: StaticString = #filePath, line: UInt = #line,
                          _ body: (PlanLoader.Loaded) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-blocked-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.unetc").path
        try PlanFile.write(result, to: path)
        let loaded = try PlanLoader.load(path)
        let session = try ModelSession(path: path, threads: 2)
        let given = inputs(session.graph)
        let fromPlan = try session.run(given)
        let inMemory = try Executor(program: Program(graph: result.graph, memory: result.memory), threads: 1).run(inputs: given)
        XCTAssertEqual(Set(fromPlan.keys), Set(inMemory.keys), file: file, line: line)
        for (name, t) in fromPlan { XCTAssertEqual(t.values, inMemory[name]?.values, name, file: file, line: line) }
        try body(loaded)
    }
}
