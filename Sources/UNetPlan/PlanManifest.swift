import UNetIR
import UNetPasses
import UNetSpec

/// Everything in a plan file except the weight bytes: steps, bindings, memory plan, and where each weight sits.
public struct PlanManifest: Codable, Sendable {
    /// A weight's place in the weight section: byte offset (64-byte aligned) and shape; float32 little-endian.
    public struct WeightRef: Codable, Sendable, Equatable {
        public var offset: Int
        public var shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    public struct PlanStep: Codable, Sendable {
        public var name: String
        public var op: Op
        public var inputs: [Int]
        public var operatorArity: Int
        public var shape: [Int]
        public var epilogue: [Epilogue]
        public var weights: [WeightRef?]
        public var absorbed: [String]
        public var live: Bool
        public var algorithm: ConvolutionAlgorithm
    }

    public struct Binding: Codable, Sendable {
        public var name: String
        public var step: Int
        public var role: String?
        public var shape: [Int]
    }

    public var name: String
    /// Instruction set the weights were packed for and the kernels the plan expects.
    public var isa: String
    public var compilerVersion: String
    public var steps: [PlanStep]
    public var inputs: [Binding]
    public var outputs: [Binding]
    public var elidedConcats: [Int]
    public var gateMapNames: [String]
    public var memory: MemoryPlan
    /// (pass, rewrites) as they ran.
    public var passLog: [[String]]
    public var weightBytes: Int

    /// The optimized graph described by the manifest; weights are left out (the runtime maps them from the file).
    public func graph() -> OptimizedGraph {
        let steps = steps.map {
            Step(name: $0.name, op: $0.op, inputs: $0.inputs, operatorArity: $0.operatorArity, shape: $0.shape, epilogue: $0.epilogue,
                 weights: $0.weights.map { _ in nil }, absorbed: $0.absorbed, live: $0.live, algorithm: $0.algorithm)
        }
        return OptimizedGraph(name: name, steps: steps, inputs: inputs.map { ($0.name, $0.step, $0.role) },
                              outputs: outputs.map { ($0.name, $0.step) }, elidedConcats: Set(elidedConcats), gateMapNames: Set(gateMapNames))
    }

    /// Checks every index and size in the manifest, so a corrupt or hostile file cannot make the runtime read out of bounds.
    public func validate() -> String? {
        let n = steps.count
        guard inputs.allSatisfy({ $0.step >= 0 && $0.step < n }), outputs.allSatisfy({ $0.step >= 0 && $0.step < n }) else {
            return "a binding names a step that does not exist"
        }
        guard memory.offsets.count == n else { return "the memory plan does not cover every step" }
        for (i, s) in steps.enumerated() {
            guard s.inputs.allSatisfy({ $0 >= 0 && $0 < i }), s.operatorArity <= s.inputs.count,
                  s.shape.count <= Limits.maxRank, let elements = OpSemantics.elementCount(s.shape) else {
                return "step \(i) ('\(s.name)') is malformed"
            }
            if s.live, case .input = s.op {} else if s.live {
                guard let offset = memory.offsets[i], offset >= 0, offset % 4 == 0, offset + elements * 4 <= memory.arenaBytes else {
                    return "step \(i) ('\(s.name)') has no valid place in the arena"
                }
                if let problem = s.op.parameterProblem { return "step \(i) ('\(s.name)'): \(problem)" }
                if s.algorithm == .winograd4x4 {
                    guard case .conv2d(let c) = s.op, s.operatorArity >= 1,
                          ConvolutionAlgorithmSelection.winogradApplies(c, input: steps[s.inputs[0]].shape, output: s.shape) else {
                        return "step \(i) ('\(s.name)') asks for a Winograd convolution its shapes do not allow"
                    }
                }
                do {
                    let shape = try OpSemantics.outputShape(of: s.op, inputs: s.inputs.prefix(s.operatorArity).map { steps[$0].shape })
                    guard shape == s.shape else { return "step \(i) ('\(s.name)') records a shape its operator does not produce" }
                } catch {
                    return "step \(i) ('\(s.name)'): \(error.message)"
                }
                // Epilogue kernels index operands by the output's batch, channel and pixel: their shapes must match it.
                for e in s.epilogue {
                    let operand: Int
                    let fits: (Shape) -> Bool
                    let channels = s.shape.count >= 2 ? s.shape[0] * s.shape[1] : -1
                    switch e {
                    case .unary: continue
                    case .statistics:
                        guard s.shape.count == 4 else { return "step \(i) ('\(s.name)') gathers statistics of a tensor that is not NCHW" }
                        continue
                    case .add(let k): operand = k; fits = { $0 == s.shape }
                    case .addChannel(let k): operand = k; fits = { OpSemantics.elementCount($0) == channels }
                    case .film(let k): operand = k; fits = { OpSemantics.elementCount($0) == 2 * channels }
                    }
                    guard operand >= s.operatorArity && operand < s.inputs.count, fits(steps[s.inputs[operand]].shape) else {
                        return "step \(i) ('\(s.name)') has a bad epilogue operand"
                    }
                }
                let expected = OpSemantics.weights(of: s.op, inputShapes: s.inputs.prefix(s.operatorArity).map { steps[$0].shape }, outputShape: s.shape)
                guard s.weights.count == expected.count || s.weights.isEmpty && expected.isEmpty else {
                    return "step \(i) ('\(s.name)') has \(s.weights.count) weights, its operator takes \(expected.count)"
                }
                for (w, spec) in zip(s.weights, expected) {
                    guard let w else {
                        if spec.isOptional || spec.dtype != .f32 { continue }
                        return "step \(i) ('\(s.name)') lacks its weight '\(spec.name)'"
                    }
                    guard w.shape == spec.shape, w.offset >= 0, w.offset % 64 == 0, w.offset + w.count * 4 <= weightBytes else {
                        return "step \(i) ('\(s.name)') has a weight outside the weight section or of the wrong shape"
                    }
                }
            }
        }
        return nil
    }
}
