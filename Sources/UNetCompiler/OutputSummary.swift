import Foundation
import UNetIR
import UNetRuntime

/// What `unetc run` prints about its results.
public enum OutputSummary {
    /// `name [shape] min .. mean .. max, NaN count`.
    public static func line(name: String, tensor t: Tensor) -> String {
        var lo = Float.infinity, hi = -Float.infinity, sum = 0.0, nan = 0, inf = 0
        for i in 0..<t.count {
            let v = t[i]
            if v.isNaN { nan += 1; continue }
            if v.isInfinite { inf += 1 }
            lo = min(lo, v)
            hi = max(hi, v)
            sum += Double(v)
        }
        let finite = t.count - nan
        let mean = finite > 0 ? sum / Double(finite) : .nan
        return String(format: "%@ %@ min %.6g mean %.6g max %.6g NaN %d Inf %d", name, OpSemantics.describe(t.shape), lo, mean, hi, nan, inf)
    }

    /// Per-op totals sorted by time, with GFLOP/s.
    public static func profileTable(_ entries: [Executor.ProfileEntry]) -> String {
        var byOp: [String: (seconds: Double, flops: Int, count: Int)] = [:]
        for e in entries {
            var v = byOp[e.op] ?? (0, 0, 0)
            v.seconds += e.seconds
            v.flops += e.flops
            v.count += 1
            byOp[e.op] = v
        }
        let total = entries.reduce(0) { $0 + $1.seconds }
        func row(_ cells: [String]) -> String {
            let widths = [20, 6, 10, 7, 9]
            return cells.enumerated().map { i, c in
                i == 0 ? c.padding(toLength: max(widths[0], c.count), withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: max(0, widths[i] - c.count)) + c
            }.joined(separator: " ")
        }
        var lines = [row(["op", "count", "ms", "share", "GFLOP/s"])]
        for (op, v) in byOp.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            lines.append(row([op, "\(v.count)", String(format: "%.2f", v.seconds * 1000), String(format: "%.1f%%", 100 * v.seconds / max(total, 1e-12)),
                              v.flops > 0 ? String(format: "%.1f", Double(v.flops) / 1e9 / max(v.seconds, 1e-12)) : "-"]))
        }
        let flops = entries.reduce(0) { $0 + $1.flops }
        let slowest = entries.sorted { $0.seconds > $1.seconds }.prefix(8)
        var stepLines = ["", "slowest steps:"]
        for e in slowest {
            stepLines.append(String(format: "  %8.2f ms %7.1f GFLOP/s  %@ (%@)", e.seconds * 1000,
                                    e.flops > 0 ? Double(e.flops) / 1e9 / max(e.seconds, 1e-12) : 0.0, e.node as NSString, e.op as NSString))
        }
        lines.append(row(["total", "\(entries.count)", String(format: "%.2f", total * 1000), "100.0%", String(format: "%.1f", Double(flops) / 1e9 / max(total, 1e-12))]))
        return (lines + stepLines).joined(separator: "\n")
    }

    /// Every step's time, one line per step in run order: name, op (with its epilogue), ms, GFLOP
    /// (tab-separated, with a header), for tools that compare runs step by step.
    public static func stepTimes(_ entries: [Executor.ProfileEntry]) -> String {
        (["step\top\tms\tgflop"] + entries.map { e in
            "\(e.node)\t\(e.op)\t" + String(format: "%.4f\t%.4f", e.seconds * 1000, Double(e.flops) / 1e9)
        }).joined(separator: "\n") + "\n"
    }
}
