import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetRuntime
import UNetSpec

@main
struct UNetc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unetc",
        abstract: "A compiler for UNet models described in JSON.",
        subcommands: [Validate.self, Compile.self, Run.self, Sample.self, Inspect.self, DrawGraph.self, DumpIR.self]
    )
}

/// Standard error, for diagnostics.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}


/// Prints any error the library throws: diagnostics as a list, others as their description.
func reportError(_ error: Error) {
    if let d = error as? DiagnosticList {
        printError(d.report())
    } else {
        printError("\(error)")
    }
}

/// `x=1x3x512x512` to ("x", [1, 3, 512, 512]).
func parseShape(_ text: String) throws -> (String, [Int]) {
    guard let eq = text.firstIndex(of: "="), !text[..<eq].isEmpty else { throw ValidationError("--shape expects NAME=DxDxD, got '\(text)'") }
    let dims = text[text.index(after: eq)...].split(separator: "x").map { Int($0) }
    guard !dims.isEmpty, dims.allSatisfy({ $0 != nil }) else { throw ValidationError("--shape expects NAME=DxDxD, got '\(text)'") }
    return (String(text[..<eq]), dims.compactMap { $0 })
}
