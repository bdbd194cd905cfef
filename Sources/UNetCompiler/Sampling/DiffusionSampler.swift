import Foundation
import UNetIR
import UNetPasses
import UNetRuntime

/// The reverse diffusion loop around one compiled UNet: graph inputs bound by role (the noisy
/// sample, the timestep, an optional cross-attention context), classifier-free guidance as one
/// batch-2B call, one session and one arena for every step.
public final class DiffusionSampler {
    public struct Options: Sendable {
        public var scheduler: DiffusionScheduler.Kind = .ddim
        public var config = DiffusionScheduler.Config()
        public var steps = 50
        public var seed: UInt64 = 0
        public var batch = 1
        /// nil: no guidance. Otherwise `uncond + scale * (cond - uncond)`, both halves in one call.
        public var guidanceScale: Float?
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public var budget = MemoryBudget()
        public init() {}
    }

    public let session: ModelSession
    public let scheduler: DiffusionScheduler
    public let options: Options
    let sampleName: String
    let timestepName: String
    let contextName: String?
    let sampleShape: [Int]
    /// The cross-attention input's name and declared shape, when the graph has one.
    public var contextInput: (name: String, shape: [Int])? { contextName.map { ($0, contextShape) } }
    let contextShape: [Int]

    /// Seconds of each UNet call of the last run.
    public private(set) var stepSeconds: [Double] = []

    /// Compiles (or maps) `path` for the batch the options need and binds its inputs by role.
    public init(path: String, weightsPath: String?, options: Options) throws {
        // Roles and declared shapes come from the graph as written; the batch is set when compiling.
        // A plan is mapped once, by the session that will run it; a graph file is parsed here and compiled below.
        let declared: [(name: String, shape: [Int], role: String?)]
        var planSession: ModelSession?
        if PlanFile.isPlan(path) {
            let opened = try ModelSession(path: path, weightsPath: weightsPath, threads: options.threads, options: CompileOptions(budget: options.budget))
            let g = opened.graph
            declared = g.inputs.map { ($0.name, g.steps[$0.step].shape, $0.role) }
            planSession = opened
        } else {
            switch GraphLoader.load(path: path) {
            case .failure(let d): throw d
            case .success(let g): declared = g.inputs.map { ($0.name, g.nodes[$0.node].shape, $0.role) }
            }
        }
        func shape(_ name: String) -> [Int] { declared.first { $0.name == name }?.shape ?? [] }
        guard let sample = declared.first(where: { $0.role == "image" || ($0.role == nil && $0.shape.count == 4) }) else {
            throw SamplingError("the graph has no image input to denoise (an input of rank 4 with role 'image' or no role)")
        }
        guard let timestep = declared.first(where: { $0.role == "timestep" }) else {
            throw SamplingError("the graph has no input with role 'timestep': it is not a diffusion UNet")
        }
        let context = declared.first { $0.role == "context" }
        // An inpainting model also reads the region to generate (role mask) and the known pixels (role condition).
        let mask = declared.first { $0.role == "mask" }
        let condition = declared.first { $0.role == "condition" }
        if let other = declared.first(where: { ![sample.name, timestep.name, context?.name, mask?.name, condition?.name].contains($0.name) }) {
            throw SamplingError("input '\(other.name)' (role \(other.role ?? "none")) has no value during sampling; supported roles: image, timestep, context, mask, condition")
        }
        if let condition, shape(condition.name) != shape(sample.name) {
            throw SamplingError("the condition input '\(condition.name)' must have the sample's shape \(shape(sample.name)) (the masked image)")
        }
        if options.guidanceScale != nil && context == nil {
            throw SamplingError("--guidance-scale needs a graph with a 'context' input")
        }
        guard options.batch >= 1 && options.batch <= 64 else { throw SamplingError("--batch must be between 1 and 64") }
        let calls = options.batch * (options.guidanceScale == nil ? 1 : 2)
        var shapes: [String: [Int]] = [:]
        var sampleShape = shape(sample.name)
        sampleShape[0] = options.batch
        shapes[sample.name] = [calls] + sampleShape.dropFirst()
        shapes[timestep.name] = [calls] + shape(timestep.name).dropFirst()
        if let context { shapes[context.name] = [calls] + shape(context.name).dropFirst() }
        if let mask { shapes[mask.name] = [calls] + shape(mask.name).dropFirst() }
        if let condition { shapes[condition.name] = [calls] + shape(condition.name).dropFirst() }
        if planSession != nil {
            for (name, s) in shapes where shape(name) != s {
                throw SamplingError("the plan serves '\(name)' as \(shape(name)), this sampling needs \(s): compile with --shape \(name)=\(s.map(String.init).joined(separator: "x"))")
            }
        }
        session = try planSession ?? ModelSession(path: path, weightsPath: weightsPath, seed: options.seed, threads: options.threads,
                                                  options: CompileOptions(budget: options.budget), shapes: shapes)
        scheduler = try DiffusionScheduler(kind: options.scheduler, config: options.config, inferenceSteps: options.steps)
        self.options = options
        sampleName = sample.name
        timestepName = timestep.name
        contextName = context?.name
        self.sampleShape = sampleShape
        contextShape = context.map { [1] + shape($0.name).dropFirst() } ?? []
        maskName = mask?.name
        maskChannels = mask.map { shape($0.name)[1] } ?? 1
        conditionName = condition?.name
    }

    let maskName: String?
    let maskChannels: Int
    let conditionName: String?

    /// True when the model itself takes the mask and the masked image (an inpainting model).
    public var takesInpaintingInputs: Bool { maskName != nil || conditionName != nil }

    /// Runs the whole schedule. `context` is `[1 or B, M, C]` (the unconditional half of guidance is
    /// `uncondContext`, zeros when nil). `progress(step, of, seconds)` after every step; `shouldStop`
    /// before every step (Ctrl-C), which makes the run throw without a result.
    /// Inpainting (RePaint-style replacement): after every step the pixels where `mask` is 1 are
    /// replaced by `known` noised to the step's timestep, so only the rest is generated. `known` is
    /// `[1 or B, C, H, W]` in [-1, 1]; `mask` is `[1 or B, 1 or C, H, W]` in [0, 1].
    public struct Inpainting {
        public var known: Tensor
        public var mask: Tensor
        public init(known: Tensor, mask: Tensor) {
            self.known = known
            self.mask = mask
        }
    }

    public func run(context: Tensor? = nil, uncondContext: Tensor? = nil, inpainting: Inpainting? = nil,
                    progress: ((Int, Int, Double) -> Void)? = nil, shouldStop: () -> Bool = { false }) throws -> Tensor {
        let count = sampleShape.reduce(1, *)
        let (known, mask) = try inpainting.map { try Self.inpaintingPlanes($0, sampleShape: sampleShape) } ?? ([], [])
        var rng = SplitMix64(seed: options.seed ^ 0xD1FF_5EED)
        var x = (0..<count).map { _ in rng.nextNormal() }
        let guided = options.guidanceScale != nil
        let calls = options.batch * (guided ? 2 : 1)
        let contextInput = try contextName.map { name -> Tensor in
            guard let context else { throw SamplingError("the graph takes a context: give --context FILE.npy") }
            return try Self.contextBatch(cond: context, uncond: uncondContext, batch: options.batch, guided: guided)
        }
        // The input tensors are allocated once and refilled each step.
        let sampleInput = Tensor(shape: [calls] + sampleShape.dropFirst())
        let timestepInput = Tensor(shape: [calls])
        var inputs: [String: Tensor] = [sampleName: sampleInput, timestepName: timestepInput]
        if let name = contextName, let c = contextInput { inputs[name] = c }
        if takesInpaintingInputs {
            guard !known.isEmpty else { throw SamplingError("this graph is an inpainting model: give --image and --mask") }
            // The model's mask marks what to generate (1 - keep); its masked image holds the known pixels.
            let perCall = count / options.batch
            let plane = perCall / sampleShape[1]
            if let name = maskName {
                let m = Tensor(shape: [calls, maskChannels] + sampleShape.dropFirst(2))
                for call in 0..<calls {
                    let b = call % options.batch
                    for ch in 0..<maskChannels { for p in 0..<plane { m[(call * maskChannels + ch) * plane + p] = 1 - mask[b * perCall + min(ch, sampleShape[1] - 1) * plane + p] } }
                }
                inputs[name] = m
            }
            if let name = conditionName {
                inputs[name] = Tensor(shape: [calls] + sampleShape.dropFirst(), values: (0..<calls).flatMap { call in
                    let b = call % options.batch
                    return (0..<perCall).map { known[b * perCall + $0] * mask[b * perCall + $0] }
                })
            }
        }
        guard let outputName = session.graph.outputs.first?.name,
              let outputStep = session.graph.outputs.first?.step,
              session.graph.steps[outputStep].shape.reduce(1, *) == calls * (count / options.batch) else {
            throw SamplingError("the model output does not have the sample's shape")
        }
        let prediction = Tensor(shape: session.graph.steps[outputStep].shape)
        var outputs = [outputName: prediction]
        for (name, step) in session.graph.outputs where name != outputName { outputs[name] = Tensor(shape: session.graph.steps[step].shape) }
        var noise = [Float](repeating: 0, count: count)
        var target = [Float](repeating: 0, count: count)
        stepSeconds = []
        stepSeconds.reserveCapacity(scheduler.timesteps.count)
        let timesteps = scheduler.timesteps
        for (i, t) in timesteps.enumerated() {
            if shouldStop() { throw SamplingError("interrupted after \(i) of \(timesteps.count) steps; nothing written") }
            for k in 0..<count {
                sampleInput[k] = x[k]
                if guided { sampleInput[count + k] = x[k] }
            }
            for k in 0..<calls { timestepInput[k] = Float(t) }
            let start = Date()
            try session.executor.run(inputs: inputs, into: outputs)
            stepSeconds.append(Date().timeIntervalSince(start))
            // With guidance, rows [0, B) are unconditional and [B, 2B) conditional.
            let scale = options.guidanceScale
            for k in 0..<count { noise[k] = rng.nextNormal() }
            scheduler.step(modelOutput: { k in
                scale.map { prediction[k] + $0 * (prediction[count + k] - prediction[k]) } ?? prediction[k]
            }, t: t, sample: &x, noise: { noise[$0] })
            if !known.isEmpty {
                let next = i + 1 < timesteps.count ? timesteps[i + 1] : -1
                for k in 0..<count { noise[k] = rng.nextNormal() }
                if next >= 0 {
                    let a = scheduler.alphasCumprod[next].squareRoot(), b = (1 - scheduler.alphasCumprod[next]).squareRoot()
                    for k in 0..<count { target[k] = a * known[k] + b * noise[k] }
                } else {
                    for k in 0..<count { target[k] = known[k] }
                }
                for k in 0..<count { x[k] = mask[k] * target[k] + (1 - mask[k]) * x[k] }
            }
            progress?(i + 1, timesteps.count, stepSeconds.last ?? 0)
        }
        return Tensor(shape: sampleShape, values: x)
    }

    /// `known` and `mask` broadcast to the sample's `[B, C, H, W]`.
    static func inpaintingPlanes(_ p: Inpainting, sampleShape: [Int]) throws -> ([Float], [Float]) {
        let (b, c, h, w) = (sampleShape[0], sampleShape[1], sampleShape[2], sampleShape[3])
        func expand(_ t: Tensor, _ what: String, channelsMayBeOne: Bool) throws -> [Float] {
            guard t.shape.count == 4, t.shape[0] == 1 || t.shape[0] == b, t.shape[1] == c || (channelsMayBeOne && t.shape[1] == 1),
                  t.shape[2] == h, t.shape[3] == w else {
                throw SamplingError("the \(what) has shape \(t.shape); the sample is \(sampleShape)")
            }
            var out = [Float](repeating: 0, count: b * c * h * w)
            for i in 0..<b { for ch in 0..<c { for p in 0..<(h * w) {
                let bi = t.shape[0] == 1 ? 0 : i, ci = t.shape[1] == 1 ? 0 : ch
                out[((i * c) + ch) * h * w + p] = t[((bi * t.shape[1]) + ci) * h * w + p]
            } } }
            return out
        }
        return (try expand(p.known, "inpainting image", channelsMayBeOne: false), try expand(p.mask, "mask", channelsMayBeOne: true).map { min(max($0, 0), 1) })
    }

    /// The context rows of one guided or plain call: `[uncond x B, cond x B]` with guidance, `[cond x B]` without.
    public static func contextBatch(cond: Tensor, uncond: Tensor?, batch: Int, guided: Bool) throws -> Tensor {
        guard cond.shape.count == 3 else { throw SamplingError("--context must be [1 or B, M, C], got \(cond.shape)") }
        let per = cond.count / cond.shape[0]
        guard cond.shape[0] == 1 || cond.shape[0] == batch else { throw SamplingError("--context batch \(cond.shape[0]) is neither 1 nor \(batch)") }
        func rows(_ t: Tensor) -> [Float] { (0..<batch).flatMap { b in Array(t.values[(t.shape[0] == 1 ? 0 : b) * per..<((t.shape[0] == 1 ? 0 : b) + 1) * per]) } }
        var values = rows(cond)
        if guided {
            let u = uncond ?? Tensor(zeros: [1] + cond.shape.dropFirst())
            guard u.shape.dropFirst() == cond.shape.dropFirst() else { throw SamplingError("--uncond-context must match --context's shape") }
            values = rows(u) + values
        }
        return Tensor(shape: [values.count / per] + cond.shape.dropFirst(), values: values)
    }
}
