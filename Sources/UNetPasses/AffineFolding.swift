import UNetIR

/// Constant folding of affine maps into weights: a `scale` (x * f + o) right after a convolution
/// or linear layer becomes part of its weights and bias.
public struct AffineFolding: GraphPass {
    public init() {}
    public var name: String { "affine-fold" }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var folded = 0
        let outputs = graph.outputSteps
        var users = graph.consumers()
        for i in graph.steps.indices where graph.steps[i].live {
            guard case .unary(.scale(let factor, let offset)) = graph.steps[i].op, graph.steps[i].epilogue.isEmpty,
                  let p = graph.steps[i].inputs.first, users[p] == [i], !outputs.contains(p), graph.steps[p].epilogue.isEmpty else { continue }
            let producer = graph.steps[p]
            let f = Float(factor), o = Float(offset)
            let channels = producer.shape.count == 4 ? producer.shape[1] : producer.shape[producer.shape.count - 1]
            guard let w = producer.weights.first ?? nil else { continue }
            let hadBias: Bool
            switch producer.op {
            case .conv2d(var c):
                hadBias = c.bias
                c.bias = true
                graph.steps[p].op = .conv2d(c)
            case .convTranspose2d(var c):
                hadBias = c.bias
                c.bias = true
                graph.steps[p].op = .convTranspose2d(c)
            case .linear(let out, let bias):
                hadBias = bias
                graph.steps[p].op = .linear(out: out, bias: true)
            default:
                continue
            }
            let oldBias = hadBias ? producer.weights[1]?.values : nil
            graph.steps[p].weights = [ConstantTensor(shape: w.shape, values: w.values.map { $0 * f }),
                                      ConstantTensor(shape: [channels], values: (0..<channels).map { (oldBias?[$0] ?? 0) * f + o })]
            graph.steps[p].absorbed.append(graph.steps[i].name)
            graph.replaceUses(of: i, with: p)
            graph.steps[i].live = false
            users = graph.consumers()
            folded += 1
        }
        return folded
    }
}
