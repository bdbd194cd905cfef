import UNetIR

/// What the fusions into a step's reader share (`DepthwisePointwiseFusion`, `NormAttentionFusion`,
/// `NormConvolutionFusion`, `PadConvolutionFusion`, `UpsampleConvolutionFusion`): a step read by one step only, not a graph
/// output nor an elided concatenation, whose reader reads it once as its first input and computes
/// it as it goes (`Step.fusedIntoConsumer`).
extension OptimizedGraph {
    /// Marks every step that `fusible(step, reader, step's input shape)` accepts as computed by its
    /// reader; returns how many.
    mutating func fuseIntoReaders(_ fusible: (Step, Step, Shape) -> Bool) -> Int {
        let users = consumers()
        let outputs = outputSteps
        var fused = 0
        for i in steps.indices where steps[i].live && !steps[i].fusedIntoConsumer {
            guard users[i].count == 1, !outputs.contains(i), !elidedConcats.contains(i), let x = steps[i].inputs.first else { continue }
            let reader = steps[users[i][0]]
            guard reader.inputs.first == i, !reader.fusedIntoConsumer, fusible(steps[i], reader, steps[x].shape) else { continue }
            steps[i].fusedIntoConsumer = true
            fused += 1
        }
        return fused
    }
}
