import Foundation
import XCTest
@testable import UNetRuntime

/// `unetc run` end to end: outputs, summaries, attention dumps, and every bad run-time input rejected with a message.
final class RunCommandTests: XCTestCase {
    let graph = "graphs/dag_tiny.json"
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A safetensors file with the given F32 tensors.
    func writeWeights(_ tensors: [(String, [Int], [Float])], to file: String) throws {
        var offset = 0
        var entries: [String] = []
        var payload = Data()
        for (name, shape, values) in tensors {
            entries.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": [\(shape.map(String.init).joined(separator: ","))], \"data_offsets\": [\(offset), \(offset + values.count * 4)]}")
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
            offset += values.count * 4
        }
        let header = Data(("{" + entries.joined(separator: ", ") + "}").utf8)
        var data = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(header)
        data.append(payload)
        try data.write(to: URL(fileURLWithPath: file))
    }

    func testRunWritesOutputsAndSummary() throws {
        let r = try CLIHarness.run(["run", graph, "--threads", "2", "--output", path("out")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("logits [1, 1, 64, 64] min"), r.stdout)
        XCTAssertTrue(r.stdout.contains("NaN 0"), r.stdout)
        XCTAssertTrue(r.stderr.contains("input 'x' not given; using seeded random data"), r.stderr)
        let out = try NumpyFile.read(path("out/logits.npy"))
        XCTAssertEqual(out.shape, [1, 1, 64, 64])
        // Same seed, same bytes.
        let again = try CLIHarness.run(["run", graph, "--threads", "1", "--output", "logits=" + path("again.npy")])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try NumpyFile.read(path("again.npy")).values, out.values)
    }

    /// The portable kernels (forced with UNETC_ISA=portable) compute what the CPU-specific ones do.
    func testPortableKernelsAgreeWithTheDefault() throws {
        for graph in ["graphs/test/all_kernels_small.json", "graphs/mobile_unet.json"] {
            let output = graph.contains("mobile") ? "logits" : "y"
            let first = try CLIHarness.run(["run", graph, "--output", output + "=" + path("default.npy")])
            let second = try CLIHarness.run(["run", graph, "--output", output + "=" + path("portable.npy")], environment: ["UNETC_ISA": "portable"])
            XCTAssertEqual(first.status, 0, first.stderr)
            XCTAssertEqual(second.status, 0, second.stderr)
            let x = try NumpyFile.read(path("default.npy")).values, y = try NumpyFile.read(path("portable.npy")).values
            var diff = 0.0, norm = 0.0
            for (p, q) in zip(x, y) {
                diff += Double(p - q) * Double(p - q)
                norm += Double(p) * Double(p)
            }
            XCTAssertLessThan((diff / max(norm, 1e-30)).squareRoot(), 1e-5, graph)
        }
    }

    func testAttentionMapsAreDumped() throws {
        let r = try CLIHarness.run(["run", "graphs/test/all_kernels_small.json", "--dump-attention", path("att")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let heads = try NumpyFile.read(path("att/connector.cross.heads.npy"))
        XCTAssertEqual(heads.shape, [2, 4, 25, 7])
        for row in 0..<(heads.count / 7) {
            let sum = (0..<7).reduce(Float(0)) { $0 + heads[row * 7 + $1] }
            XCTAssertEqual(sum, 1, accuracy: 1e-5)
        }
        XCTAssertEqual(try NumpyFile.read(path("att/connector.attn.mean.npy")).shape, [2, 25, 25])
    }

    func testNaNInputRunsAndIsReported() throws {
        let x = Tensor(shape: [1, 3, 64, 64])
        for i in 0..<x.count { x[i] = i == 100 ? .nan : 0.5 }
        try NumpyFile.write(x, to: path("x.npy"))
        let r = try CLIHarness.run(["run", graph, "--input", "x=" + path("x.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("NaN 0 "), r.stdout)
    }

    func testBadInputsAreRejectedWithMessages() throws {
        try NumpyFile.write(Tensor(zeros: [1, 3, 32, 32]), to: path("small.npy"))
        let good = NumpyFile.encode(Tensor(zeros: [1, 3, 64, 64]))
        try good.prefix(good.count - 100).write(to: URL(fileURLWithPath: path("truncated.npy")))
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path("garbage.npy")))
        try writeWeights([("encoders.0.conv1.weight", [2, 2], [1, 2, 3, 4])], to: path("other.safetensors"))
        try Data([0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 2]).write(to: URL(fileURLWithPath: path("corrupt.safetensors")))
        let cases: [([String], [String])] = [
            (["--input", "x=" + path("small.npy")], ["input 'x' has shape [1, 3, 32, 32]", "expects [1, 3, 64, 64]"]),
            (["--input", "x=" + path("truncated.npy")], ["truncated"]),
            (["--input", "x=" + path("garbage.npy")], ["not a .npy file"]),
            (["--input", "y=" + path("small.npy")], ["no input 'y'"]),
            (["--weights", path("other.safetensors")], ["missing weight", "not used by the graph"]),
            (["--weights", path("corrupt.safetensors")], ["header length 255 runs past the end"]),
            (["--weights", path("absent.safetensors")], ["cannot read"]),
            (["--output", "logits=/nonexistent-dir/x.npy"], ["cannot write '/nonexistent-dir/x.npy'"]),
        ]
        for (arguments, needles) in cases {
            let r = try CLIHarness.run(["run", graph] + arguments)
            XCTAssertEqual(r.status, 1, "\(arguments): \(r.stderr)")
            for needle in needles { XCTAssertTrue(r.stderr.contains(needle), "\(arguments): lacks '\(needle)' in\n\(r.stderr)") }
        }
    }

    func testUnwritableOutputLeavesNothingBehind() throws {
        let locked = dir.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: locked.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: locked.path) }
        let r = try CLIHarness.run(["run", graph, "--output", "logits=" + locked.appendingPathComponent("o.npy").path])
        if getuid() != 0 {
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("cannot write"), r.stderr)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: locked.path).filter { $0 != "o.npy" }
        XCTAssertEqual(left, [], "temporary files left behind")
    }
}

/// `unetc compile`, `inspect` and `graph` from the command line.
final class CompileCommandTests: XCTestCase {
    func testCompileInspectRunAndDraw() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-compile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plan = dir.appendingPathComponent("m.unetc").path
        let compiled = try CLIHarness.run(["compile", "graphs/unet_classic.json", "-o", plan, "--report", "--print-after", "bn-fold"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertTrue(compiled.stdout.contains("== after bn-fold"), compiled.stdout)
        XCTAssertTrue(compiled.stdout.contains("arena:"), compiled.stdout)
        let inspected = try CLIHarness.run(["inspect", plan])
        XCTAssertEqual(inspected.status, 0, inspected.stderr)
        XCTAssertTrue(inspected.stdout.contains("input  x [1, 3, 128, 128]"), inspected.stdout)
        let ran = try CLIHarness.run(["run", plan, "--output", dir.appendingPathComponent("out").path])
        XCTAssertEqual(ran.status, 0, ran.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/logits.npy").path))
        let withWeights = try CLIHarness.run(["run", plan, "--weights", plan])
        XCTAssertEqual(withWeights.status, 1)
        XCTAssertTrue(withWeights.stderr.contains("carries its weights"), withWeights.stderr)

        let dot = try CLIHarness.run(["graph", "graphs/unet_classic.json", "--optimized"])
        XCTAssertEqual(dot.status, 0, dot.stderr)
        XCTAssertTrue(dot.stdout.hasPrefix("digraph"), dot.stdout)
        XCTAssertTrue(dot.stdout.contains("style=dashed"), "skips are dashed")
        XCTAssertTrue(dot.stdout.contains("absorbed: encoders.0.bn1"), "fused steps list what they absorbed")
        let svg = try CLIHarness.run(["graph", plan, "--format", "svg"])
        if svg.status == 0 {
            XCTAssertTrue(svg.stdout.contains("<svg"), svg.stdout)
        } else {
            XCTAssertTrue(svg.stderr.contains("apt-get install graphviz"), svg.stderr)
        }
        let badPass = try CLIHarness.run(["compile", "graphs/unet_classic.json", "--print-after", "bn-fol"])
        XCTAssertNotEqual(badPass.status, 0)
        XCTAssertTrue(badPass.stderr.contains("unknown pass 'bn-fol'"), badPass.stderr)
    }
}

/// `unetc sample` from the command line: a real Ctrl-C stops cleanly and writes nothing.
final class SampleCommandTests: XCTestCase {
    func testInterruptWritesNothing() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-sigint-\(UUID().uuidString).png").path
        let process = Process()
        process.executableURL = CLIHarness.binary
        process.arguments = ["sample", "graphs/bench/ddpm_unet.json", "--steps", "100", "--threads", "1", "-o", output]
        process.currentDirectoryURL = CLIHarness.repositoryRoot
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        // Wait until sampling has started (the first progress line), then interrupt.
        let deadline = Date().addingTimeInterval(60)
        var seen = ""
        while Date() < deadline && !seen.contains("step ") {
            seen += String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        }
        process.interrupt()
        process.waitUntilExit()
        seen += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 130, seen)
        XCTAssertTrue(seen.contains("interrupted after"), seen)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    func testSampleWritesAPNG() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-sample-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let r = try CLIHarness.run(["sample", "graphs/test/tiny_text_diffusion.json", "--steps", "4", "--scheduler", "ddpm", "-o", output])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("'context' not given"), r.stderr)
        let head = try Data(contentsOf: URL(fileURLWithPath: output)).prefix(8)
        XCTAssertEqual([UInt8](head), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let bad = try CLIHarness.run(["sample", "graphs/unet_classic.json", "-o", output + ".npy"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("no input with role 'timestep'"), bad.stderr)
    }
}
