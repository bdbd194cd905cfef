import Foundation
import UNetIR

/// Human-readable reports of a lowered graph: the `validate` summary, the per-node table, the weight manifest.
public enum GraphSummary {
    public static func shape(_ s: Shape) -> String { OpSemantics.describe(s) }

    /// `7.77 M`, `35.75 M`, `982.1 K`.
    public static func count(_ n: Int) -> String {
        if n >= 1_000_000 { return String(format: "%.2f M", Double(n) / 1e6) }
        if n >= 1_000 { return String(format: "%.1f K", Double(n) / 1e3) }
        return "\(n)"
    }

    public static func gflop(_ flops: Int) -> String { String(format: "%.2f GFLOP", Double(flops) / 1e9) }

    /// The few lines `unetc validate` prints for a graph that is correct.
    public static func summary(_ graph: Graph) -> String {
        var lines: [String] = []
        let inputs = graph.inputs.map { "\($0.name) \(shape(graph.nodes[$0.node].shape))" + ($0.role.map { " (\($0))" } ?? "") }
        let outputs = graph.outputs.map { "\($0.name) \(shape(graph.nodes[$0.node].shape))" }
        lines.append("  inputs:     " + inputs.joined(separator: ", "))
        lines.append("  outputs:    " + outputs.joined(separator: ", "))
        let weights = graph.weights
        lines.append("  nodes:      \(graph.nodes.count - graph.inputs.count)")
        lines.append("  parameters: \(graph.parameterCount) (\(count(graph.parameterCount))) in \(weights.filter { !$0.isBuffer }.count) tensors")
        lines.append("  compute:    \(gflop(graph.totalFLOPs)) (\(graph.totalFLOPs) FLOP)")
        return lines.joined(separator: "\n")
    }

    /// One row per node: name, op, output shape, parameters, FLOPs.
    public static func nodeTable(_ graph: Graph) -> String {
        var rows: [[String]] = [["node", "op", "output", "params", "FLOPs"]]
        let weights = Dictionary(grouping: graph.weights.filter { !$0.isBuffer }) { w in
            graph.nodes.first { n in n.weightPrefix.map { w.name.hasPrefix($0 + ".") } ?? false }?.id ?? -1
        }
        for node in graph.nodes {
            let params = weights[node.id]?.reduce(0) { $0 + $1.shape.reduce(1, *) } ?? 0
            let flops = graph.flops(of: node)
            rows.append([node.name, node.op.name, shape(node.shape), params == 0 ? "-" : count(params), flops == 0 ? "-" : String(format: "%.3f G", Double(flops) / 1e9)])
        }
        return table(rows)
    }

    /// Every tensor a weight file must hold: `name  shape  dtype`, in node order.
    public static func weightManifest(_ graph: Graph) -> String {
        table([["tensor", "shape", "dtype", "kind"]] + graph.weights.map {
            [$0.name, shape($0.shape), $0.dtype.rawValue, $0.isOptional ? "buffer, optional" : $0.isBuffer ? "buffer" : "parameter"]
        })
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = first.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
