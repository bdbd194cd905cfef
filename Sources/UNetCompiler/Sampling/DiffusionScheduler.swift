import Foundation

/// DDPM (ancestral) and DDIM sampling steps with diffusers' formulas, defaults and parameter
/// names (`DDPMScheduler`, `DDIMScheduler`), in float32 as diffusers computes them, so a model
/// trained with diffusers samples the same way here. Tools/scheduler_reference.py holds a numpy
/// transcription that the tests compare against.
public struct DiffusionScheduler: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case ddpm, ddim }
    public enum BetaSchedule: String, Sendable, CaseIterable {
        case linear
        case scaledLinear = "scaled_linear"
        case cosine = "squaredcos_cap_v2"
    }
    public enum Prediction: String, Sendable, CaseIterable {
        case epsilon
        case vPrediction = "v_prediction"
        case sample
    }
    public enum Spacing: String, Sendable, CaseIterable { case leading, trailing, linspace }

    /// diffusers' config names and defaults.
    public struct Config: Sendable {
        public var numTrainTimesteps = 1000
        public var betaStart: Double = 0.0001
        public var betaEnd: Double = 0.02
        public var betaSchedule = BetaSchedule.linear
        public var predictionType = Prediction.epsilon
        public var clipSample = true
        public var clipSampleRange: Float = 1
        public var timestepSpacing = Spacing.leading
        public var stepsOffset = 0
        /// DDIM: the "previous" alpha product of the last step is 1 (else alphas_cumprod[0]).
        public var setAlphaToOne = true
        /// DDIM: 0 is deterministic DDIM, 1 is DDPM-like ancestral noise.
        public var eta: Float = 0

        public init() {}
    }

    public let kind: Kind
    public let config: Config
    public let alphasCumprod: [Float]
    public let timesteps: [Int]

    public init(kind: Kind, config: Config, inferenceSteps: Int) throws {
        let n = config.numTrainTimesteps
        guard n >= 1, n <= 100_000 else { throw SamplingError("num_train_timesteps must be in 1...100000") }
        guard inferenceSteps >= 1, inferenceSteps <= n else {
            throw SamplingError("--steps must be between 1 and num_train_timesteps (\(n)), got \(inferenceSteps)")
        }
        self.kind = kind
        self.config = config
        var betas: [Float]
        switch config.betaSchedule {
        case .linear:
            betas = Self.linspace(Float(config.betaStart), Float(config.betaEnd), n)
        case .scaledLinear:
            betas = Self.linspace(Float(config.betaStart.squareRoot()), Float(config.betaEnd.squareRoot()), n).map { $0 * $0 }
        case .cosine:
            func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
            betas = (0..<n).map { i in Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), 0.999)) }
        }
        var product: Float = 1
        alphasCumprod = betas.map { beta in
            product *= 1 - beta
            return product
        }
        switch config.timestepSpacing {
        case .linspace:
            timesteps = (0..<inferenceSteps).map { i in
                inferenceSteps == 1 ? 0 : Int((Double(i) * Double(n - 1) / Double(inferenceSteps - 1)).rounded(.toNearestOrEven))
            }.reversed()
        case .leading:
            let ratio = n / inferenceSteps
            timesteps = (0..<inferenceSteps).map { $0 * ratio + config.stepsOffset }.reversed()
        case .trailing:
            let ratio = Double(n) / Double(inferenceSteps)
            timesteps = stride(from: Double(n), to: 0, by: -ratio).map { Int($0.rounded(.toNearestOrEven)) - 1 }
        }
        if let bad = timesteps.first(where: { $0 < 0 || $0 >= n }) {
            throw SamplingError("timestep \(bad) falls outside 0..<\(n): lower steps_offset or use another spacing")
        }
    }

    /// torch.linspace in float32.
    static func linspace(_ a: Float, _ b: Float, _ n: Int) -> [Float] {
        n == 1 ? [a] : (0..<n).map { a + (b - a) * Float($0) / Float(n - 1) }
    }

    /// `x_t = sqrt(ac[t]) x_0 + sqrt(1 - ac[t]) noise` (forward noising, `add_noise`).
    public func addNoise(_ x: [Float], noise: [Float], t: Int) -> [Float] {
        let a = alphasCumprod[t].squareRoot(), b = (1 - alphasCumprod[t]).squareRoot()
        return zip(x, noise).map { a * $0 + b * $1 }
    }

    /// One reverse step from `t`: the sample at the previous timestep. `noise` is used where the step is stochastic.
    public func step(modelOutput: [Float], t: Int, sample: [Float], noise: [Float]) -> [Float] {
        var x = sample
        step(modelOutput: { modelOutput[$0] }, t: t, sample: &x, noise: { noise[$0] })
        return x
    }

    /// The same step in place, reading the model output and noise through accessors (no allocation).
    public func step(modelOutput: (Int) -> Float, t: Int, sample x: inout [Float], noise: (Int) -> Float) {
        switch kind {
        case .ddpm: ddpmStep(modelOutput, t, &x, noise)
        case .ddim: ddimStep(modelOutput, t, &x, noise)
        }
    }

    /// The timestep after `t` in the schedule, or -1 (diffusers' `previous_timestep`).
    func previous(_ t: Int) -> Int {
        guard let i = timesteps.firstIndex(of: t), i + 1 < timesteps.count else { return -1 }
        return timesteps[i + 1]
    }

    func originalSample(_ out: Float, _ x: Float, alpha: Float, beta: Float) -> Float {
        switch config.predictionType {
        case .epsilon: (x - beta.squareRoot() * out) / alpha.squareRoot()
        case .sample: out
        case .vPrediction: alpha.squareRoot() * x - beta.squareRoot() * out
        }
    }

    func clip(_ v: Float) -> Float {
        config.clipSample ? min(max(v, -config.clipSampleRange), config.clipSampleRange) : v
    }

    func ddpmStep(_ out: (Int) -> Float, _ t: Int, _ x: inout [Float], _ noise: (Int) -> Float) {
        let prevT = previous(t)
        let alphaProd = alphasCumprod[t]
        let alphaProdPrev: Float = prevT >= 0 ? alphasCumprod[prevT] : 1
        let betaProd = 1 - alphaProd, betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev, currentBeta = 1 - currentAlpha
        let originalCoefficient = alphaProdPrev.squareRoot() * currentBeta / betaProd
        let sampleCoefficient = currentAlpha.squareRoot() * betaProdPrev / betaProd
        let variance = max((1 - alphaProdPrev) / (1 - alphaProd) * currentBeta, 1e-20)
        let deviation = t > 0 ? variance.squareRoot() : 0
        for i in 0..<x.count {
            let x0 = clip(originalSample(out(i), x[i], alpha: alphaProd, beta: betaProd))
            x[i] = originalCoefficient * x0 + sampleCoefficient * x[i] + deviation * noise(i)
        }
    }

    func ddimStep(_ out: (Int) -> Float, _ t: Int, _ x: inout [Float], _ noise: (Int) -> Float) {
        let prevT = t - config.numTrainTimesteps / timesteps.count
        let alphaProd = alphasCumprod[t]
        let alphaProdPrev: Float = prevT >= 0 ? alphasCumprod[prevT] : (config.setAlphaToOne ? 1 : alphasCumprod[0])
        let betaProd = 1 - alphaProd, betaProdPrev = 1 - alphaProdPrev
        let variance = (betaProdPrev / betaProd) * (1 - alphaProd / alphaProdPrev)
        let deviation = config.eta * variance.squareRoot()
        let direction = max(1 - alphaProdPrev - deviation * deviation, 0).squareRoot()
        for i in 0..<x.count {
            let o = out(i)
            var x0: Float
            var epsilon: Float
            switch config.predictionType {
            case .epsilon:
                x0 = (x[i] - betaProd.squareRoot() * o) / alphaProd.squareRoot()
                epsilon = o
            case .sample:
                x0 = o
                epsilon = (x[i] - alphaProd.squareRoot() * x0) / betaProd.squareRoot()
            case .vPrediction:
                x0 = alphaProd.squareRoot() * x[i] - betaProd.squareRoot() * o
                epsilon = alphaProd.squareRoot() * o + betaProd.squareRoot() * x[i]
            }
            x0 = clip(x0)
            var previous = alphaProdPrev.squareRoot() * x0 + direction * epsilon
            if config.eta > 0 { previous += deviation * noise(i) }
            x[i] = previous
        }
    }
}

/// A sampling problem, phrased for the user.
public struct SamplingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "error: " + message }
}
