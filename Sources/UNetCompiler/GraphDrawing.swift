import Foundation
import UNetIR
import UNetPasses

/// `unetc graph`: the graph in Graphviz DOT, before or after the passes. A fused step is one node
/// listing what it absorbed; skips are dashed edges; edges carry shapes.
public enum GraphDrawing {
    public static func dot(_ g: OptimizedGraph) -> String {
        func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph \(quote(g.name)) {", "  rankdir=TB;", "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];",
                     "  edge [fontname=\"Helvetica\", fontsize=8];"]
        let users = g.consumers()
        for (i, s) in g.steps.enumerated() where s.live {
            var label = s.name + "\\n" + s.op.name
            if !s.epilogue.isEmpty {
                label += " + " + s.epilogue.map(\.name).joined(separator: " + ")
            }
            if !s.absorbed.isEmpty { label += "\\nabsorbed: " + s.absorbed.joined(separator: ", ") }
            var attributes = "label=\(quote(label))"
            if case .input = s.op { attributes += ", shape=ellipse" }
            if g.elidedConcats.contains(i) { attributes += ", style=\"rounded,dotted\"" }
            lines.append("  n\(i) [\(attributes)];")
        }
        for (i, s) in g.steps.enumerated() where s.live {
            for v in Set(s.inputs).sorted() {
                // A skip's last reader is its decoder.
                let isSkip = g.skipSources.contains(v) && users[v].max() == i && users[v].count > 1
                lines.append("  n\(v) -> n\(i) [label=\(quote(OpSemantics.describe(g.steps[v].shape)))\(isSkip ? ", style=dashed" : "")];")
            }
        }
        for (name, step) in g.outputs {
            lines.append("  out_\(lines.count) [label=\(quote(name)), shape=ellipse];")
            lines.append("  n\(step) -> out_\(lines.count - 1);")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    /// Renders DOT to SVG with Graphviz's `dot`, or says how to get it.
    public static func svg(_ dot: String) throws -> String {
        guard let tool = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
            .map({ String($0) + "/dot" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw GraphDrawingError.graphvizMissing
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-Tsvg"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(dot.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw GraphDrawingError.failed(process.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }
}

public enum GraphDrawingError: Error, CustomStringConvertible {
    case graphvizMissing
    case failed(Int32)

    public var description: String {
        switch self {
        case .graphvizMissing: "SVG needs Graphviz's 'dot', which is not installed (Debian: apt-get install graphviz); --format dot works without it"
        case .failed(let status): "Graphviz 'dot' failed with status \(status)"
        }
    }
}
