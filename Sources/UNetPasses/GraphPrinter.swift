import UNetIR

/// The optimized graph as text, one step per line (`--dump-ir`, `--print-after`):
/// `%12 conv2d(%10) +relu +add(%7) -> [1, 64, 128, 128]  encoders.0.conv1  {bn1, relu_2}`.
public enum GraphPrinter {
    public static func text(_ graph: OptimizedGraph, memory: MemoryPlan? = nil) -> String {
        var lines = ["graph \(graph.name): \(graph.liveSteps.count) steps"]
        for (i, s) in graph.steps.enumerated() where s.live {
            let operands = s.operatorInputs.map { "%\($0)" }.joined(separator: ", ")
            var line = "%\(i) \(s.op.name)(\(operands))"
            for e in s.epilogue {
                switch e {
                case .unary(let u): line += " +" + Op.unary(u).name
                case .add(let k): line += " +add(%\(s.inputs[k]))"
                case .addChannel(let k): line += " +add-channel(%\(s.inputs[k]))"
                case .film(let k): line += " +film(%\(s.inputs[k]))"
                case .statistics: line += " +statistics"
                }
            }
            if graph.elidedConcats.contains(i) { line += " [in place]" }
            if s.algorithm != .gemm { line += " [\(s.algorithm.rawValue)]" }
            if s.layout != .plain { line += " [\(s.layout.rawValue)]" }
            if s.fusedIntoConsumer { line += " [computed by its reader]" }
            line += " -> " + OpSemantics.describe(s.shape) + "  " + s.name
            if let offset = memory?.offsets[i] { line += "  @\(offset)" }
            if !s.absorbed.isEmpty { line += "  {" + s.absorbed.joined(separator: ", ") + "}" }
            lines.append(line)
        }
        lines.append("outputs: " + graph.outputs.map { "\($0.name) = %\($0.step)" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
