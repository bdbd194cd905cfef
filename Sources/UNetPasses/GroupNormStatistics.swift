import UNetIR

/// GroupNorm (and InstanceNorm) statistics gathered where the producer writes.
///
/// A norm normally reads its input twice: once for the mean and variance of each group, once to
/// normalise. When the input comes straight from a step that writes it tile by tile (a
/// convolution, whose tiles are still in cache), that step also records per-channel block
/// statistics as its last epilogue; the norm combines them and reads its input only once, to
/// apply the normalisation (and the SiLU fused after it) where it reads.
public struct GroupNormStatistics: GraphPass {
    public init() {}
    public var name: String { "gn-stats" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var gathered = 0
        for i in graph.steps.indices where graph.steps[i].live {
            switch graph.steps[i].op {
            case .groupNorm, .instanceNorm: break
            default: continue
            }
            let p = graph.steps[i].inputs[0]
            let producer = graph.steps[p]
            guard producer.live, producer.shape.count == 4, EpilogueFusion.acceptsEpilogue(producer.op),
                  !producer.epilogue.contains(.statistics) else { continue }
            graph.steps[p].epilogue.append(.statistics)
            gathered += 1
        }
        return gathered
    }
}
