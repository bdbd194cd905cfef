import ArgumentParser
import Foundation
import UNetCompiler
import UNetPasses
import UNetPlan
import UNetRuntime

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print what a plan file holds: header, bindings, steps, memory.")

    @Argument(help: "A plan file from `unetc compile`.")
    var plan: String

    func run() throws {
        let start = Date()
        let loaded: PlanLoader.Loaded
        do { loaded = try PlanLoader.load(plan) } catch {
            reportError(error)
            throw ExitCode(1)
        }
        let seconds = Date().timeIntervalSince(start)
        let m = loaded.manifest
        print("plan \(plan): '\(m.name)', format \(PlanFormat.version), \(m.isa), \(m.compilerVersion)")
        print(String(format: "size %.1f MB (weights %.1f MB), loaded and verified in %.1f ms", Double(loaded.file.count) / 1e6,
                     Double(m.weightBytes) / 1e6, seconds * 1000))
        for b in m.inputs { print("input  \(b.name) \(b.shape)" + (b.role.map { " (\($0))" } ?? "")) }
        for b in m.outputs { print("output \(b.name) \(b.shape)") }
        print(String(format: "arena %.2f MB (all intermediates %.2f MB)", Double(m.memory.arenaBytes) / 1e6, Double(m.memory.unplannedBytes) / 1e6))
        print("passes: " + m.passLog.map { $0.joined(separator: " ") }.joined(separator: ", "))
        print(GraphPrinter.text(loaded.program.graph, memory: m.memory))
    }
}
