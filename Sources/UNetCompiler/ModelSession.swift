import Foundation
import UNetIR
import UNetPasses
import UNetPlan
import UNetRuntime
import UNetSpec

/// A compiled model ready to run: from a graph file (compiled on the fly) or a plan file. The
/// library API behind `unetc run`; one session reuses one arena for every run.
public final class ModelSession {
    public let executor: Executor
    /// Non-fatal notes from loading (extra tensors in the weight file).
    public private(set) var warnings: [String] = []
    /// Seconds spent loading (parsing and compiling, or mapping a plan).
    public let loadSeconds: Double

    /// The optimized graph being run: inputs with roles and shapes, outputs, steps.
    public var graph: OptimizedGraph { executor.graph }

    /// Opens `path`: a plan file (`unetc compile` output) or a graph file, compiled here with the
    /// weights from `weightsPath` (safetensors) or the seeded initialisation (`seed`).
    public init(path: String, weightsPath: String? = nil, seed: UInt64 = 0, threads: Int,
                options: CompileOptions = CompileOptions(), shapes: [String: [Int]] = [:]) throws {
        let start = Date()
        if PlanFile.isPlan(path) {
            if weightsPath != nil { throw RuntimeError("'\(path)' is a compiled plan and carries its weights; drop --weights") }
            let loaded = try PlanLoader.load(path, budget: options.budget)
            executor = Executor(program: loaded.program, threads: threads)
        } else {
            let (compiled, warnings) = try Self.compile(path: path, weightsPath: weightsPath, seed: seed, options: options, shapes: shapes)
            self.warnings = warnings
            executor = Executor(program: Program(graph: compiled.graph, memory: compiled.memory), threads: threads)
        }
        loadSeconds = Date().timeIntervalSince(start)
    }

    /// Parses, lowers, loads or initialises weights, checks them, and optimizes.
    public static func compile(path: String, weightsPath: String?, seed: UInt64, options: CompileOptions, shapes: [String: [Int]] = [:],
                               after: ((String, OptimizedGraph) -> Void)? = nil) throws -> (Compiler.Result, warnings: [String]) {
        let graph: Graph
        switch GraphLoader.load(path: path, shapes: shapes) {
        case .failure(let d): throw d
        case .success(let g): graph = g
        }
        try options.budget.check(arena: nil, weights: graph.weightBytes,
                                 in: "graph '\(graph.name)'")
        let weights = try weightsPath.map { Compiler.constants(try SafetensorsFile.read($0, maxBytes: options.budget.weightBytes)) } ?? WeightSet.seeded(for: graph, seed: seed)
        let check = weights.check(against: graph)
        if !check.errors.isEmpty {
            throw RuntimeError("weights in '\(weightsPath ?? "seeded")' do not fit graph '\(graph.name)':\n  "
                               + (check.errors + check.warnings).joined(separator: "\n  "))
        }
        let result = Compiler.compile(graph, weights: weights, options: options, after: after)
        try options.budget.check(arena: result.memory.arenaBytes, weights: nil, in: "graph '\(graph.name)'")
        return (result, check.warnings)
    }

    /// Seeded data for an input nobody supplied: timesteps are integers in 0..<1000, masks 0 or 1, everything else N(0, 1).
    public func defaultInput(_ name: String, seed: UInt64) -> Tensor? {
        guard let entry = graph.inputs.first(where: { $0.name == name }) else { return nil }
        return Self.seededInput(shape: graph.steps[entry.step].shape, role: entry.role, name: name, seed: seed)
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

    /// Total FLOPs of one run.
    public var flops: Int { graph.liveSteps.reduce(0) { $0 + graph.flops(of: $1) } }
}

/// Telling plan files from graph files.
public enum PlanFile {
    public static func isPlan(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)) ?? Data()
        return [UInt8](head) == PlanFormat.magic
    }

    /// Writes a compiled graph as a plan, atomically, its convolution filters prepared for this machine's kernels.
    public static func write(_ result: Compiler.Result, to path: String) throws {
        let graph = WeightPreparation.runnable(result.graph)
        let data = try PlanFormat.encode(graph, memory: result.memory, passLog: result.log, compilerVersion: "unetc 0.1",
                                         isa: CPUFeatures.planTag, panelRows: WeightPreparation.panelRows) {
            WeightPreparation.planWeight(graph, step: $0)
        }
        try AtomicFile.write(data, to: path)
    }
}
