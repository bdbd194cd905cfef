import Foundation
import XCTest
import UNetCompiler
import UNetIR
@testable import UNetRuntime

final class SamplerTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let graph = root.appendingPathComponent("graphs/test/tiny_text_diffusion.json").path

    func context(_ seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [1, 5, 16], values: (0..<80).map { _ in rng.nextNormal() })
    }

    func options(_ kind: DiffusionScheduler.Kind, guidance: Float? = nil, batch: Int = 1) -> DiffusionSampler.Options {
        var o = DiffusionSampler.Options()
        o.scheduler = kind
        o.steps = 6
        o.seed = 11
        o.guidanceScale = guidance
        o.batch = batch
        o.threads = 2
        o.config.eta = kind == .ddim ? 0.5 : 0
        return o
    }

    func testSeededRunsAreReproducible() throws {
        for kind in DiffusionScheduler.Kind.allCases {
            let a = try DiffusionSampler(path: graph, weightsPath: nil, options: options(kind)).run(context: context(1))
            let b = try DiffusionSampler(path: graph, weightsPath: nil, options: options(kind)).run(context: context(1))
            XCTAssertEqual(a.values, b.values, "\(kind)")
            XCTAssertFalse(a.values.contains { $0.isNaN })
        }
    }

    /// Guidance runs both halves as one batch-2 call; doing the two calls separately gives the same step.
    func testBatchedGuidanceEqualsTwoSeparateCalls() throws {
        let scale: Float = 3
        let guided = try DiffusionSampler(path: graph, weightsPath: nil, options: options(.ddim, guidance: scale))
        let plain = try DiffusionSampler(path: graph, weightsPath: nil, options: options(.ddim))
        let cond = context(2)
        let uncond = Tensor(zeros: [1, 5, 16])
        var rng = SplitMix64(seed: 5)
        let x = (0..<(3 * 8 * 8)).map { _ in rng.nextNormal() }
        let t = guided.scheduler.timesteps[0]
        func eps(_ session: ModelSession, _ inputs: [String: Tensor]) throws -> [Float] {
            let outputs = try session.run(inputs)
            return outputs["noise_pred"]?.values ?? []
        }
        let both = try eps(guided.session, ["sample": Tensor(shape: [2, 3, 8, 8], values: x + x), "timestep": Tensor(shape: [2], values: [Float(t), Float(t)]),
                                            "context": try DiffusionSampler.contextBatch(cond: cond, uncond: nil, batch: 1, guided: true)])
        let u = try eps(plain.session, ["sample": Tensor(shape: [1, 3, 8, 8], values: x), "timestep": Tensor(shape: [1], values: [Float(t)]), "context": uncond])
        let c = try eps(plain.session, ["sample": Tensor(shape: [1, 3, 8, 8], values: x), "timestep": Tensor(shape: [1], values: [Float(t)]), "context": cond])
        XCTAssertEqual(both.count, 2 * u.count)
        for i in 0..<u.count {
            XCTAssertEqual(both[i], u[i], accuracy: 1e-5)
            XCTAssertEqual(both[u.count + i], c[i], accuracy: 1e-5)
        }
        // And the full guided loop is deterministic and finite.
        let image = try guided.run(context: cond)
        XCTAssertEqual(image.shape, [1, 3, 8, 8])
        XCTAssertFalse(image.values.contains { $0.isNaN })
    }

    func testStopRequestLeavesNoResult() throws {
        let sampler = try DiffusionSampler(path: graph, weightsPath: nil, options: options(.ddpm))
        var calls = 0
        XCTAssertThrowsError(try sampler.run(context: context(1), shouldStop: {
            calls += 1
            return calls > 2
        })) { XCTAssertTrue("\($0)".contains("interrupted after 2 of 6 steps")) }
    }

    func testRolesAreChecked() throws {
        let classic = Self.root.appendingPathComponent("graphs/unet_classic.json").path
        XCTAssertThrowsError(try DiffusionSampler(path: classic, weightsPath: nil, options: options(.ddim))) {
            XCTAssertTrue("\($0)".contains("no input with role 'timestep'"), "\($0)")
        }
        let ddpm = Self.root.appendingPathComponent("graphs/bench/ddpm_unet.json").path
        XCTAssertThrowsError(try DiffusionSampler(path: ddpm, weightsPath: nil, options: options(.ddim, guidance: 2))) {
            XCTAssertTrue("\($0)".contains("needs a graph with a 'context' input"), "\($0)")
        }
    }

    func testInpaintingKeepsKnownPixels() throws {
        let sampler = try DiffusionSampler(path: graph, weightsPath: nil, options: options(.ddim))
        var rng = SplitMix64(seed: 9)
        let known = Tensor(shape: [1, 3, 8, 8], values: (0..<192).map { _ in rng.nextUnit() * 2 - 1 })
        // Keep the left half.
        let mask = Tensor(shape: [1, 1, 8, 8], values: (0..<64).map { $0 % 8 < 4 ? 1 : 0 })
        let out = try sampler.run(context: context(1), inpainting: .init(known: known, mask: mask))
        for c in 0..<3 { for p in 0..<64 where p % 8 < 4 { XCTAssertEqual(out[c * 64 + p], known[c * 64 + p]) } }
        XCTAssertTrue((0..<64).contains { $0 % 8 >= 4 && out[$0] != known[$0] }, "the right half is generated")
        XCTAssertThrowsError(try sampler.run(context: context(1), inpainting: .init(known: Tensor(zeros: [1, 3, 4, 4]), mask: mask)))
    }

    /// An inpainting model gets the region to generate and the masked image through its mask and condition inputs.
    func testInpaintingModelBindsMaskAndConditionRoles() throws {
        let path = Self.root.appendingPathComponent("graphs/inpainting_diffusion_unet.json").path
        var o = options(.ddpm)
        o.steps = 3
        let sampler = try DiffusionSampler(path: path, weightsPath: nil, options: o)
        XCTAssertTrue(sampler.takesInpaintingInputs)
        XCTAssertThrowsError(try sampler.run()) { XCTAssertTrue("\($0)".contains("give --image and --mask"), "\($0)") }
        let known = Tensor(shape: [1, 3, 64, 64], values: (0..<(3 * 4096)).map { Float($0 % 64) / 32 - 1 })
        let mask = Tensor(shape: [1, 1, 64, 64], values: (0..<4096).map { $0 % 64 < 32 ? 1 : 0 })
        let out = try sampler.run(inpainting: .init(known: known, mask: mask))
        for c in 0..<3 { for p in 0..<4096 where p % 64 < 32 { XCTAssertEqual(out[c * 4096 + p], known[c * 4096 + p]) } }
    }

    func testPNGRoundTrip() throws {
        let t = Tensor(shape: [1, 3, 5, 7], values: (0..<105).map { Float($0 % 17) / 8 - 1 })
        let image = PNGFile.bytes(fromPlanes: t, batch: 0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-\(UUID().uuidString).png")
        try PNGFile.encode(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let back = try PNGFile.read(file.path)
        XCTAssertEqual(back.shape, [1, 3, 5, 7])
        for i in 0..<105 { XCTAssertEqual(back[i], t[i], accuracy: 1.0 / 127.5) }
        try Data("not a png".utf8).write(to: file)
        XCTAssertThrowsError(try PNGFile.read(file.path))
    }

    func testPNGHasValidChunksAndPixels() throws {
        let t = Tensor(shape: [1, 3, 2, 3], values: [-1, 0, 1, 1, 0, -1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -2, 2, 0, 0, 0, 0])
        let (w, h, c, pixels) = PNGFile.bytes(fromPlanes: t, batch: 0)
        XCTAssertEqual([w, h, c], [3, 2, 3])
        XCTAssertEqual(Array(pixels.prefix(3)), [0, 191, 0])
        let data = [UInt8](PNGFile.encode(width: w, height: h, channels: c, pixels: pixels))
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(PNGFile.crc32(Array("IEND".utf8)), 0xAE42_6082)
        // Python's zlib and struct read it back (the PNG decoding any viewer does).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-\(UUID().uuidString).png")
        try Data(data).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
        import struct, sys, zlib
        d = open(sys.argv[1], 'rb').read(); assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'; i = 8; idat = b''
        while i < len(d):
            n, = struct.unpack('>I', d[i:i+4]); kind = d[i+4:i+8]; body = d[i+8:i+8+n]
            assert zlib.crc32(kind + body) == struct.unpack('>I', d[i+8+n:i+12+n])[0]
            if kind == b'IHDR': w, h, depth, color = struct.unpack('>IIBB', body[:10])
            if kind == b'IDAT': idat += body
            i += 12 + n
        raw = zlib.decompress(idat); row = 1 + w * 3
        print(w, h, depth, color, list(raw[1:row]), list(raw[row + 1:2 * row]))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines),
                       "3 2 8 2 \(Array(pixels[0..<9]).map(Int.init)) \(Array(pixels[9..<18]).map(Int.init))")
    }
}
