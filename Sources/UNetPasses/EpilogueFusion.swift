import UNetIR

/// Moves elementwise work into the epilogue of the step that produces its operand: activations
/// (conv + ReLU, GroupNorm + SiLU), residual adds and FiLM scale/shift. The producer then applies
/// them while its output tile is still in cache, and the intermediate tensor disappears.
public struct EpilogueFusion: GraphPass {
    public init() {}
    public var name: String { "epilogue-fusion" }

    /// Producers whose kernels (or the executor right after them) apply an epilogue.
    static func acceptsEpilogue(_ op: Op) -> Bool {
        switch op {
        case .conv2d, .convTranspose2d, .linear, .matmul, .batchNorm, .groupNorm, .layerNorm, .instanceNorm, .binary, .attention, .geglu:
            return true
        default:
            return false
        }
    }

    public func run(_ graph: inout OptimizedGraph) -> Int {
        var fused = 0
        var changed = true
        while changed {
            changed = false
            let outputs = graph.outputSteps
            let users = graph.consumers()
            for i in graph.steps.indices where graph.steps[i].live {
                let step = graph.steps[i]
                guard step.epilogue.isEmpty else { continue }
                // The candidate's first operand comes from a producer only it reads.
                func soleProducer(_ v: Int) -> Int? {
                    guard users[v] == [i], !outputs.contains(v), graph.steps[v].live, Self.acceptsEpilogue(graph.steps[v].op),
                          !graph.elidedConcats.contains(v) else { return nil }
                    return v
                }
                var absorbed = false
                switch step.op {
                case .unary(.identity):
                    graph.replaceUses(of: i, with: step.inputs[0])
                    graph.steps[i].live = false
                    absorbed = true
                case .unary(let u):
                    if let p = soleProducer(step.inputs[0]) {
                        graph.steps[p].epilogue.append(.unary(u))
                        absorbed = merge(i, into: p, &graph)
                    }
                case .binary(.add):
                    // The producer's output has the add's shape; the other operand is the same shape (a residual)
                    // or one value per channel, and must exist before the producer runs.
                    for (x, other) in [(step.inputs[0], step.inputs[1]), (step.inputs[1], step.inputs[0])] where !absorbed {
                        guard let p = soleProducer(x), other < p, graph.steps[x].shape == step.shape else { continue }
                        let o = graph.steps[other].shape
                        let epilogue: Epilogue
                        if o == step.shape {
                            epilogue = .add(operand: graph.steps[p].inputs.count)
                        } else if step.shape.count == 4, o.count == 4, o[0] == step.shape[0], o[1] == step.shape[1], o[2] == 1, o[3] == 1 {
                            epilogue = .addChannel(operand: graph.steps[p].inputs.count)
                        } else {
                            continue
                        }
                        graph.steps[p].inputs.append(other)
                        graph.steps[p].epilogue.append(epilogue)
                        absorbed = merge(i, into: p, &graph)
                    }
                case .film:
                    let (x, e) = (step.inputs[0], step.inputs[1])
                    if let p = soleProducer(x), e < p, graph.steps[p].shape.count == 4 {
                        graph.steps[p].inputs.append(e)
                        graph.steps[p].epilogue.append(.film(operand: graph.steps[p].inputs.count - 1))
                        absorbed = merge(i, into: p, &graph)
                    }
                default:
                    break
                }
                if absorbed {
                    fused += 1
                    changed = true
                    break
                }
            }
        }
        return fused
    }

    private func merge(_ step: Int, into producer: Int, _ graph: inout OptimizedGraph) -> Bool {
        graph.steps[producer].absorbed.append(graph.steps[step].name)
        graph.replaceUses(of: step, with: producer)
        graph.steps[step].live = false
        return true
    }
}
