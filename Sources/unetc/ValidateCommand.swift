import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetPasses
import UNetPlan
import UNetRuntime
import UNetSpec

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check graph files: every shape, parameter and FLOP, or located errors.")

    @Argument(help: "Graph files (.json).")
    var files: [String]

    @Flag(name: .shortAndLong, help: "Print a per-node table: name, op, output shape, params, FLOPs.")
    var verbose = false

    @Flag(name: .customLong("weights-manifest"), help: "Print every weight tensor the graph expects: state_dict name, shape, dtype.")
    var weightsManifest = false

    func run() throws {
        var failed = 0
        for file in files {
            switch GraphLoader.load(path: file) {
            case .failure(let diagnostics):
                failed += 1
                printError(diagnostics.report())
                printError("\(file): \(diagnostics.items.count) error\(diagnostics.items.count == 1 ? "" : "s")")
            case .success(let graph):
                print("\(file): ok (\(graph.name))")
                print(GraphSummary.summary(graph))
                if verbose { print(GraphSummary.nodeTable(graph)) }
                if weightsManifest { print(GraphSummary.weightManifest(graph)) }
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

