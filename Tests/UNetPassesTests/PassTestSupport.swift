import Foundation
import XCTest
import UNetCompiler
import UNetIR
@testable import UNetPasses
@testable import UNetRuntime

/// Shared helpers: lower an example graph with seeded weights, run a graph through chosen passes,
/// and compare its outputs with the unoptimized graph on random inputs.
enum PassTestSupport {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func lowered(_ relative: String) throws -> (Graph, WeightSet) {
        switch GraphLoader.load(path: root.appendingPathComponent(relative).path) {
        case .success(let g): return (g, WeightSet.seeded(for: g, seed: 7))
        case .failure(let d): throw d
        }
    }

    static func optimized(_ relative: String, passes: [any GraphPass]) throws -> (OptimizedGraph, OptimizedGraph) {
        let (g, w) = try lowered(relative)
        let reference = OptimizedGraph(graph: g, weights: w)
        var graph = reference
        PassManager(passes: passes).run(&graph)
        return (reference, graph)
    }

    static func run(_ graph: OptimizedGraph, seed: UInt64 = 1) throws -> [String: [Float]] {
        try run(Program(graph: graph, memory: MemoryPlan.plan(graph)), seed: seed)
    }

    /// Runs a program (a loaded plan, say) on the same seeded inputs `run(graph)` uses.
    static func run(_ program: Program, seed: UInt64 = 1) throws -> [String: [Float]] {
        let graph = program.graph
        let executor = Executor(program: program, threads: 2)
        var inputs: [String: Tensor] = [:]
        for (name, step, role) in graph.inputs {
            let t = Tensor(shape: graph.steps[step].shape)
            var rng = SplitMix64(seed: seed ^ fnv1a(name))
            for i in 0..<t.count { t[i] = role == "timestep" ? Float(Int(rng.nextUnit() * 1000)) : rng.nextNormal() }
            inputs[name] = t
        }
        return try executor.run(inputs: inputs).mapValues(\.values)
    }

    /// Relative L2 error of every output of `b` against `a`; fails above `tolerance`.
    static func assertSameOutputs(_ a: OptimizedGraph, _ b: OptimizedGraph, tolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        assertSameOutputs(try run(a), try run(b), tolerance: tolerance, file: file, line: line)
    }

    static func assertSameOutputs(_ x: [String: [Float]], _ y: [String: [Float]], tolerance: Double = 1e-5, file: StaticString = #filePath,
                                  line: UInt = #line) {
        XCTAssertEqual(Set(x.keys), Set(y.keys), file: file, line: line)
        for (name, reference) in x {
            guard let values = y[name] else { continue }
            var diff = 0.0, norm = 0.0
            for (p, q) in zip(reference, values) {
                diff += Double(p - q) * Double(p - q)
                norm += Double(p) * Double(p)
            }
            let error = (diff / max(norm, 1e-30)).squareRoot()
            XCTAssertLessThanOrEqual(error, tolerance, "\(name): relative L2 \(error)", file: file, line: line)
            XCTAssertFalse(values.contains { $0.isNaN }, file: file, line: line)
        }
    }

    static func count(_ g: OptimizedGraph, _ predicate: (Op) -> Bool) -> Int {
        g.steps.filter { $0.live && predicate($0.op) }.count
    }
}
