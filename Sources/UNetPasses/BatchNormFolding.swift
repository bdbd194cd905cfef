import UNetIR

/// Folds an inference batch_norm into the convolution that feeds it:
/// `W' = W * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(var + eps)`, per output channel.
public struct BatchNormFolding: GraphPass {
    public init() {}
    public var name: String { "bn-fold" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var folded = 0
        let outputs = graph.outputSteps
        var users = graph.consumers()
        for i in graph.steps.indices where graph.steps[i].live {
            guard case .batchNorm(let eps) = graph.steps[i].op else { continue }
            let bn = graph.steps[i]
            guard bn.epilogue.isEmpty, let p = bn.inputs.first, users[p] == [i], !outputs.contains(p),
                  graph.steps[p].epilogue.isEmpty, bn.weights.count >= 4,
                  let gamma = bn.weights[0], let beta = bn.weights[1], let mean = bn.weights[2], let variance = bn.weights[3] else { continue }
            let producer = graph.steps[p]
            let channels = gamma.count
            let scale = (0..<channels).map { gamma.values[$0] / (variance.values[$0] + Float(eps)).squareRoot() }
            let shift = (0..<channels).map { beta.values[$0] - mean.values[$0] * scale[$0] }
            switch producer.op {
            case .conv2d(var c):
                guard let w = producer.weights.first ?? nil else { continue }
                let perChannel = w.count / channels
                let newWeight = (0..<w.count).map { w.values[$0] * scale[$0 / perChannel] }
                let oldBias = c.bias ? producer.weights[1]?.values : nil
                let newBias = (0..<channels).map { (oldBias?[$0] ?? 0) * scale[$0] + shift[$0] }
                c.bias = true
                graph.steps[p].op = .conv2d(c)
                graph.steps[p].weights = [ConstantTensor(shape: w.shape, values: newWeight), ConstantTensor(shape: [channels], values: newBias)]
            case .convTranspose2d(var c):
                guard let w = producer.weights.first ?? nil else { continue }
                // Weight [Cin, Cout/g, kh, kw]: output channel = group * Cout/g + j.
                let (cin, coutG, kernel) = (w.shape[0], w.shape[1], w.shape[2] * w.shape[3])
                let groups = channels / coutG
                let cinG = cin / groups
                var newWeight = w.values
                for ci in 0..<cin {
                    for j in 0..<coutG {
                        let co = (ci / cinG) * coutG + j
                        for k in 0..<kernel { newWeight[(ci * coutG + j) * kernel + k] *= scale[co] }
                    }
                }
                let oldBias = c.bias ? producer.weights[1]?.values : nil
                let newBias = (0..<channels).map { (oldBias?[$0] ?? 0) * scale[$0] + shift[$0] }
                c.bias = true
                graph.steps[p].op = .convTranspose2d(c)
                graph.steps[p].weights = [ConstantTensor(shape: w.shape, values: newWeight), ConstantTensor(shape: [channels], values: newBias)]
            default:
                continue
            }
            graph.steps[p].absorbed.append(bn.name)
            graph.replaceUses(of: i, with: p)
            graph.steps[i].live = false
            users = graph.consumers()
            folded += 1
        }
        return folded
    }
}
