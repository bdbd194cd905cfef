import XCTest
import UNetCompiler
@testable import UNetIR

/// The bundled graphs: all lower cleanly, and the benchmark models match the reference counts in shared/ANCHORS.md.
final class ExampleGraphsTests: XCTestCase {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func load(_ relative: String) throws -> Graph {
        let path = Self.repositoryRoot.appendingPathComponent(relative).path
        switch GraphLoader.load(path: path) {
        case .success(let g): return g
        case .failure(let d): throw d
        }
    }

    func testEveryExampleGraphValidates() throws {
        let fm = FileManager.default
        let root = Self.repositoryRoot.appendingPathComponent("graphs")
        let files = try fm.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".json") && !$0.contains("schema") }
            .map { "graphs/" + $0 } + (try fm.contentsOfDirectory(atPath: root.appendingPathComponent("bench").path)).map { "graphs/bench/" + $0 }
            + (try fm.contentsOfDirectory(atPath: root.appendingPathComponent("test").path)).map { "graphs/test/" + $0 }
        XCTAssertGreaterThanOrEqual(files.count, 16)
        for file in files {
            switch GraphLoader.load(path: Self.repositoryRoot.appendingPathComponent(file).path) {
            case .success(let g):
                XCTAssertFalse(g.outputs.isEmpty, file)
                XCTAssertTrue(Verifier.verify(g).isEmpty, file)
            case .failure(let d): XCTFail("\(file): \(d)")
            }
        }
    }

    /// GFLOP and parameters from ANCHORS.md; 1% tolerance covers its rounding to one decimal.
    func testBenchGraphsMatchAnchors() throws {
        let anchors: [(String, Double, Double)] = [
            ("graphs/bench/classic_unet.json", 24.1e9, 7.8e6),
            ("graphs/bench/ddpm_unet.json", 12.4e9, 35.7e6),
            ("graphs/bench/mobile_unet.json", 4.2e9, 1.0e6),
        ]
        for (file, flops, params) in anchors {
            let g = try load(file)
            XCTAssertEqual(Double(g.totalFLOPs), flops, accuracy: flops * 0.01, file)
            XCTAssertEqual(Double(g.parameterCount), params, accuracy: params * 0.01, file)
        }
    }

    func testDDPMBenchUsesDiffusersNames() throws {
        let names = Set(try load("graphs/bench/ddpm_unet.json").weights.map(\.name))
        for expected in ["conv_in.weight", "time_embedding.linear_1.weight", "down_blocks.0.resnets.0.norm1.weight",
                         "down_blocks.1.attentions.0.to_q.weight", "down_blocks.1.resnets.0.conv_shortcut.weight",
                         "down_blocks.0.downsamplers.0.conv.weight", "mid_block.attentions.0.to_out.0.bias",
                         "up_blocks.2.resnets.2.time_emb_proj.weight", "up_blocks.0.upsamplers.0.conv.weight",
                         "conv_norm_out.weight", "conv_out.bias"] {
            XCTAssertTrue(names.contains(expected), expected)
        }
    }
}
