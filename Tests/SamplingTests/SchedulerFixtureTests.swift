import Foundation
import XCTest
import UNetCompiler

/// The Swift schedulers against Tools/scheduler_reference.py, a numpy transcription of diffusers'
/// DDPMScheduler and DDIMScheduler (Tests/Fixtures/schedulers.json): timesteps exactly, values within 1e-5.
final class SchedulerFixtureTests: XCTestCase {
    struct Case: Decodable {
        struct Step: Decodable {
            var t: Int
            var sample: [Float]
            var model_output: [Float]
            var noise: [Float]
            var prev_sample: [Float]
        }
        struct AddNoise: Decodable {
            var t: Int
            var original: [Float]?
            var original_samples: [Float]?
            var noise: [Float]
            var noisy: [Float]?
            var noisy_samples: [Float]?
        }
        var name: String
        var scheduler: String
        var config: [String: ConfigValue]
        var num_inference_steps: Int
        var timesteps: [Int]
        var alphas_cumprod_head: [Float]
        var alphas_cumprod_tail: [Float]
        var steps: [Step]
        var add_noise: [AddNoise]?
    }

    enum ConfigValue: Decodable {
        case number(Double), text(String), flag(Bool)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) } else if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
        }
        var number: Double { if case .number(let d) = self { d } else { 0 } }
        var text: String { if case .text(let s) = self { s } else { "" } }
        var flag: Bool { if case .flag(let b) = self { b } else { false } }
    }

    func testSchedulersMatchTheDiffusersTranscription() throws {
        let url = SamplerTests.root.appendingPathComponent("Tests/Fixtures/schedulers.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        for c in cases {
            var config = DiffusionScheduler.Config()
            config.numTrainTimesteps = Int(c.config["num_train_timesteps"]?.number ?? 1000)
            config.betaStart = c.config["beta_start"]?.number ?? 0.0001
            config.betaEnd = c.config["beta_end"]?.number ?? 0.02
            config.betaSchedule = try XCTUnwrap(DiffusionScheduler.BetaSchedule(rawValue: c.config["beta_schedule"]?.text ?? ""), c.name)
            config.predictionType = try XCTUnwrap(DiffusionScheduler.Prediction(rawValue: c.config["prediction_type"]?.text ?? ""), c.name)
            config.clipSample = c.config["clip_sample"]?.flag ?? true
            config.clipSampleRange = Float(c.config["clip_sample_range"]?.number ?? 1)
            config.timestepSpacing = try XCTUnwrap(DiffusionScheduler.Spacing(rawValue: c.config["timestep_spacing"]?.text ?? ""), c.name)
            config.stepsOffset = Int(c.config["steps_offset"]?.number ?? 0)
            if let a = c.config["set_alpha_to_one"] { config.setAlphaToOne = a.flag }
            config.eta = Float(c.config["eta"]?.number ?? 0)
            let kind = try XCTUnwrap(DiffusionScheduler.Kind(rawValue: c.scheduler))
            let s = try DiffusionScheduler(kind: kind, config: config, inferenceSteps: c.num_inference_steps)
            XCTAssertEqual(s.timesteps, c.timesteps, c.name)
            for (a, b) in zip(s.alphasCumprod.prefix(5), c.alphas_cumprod_head) { XCTAssertEqual(a, b, accuracy: 1e-6 + 1e-5 * abs(b), c.name) }
            for (a, b) in zip(s.alphasCumprod.suffix(5), c.alphas_cumprod_tail) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b) + 1e-9, c.name) }
            for step in c.steps {
                let out = s.step(modelOutput: step.model_output, t: step.t, sample: step.sample, noise: step.noise)
                for (a, b) in zip(out, step.prev_sample) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(c.name) t=\(step.t)") }
            }
            for n in c.add_noise ?? [] {
                guard let x = n.original ?? n.original_samples, let y = n.noisy ?? n.noisy_samples else { continue }
                for (a, b) in zip(s.addNoise(x, noise: n.noise, t: n.t), y) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(c.name) add_noise") }
            }
        }
    }
}
