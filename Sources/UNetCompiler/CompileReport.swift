import Foundation
import UNetIR
import UNetPasses

/// `unetc compile --report`: per step what runs, what it absorbed, its cost and where its output lives.
public enum CompileReport {
    public static func text(_ result: Compiler.Result, irNodeCount: Int) -> String {
        let g = result.graph
        var rows: [[String]] = [["step", "op", "fused", "output", "MFLOP", "MB moved", "arena offset"]]
        var totalFLOPs = 0, totalBytes = 0
        for (i, s) in g.steps.enumerated() where s.live {
            if case .input = s.op { continue }
            let flops = g.flops(of: s)
            let weightBytes = s.weights.reduce(0) { $0 + ($1?.count ?? 0) * 4 }
            let bytes = result.memory.inPlace.contains(i) ? 0
                : s.inputs.reduce(0) { $0 + (OpSemantics.elementCount(g.steps[$1].shape) ?? 0) * 4 } + (OpSemantics.elementCount(s.shape) ?? 0) * 4 + weightBytes
            totalFLOPs += flops
            totalBytes += bytes
            let fused = (s.epilogue.map(\.name) + (result.graph.elidedConcats.contains(i) ? ["in-place"] : [])
                         + (s.fusedIntoConsumer ? ["in-reader"] : [])).joined(separator: "+")
            rows.append([s.name, s.op.name, fused.isEmpty ? "-" : fused, OpSemantics.describe(s.shape), String(format: "%.1f", Double(flops) / 1e6),
                         String(format: "%.2f", Double(bytes) / 1e6), result.memory.offsets[i].map(String.init) ?? "-"])
        }
        var lines = [GraphSummary.table(rows)]
        lines.append("")
        lines.append("passes: " + result.log.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        lines.append("steps: \(irNodeCount) IR nodes -> \(g.liveSteps.count) steps")
        lines.append(String(format: "compute: %.2f GFLOP; memory traffic: %.1f MB", Double(totalFLOPs) / 1e9, Double(totalBytes) / 1e6))
        lines.append(String(format: "arena: %.2f MB peak vs %.2f MB for all intermediate tensors (%.0f%%)",
                            Double(result.memory.arenaBytes) / 1e6, Double(result.memory.unplannedBytes) / 1e6,
                            100 * Double(result.memory.arenaBytes) / Double(max(result.memory.unplannedBytes, 1))))
        return lines.joined(separator: "\n")
    }
}
