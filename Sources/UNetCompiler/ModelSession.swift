import Foundation
import UNetIR
import UNetPasses
import UNetRuntime
import UNetSpec

/// A graph with its weights, ready to run: the library API behind `unetc run`.
public final class ModelSession {
    public let graph: Graph
    public let executor: Executor
    /// Non-fatal notes from loading (extra tensors in the weight file).
    public private(set) var warnings: [String] = []

    /// Loads `graphPath`, then weights from `weightsPath` (safetensors) or the seeded initialisation, and compiles.
    public init(graphPath: String, weightsPath: String? = nil, seed: UInt64 = 0, threads: Int,
                options: CompileOptions = CompileOptions()) throws {
        switch GraphLoader.load(path: graphPath) {
        case .failure(let d): throw d
        case .success(let g): graph = g
        }
        let weights: WeightSet
        if let weightsPath {
            weights = Compiler.constants(try SafetensorsFile.read(weightsPath))
        } else {
            weights = WeightSet.seeded(for: graph, seed: seed)
        }
        let check = weights.check(against: graph)
        if !check.errors.isEmpty {
            throw RuntimeError("weights in '\(weightsPath ?? "seeded")' do not fit graph '\(graph.name)':\n  "
                               + (check.errors + check.warnings).joined(separator: "\n  "))
        }
        warnings = check.warnings
        let compiled = Compiler.compile(graph, weights: weights, options: options)
        executor = Executor(program: Program(graph: compiled.graph, memory: compiled.memory), threads: threads)
    }

    /// Seeded data for an input nobody supplied: timesteps are integers in 0..<1000, masks 0 or 1, everything else N(0, 1).
    public func defaultInput(_ name: String, seed: UInt64) -> Tensor? {
        guard let entry = graph.inputs.first(where: { $0.name == name }) else { return nil }
        return Self.seededInput(shape: graph.nodes[entry.node].shape, role: entry.role, name: name, seed: seed)
    }

    static func seededInput(shape: [Int], role: String?, name: String, seed: UInt64) -> Tensor {
        let tensor = Tensor(shape: shape)
        var rng = SplitMix64(seed: seed ^ 0x5EED ^ fnv1a(name))
        for i in 0..<tensor.count {
            switch role {
            case "timestep": tensor[i] = Float(Int(rng.nextUnit() * 1000))
            case "mask": tensor[i] = rng.nextUnit() < 0.5 ? 0 : 1
            default: tensor[i] = rng.nextNormal()
            }
        }
        return tensor
    }

    /// Runs once; `attention` receives each attention node's probabilities `[B, heads, N, M]` and each gate's map.
    public func run(_ inputs: [String: Tensor], profile: ((Executor.ProfileEntry) -> Void)? = nil,
                    attention: ((String, Tensor) -> Void)? = nil) throws -> [String: Tensor] {
        try executor.run(inputs: inputs, profile: profile, attention: attention)
    }
}
