import ArgumentParser
import Foundation
import UNetCompiler
import UNetPasses

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Optimize a graph with its weights and write an executable plan file.")

    @Argument(help: "A graph file (.json).")
    var graph: String

    @Option(help: "Weights (.safetensors). Without it, the seeded initialisation `unetc run` uses.")
    var weights: String?

    @Option(help: "Seed of the initialisation when no weights are given.")
    var seed: UInt64 = 0

    @Option(name: .customLong("shape"), help: "NAME=DxDxD to compile for another input shape (repeatable).")
    var shapes: [String] = []

    @Option(name: .shortAndLong, help: "The plan file to write.")
    var output: String?

    @Flag(name: [.customLong("O0", withSingleDash: true), .customLong("O0")], help: "No optimization passes (memory is still planned).")
    var noOptimization = false

    @Flag(name: .customLong("dump-ir"), help: "Print the graph after all passes.")
    var dumpIR = false

    @Option(name: .customLong("print-after"), help: "Print the graph after this pass (\(PassManager.passNames.joined(separator: ", "))).")
    var printAfter: String?

    @Flag(help: "Print a per-step report: op, fused ops, shape, FLOPs, bytes moved, arena offset, and totals.")
    var report = false

    @OptionGroup var limits: MemoryLimitOptions

    func run() throws {
        if let name = printAfter, !PassManager.passNames.contains(name) {
            throw ValidationError("unknown pass '\(name)'; passes: " + PassManager.passNames.joined(separator: ", "))
        }
        var overrides: [String: [Int]] = [:]
        for s in shapes {
            let (name, dims) = try parseShape(s)
            overrides[name] = dims
        }
        let start = Date()
        let result: Compiler.Result
        let irNodes: Int
        do {
            let (r, warnings) = try ModelSession.compile(path: graph, weightsPath: weights, seed: seed,
                                                         options: CompileOptions(optimize: !noOptimization, budget: limits.budget), shapes: overrides) { pass, g in
                if pass == printAfter { print("== after \(pass)\n" + GraphPrinter.text(g)) }
            }
            for w in warnings { printError("warning: " + w) }
            result = r
            irNodes = r.graph.steps.count
        } catch {
            reportError(error)
            throw ExitCode(1)
        }
        if dumpIR { print(GraphPrinter.text(result.graph, memory: result.memory)) }
        if report { print(CompileReport.text(result, irNodeCount: irNodes)) }
        if let output {
            do { try PlanFile.write(result, to: output) } catch {
                reportError(error)
                throw ExitCode(1)
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.intValue ?? 0
            print(String(format: "%@: %d steps, arena %.2f MB, plan %.1f MB, compiled in %.2f s", output, result.graph.liveSteps.count,
                         Double(result.memory.arenaBytes) / 1e6, Double(size) / 1e6, Date().timeIntervalSince(start)))
        } else if !dumpIR && !report && printAfter == nil {
            throw ValidationError("nothing to do: give -o PLAN, --report, --dump-ir or --print-after")
        }
    }
}
