import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetPasses
import UNetPlan
import UNetRuntime
import UNetSpec

struct DumpIR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ir", abstract: "Print the lowered graph as JSON (the format tools such as the ONNX oracle read).")

    @Argument(help: "A graph file (.json).")
    var file: String

    func run() throws {
        switch GraphLoader.load(path: file) {
        case .failure(let diagnostics):
            printError(diagnostics.report())
            throw ExitCode(1)
        case .success(let graph):
            print(IRExport.json(graph))
        }
    }
}

