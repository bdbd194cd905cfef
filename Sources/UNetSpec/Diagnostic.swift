/// A position in a source file, 1-based, columns counted in Unicode scalars.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// One error found in a graph file: where it is (file, line:column, JSON path, node) and what is wrong.
///
/// Diagnostics are values, never traps: every stage collects them and the driver prints them all.
public struct Diagnostic: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var location: SourceLocation?
    /// JSON path of the offending value, e.g. `$.unet.encoders[1].block`; empty when not tied to a value.
    public var path: String
    /// The IR node or step the error concerns, when there is one.
    public var node: String?
    public var message: String
    /// A suggestion such as "did you mean 'conv2d'?".
    public var hint: String?

    public init(file: String = "", location: SourceLocation? = nil, path: String = "", node: String? = nil,
                message: String, hint: String? = nil) {
        self.file = file
        self.location = location
        self.path = path
        self.node = node
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var head = file.isEmpty ? "" : file + ":"
        if let location { head += "\(location):" }
        var text = (head.isEmpty ? "" : head + " ") + "error: " + message
        var context: [String] = []
        if let node { context.append("node '\(node)'") }
        if !path.isEmpty { context.append("at \(path)") }
        if !context.isEmpty { text += " (" + context.joined(separator: ", ") + ")" }
        if let hint { text += "\n  hint: " + hint }
        return text
    }
}

/// A list of diagnostics collected while processing one file; the cap keeps output readable on badly broken input.
public struct DiagnosticList: Error, Sendable, CustomStringConvertible {
    public var items: [Diagnostic]
    public init(_ items: [Diagnostic]) { self.items = items }

    /// Printable report: at most `limit` diagnostics and a count of the rest.
    public func report(limit: Int = Limits.maxPrintedDiagnostics) -> String {
        var lines = items.prefix(limit).map(\.description)
        if items.count > limit { lines.append("... and \(items.count - limit) more errors") }
        return lines.joined(separator: "\n")
    }

    public var description: String { report() }
}
