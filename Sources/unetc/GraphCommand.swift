import ArgumentParser
import Foundation
import UNetCompiler
import UNetPasses
import UNetRuntime

struct DrawGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph", abstract: "Draw a graph (before or after the passes) or a plan as DOT or SVG.")

    enum Format: String, ExpressibleByArgument { case dot, svg }

    @Argument(help: "A graph file (.json) or a plan file.")
    var input: String

    @Option(help: "dot or svg (SVG needs Graphviz's dot).")
    var format: Format = .dot

    @Flag(help: "Draw a graph file after the optimization passes (plans always are).")
    var optimized = false

    @Option(name: .shortAndLong, help: "Write here instead of standard output.")
    var output: String?

    func run() throws {
        let graph: OptimizedGraph
        do {
            if PlanFile.isPlan(input) {
                graph = try PlanLoader.load(input).program.graph
            } else {
                graph = try ModelSession.compile(path: input, weightsPath: nil, seed: 0, options: CompileOptions(optimize: optimized)).0.graph
            }
        } catch {
            reportError(error)
            throw ExitCode(1)
        }
        var text = GraphDrawing.dot(graph)
        if format == .svg {
            do { text = try GraphDrawing.svg(text) } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
        if let output {
            do { try AtomicFile.write(Data(text.utf8), to: output) } catch {
                reportError(error)
                throw ExitCode(1)
            }
        } else {
            print(text)
        }
    }
}
