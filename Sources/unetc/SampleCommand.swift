import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetRuntime

/// Set by SIGINT; the sampling loop stops after the current step.
nonisolated(unsafe) var interruptRequested: sig_atomic_t = 0

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run reverse diffusion with a diffusion UNet (DDPM or DDIM, diffusers' formulas) and write the image.")

    @Argument(help: "A diffusion UNet: graph file (.json) or plan; inputs with roles image, timestep and optionally context.")
    var graph: String

    @Option(help: "Weights (.safetensors); without it the seeded initialisation (noise in, noise out).")
    var weights: String?

    @Option(help: "Inference steps.") var steps = 50
    @Option(help: "ddpm or ddim.") var scheduler: String = "ddim"
    @Option(help: "DDIM eta: 0 deterministic, 1 ancestral.") var eta: Float = 0
    @Option(help: "Seed of the initial noise and of every step's noise.") var seed: UInt64 = 0
    @Option(name: .customLong("beta-schedule"), help: "linear, scaled_linear or squaredcos_cap_v2.") var betaSchedule = "linear"
    @Option(name: .customLong("beta-start")) var betaStart: Double = 0.0001
    @Option(name: .customLong("beta-end")) var betaEnd: Double = 0.02
    @Option(name: .customLong("num-train-timesteps")) var numTrainTimesteps = 1000
    @Option(name: .customLong("prediction-type"), help: "epsilon, v_prediction or sample.") var predictionType = "epsilon"
    @Option(name: .customLong("timestep-spacing"), help: "leading, trailing or linspace.") var timestepSpacing = "leading"
    @Option(name: .customLong("steps-offset")) var stepsOffset = 0
    @Flag(name: .customLong("no-clip-sample"), help: "Do not clip the predicted original sample to [-1, 1].") var noClip = false
    @Option(help: "Context for cross-attention (.npy, [1 or B, M, C]).") var context: String?
    @Option(name: .customLong("uncond-context"), help: "Unconditional context for guidance (default zeros).") var uncondContext: String?
    @Option(name: .customLong("guidance-scale"), help: "Classifier-free guidance scale (needs a context).") var guidanceScale: Float?
    @Option(help: "Images per run.") var batch = 1
    @Option(help: "Inpainting: the image whose known pixels are kept (.png, or .npy in [-1, 1]).") var image: String?
    @Option(help: "Inpainting: which pixels to keep (.png: white keeps, black generates; or .npy in [0, 1]).") var mask: String?
    @Option(help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var limits: MemoryLimitOptions
    @Option(name: .shortAndLong, help: "out.png (8-bit, values [-1, 1] mapped to [0, 255]; a batch side by side) or out.npy.")
    var output: String

    func run() throws {
        guard let kind = DiffusionScheduler.Kind(rawValue: scheduler) else { throw ValidationError("--scheduler must be ddpm or ddim") }
        var config = DiffusionScheduler.Config()
        guard let schedule = DiffusionScheduler.BetaSchedule(rawValue: betaSchedule) else {
            throw ValidationError("--beta-schedule must be one of " + DiffusionScheduler.BetaSchedule.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let prediction = DiffusionScheduler.Prediction(rawValue: predictionType) else {
            throw ValidationError("--prediction-type must be one of " + DiffusionScheduler.Prediction.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let spacing = DiffusionScheduler.Spacing(rawValue: timestepSpacing) else {
            throw ValidationError("--timestep-spacing must be one of " + DiffusionScheduler.Spacing.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard output.hasSuffix(".png") || output.hasSuffix(".npy") else { throw ValidationError("-o must end in .png or .npy") }
        config.betaSchedule = schedule
        config.betaStart = betaStart
        config.betaEnd = betaEnd
        config.numTrainTimesteps = numTrainTimesteps
        config.predictionType = prediction
        config.timestepSpacing = spacing
        config.stepsOffset = stepsOffset
        config.clipSample = !noClip
        config.eta = eta
        var options = DiffusionSampler.Options()
        options.scheduler = kind
        options.config = config
        options.steps = steps
        options.seed = seed
        options.batch = batch
        options.guidanceScale = guidanceScale
        options.threads = threads
        options.budget = limits.budget

        signal(SIGINT) { _ in interruptRequested = 1 }
        let interactive = isatty(STDERR_FILENO) != 0
        let start = Date()
        do {
            let sampler = try DiffusionSampler(path: graph, weightsPath: weights, options: options)
            var contextTensor = try context.map { try NumpyFile.read($0) }
            if contextTensor == nil, let (name, shape) = sampler.contextInput {
                var rng = SplitMix64(seed: seed ^ 0xC0DE)
                contextTensor = Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() })
                printError("note: '\(name)' not given (--context); using seeded random data (--seed \(seed))")
            }
            let uncond = try uncondContext.map { try NumpyFile.read($0) }
            var inpainting: DiffusionSampler.Inpainting?
            switch (image, mask) {
            case (let i?, let m?):
                let maskTensor = m.hasSuffix(".png") ? try PNGFile.read(m) : try NumpyFile.read(m)
                // A PNG mask was read into [-1, 1] like an image: back to [0, 1], first channel only.
                let plane = m.hasSuffix(".png")
                    ? Tensor(shape: [1, 1] + maskTensor.shape.dropFirst(2), values: maskTensor.values.prefix(maskTensor.shape[2] * maskTensor.shape[3]).map { ($0 + 1) / 2 })
                    : maskTensor
                inpainting = .init(known: i.hasSuffix(".png") ? try PNGFile.read(i) : try NumpyFile.read(i), mask: plane)
            case (nil, nil): break
            default: throw ValidationError("inpainting needs both --image and --mask")
            }
            let loopStart = Date()
            let result = try sampler.run(context: contextTensor, uncondContext: uncond, inpainting: inpainting, progress: { step, total, seconds in
                let elapsed = Date().timeIntervalSince(loopStart)
                let rate = Double(step) / max(elapsed, 1e-9)
                let eta = Double(total - step) / max(rate, 1e-9)
                if interactive {
                    let width = 30, filled = width * step / total
                    printErrorInline(String(format: "\r[%@%@] %d/%d  %.2f it/s  ETA %.1f s", String(repeating: "#", count: filled),
                                            String(repeating: " ", count: width - filled), step, total, rate, eta))
                    if step == total { printError("") }
                } else if step == total || step % max(1, total / 10) == 0 {
                    printError(String(format: "step %d/%d  %.2f it/s  ETA %.1f s", step, total, rate, eta))
                }
            }, shouldStop: { interruptRequested != 0 })
            try write(result)
            let perStep = sampler.stepSeconds.sorted()[sampler.stepSeconds.count / 2]
            print(String(format: "%@: %d %@ steps in %.2f s (UNet median %.1f ms per step, total %.2f s with compilation)", output, steps,
                         scheduler, Date().timeIntervalSince(loopStart), perStep * 1000, Date().timeIntervalSince(start)))
        } catch {
            reportError(error)
            throw ExitCode(interruptRequested != 0 ? 130 : 1)
        }
    }

    func write(_ t: Tensor) throws {
        if output.hasSuffix(".npy") {
            try NumpyFile.write(t, to: output)
            return
        }
        let (b, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        guard c == 1 || c == 3 else { throw SamplingError("PNG output needs 1 or 3 channels, the sample has \(c): write .npy") }
        // A batch goes side by side.
        var grid = [UInt8](repeating: 0, count: h * w * b * c)
        for i in 0..<b {
            let image = PNGFile.bytes(fromPlanes: t, batch: i).pixels
            for y in 0..<h {
                for x in 0..<(w * c) { grid[(y * w * b + i * w) * c + x] = image[y * w * c + x] }
            }
        }
        try AtomicFile.write(PNGFile.encode(width: w * b, height: h, channels: c, pixels: grid), to: output)
    }
}

func printErrorInline(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
