import Foundation
import XCTest
import UNetCompiler
import UNetIR

/// graphs/bench/ddpm_unet.json names its weights exactly as diffusers' UNet2DModel for
/// google/ddpm-cifar10-32 does, so that model's safetensors file loads unchanged. The listing in
/// Tests/Fixtures was printed by diffusers itself (Tools/diffusers_state_dict.py).
final class DiffusersNamesTests: XCTestCase {
    func testDDPMBenchGraphHasDiffusersStateDict() throws {
        let root = SamplerTests.root
        let text = try String(contentsOf: root.appendingPathComponent("Tests/Fixtures/ddpm_cifar10_state_dict.tsv"), encoding: .utf8)
        var expected: [String: [Int]] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2 else { continue }
            expected[String(fields[0])] = fields[1].isEmpty ? [] : fields[1].split(separator: ",").compactMap { Int($0) }
        }
        XCTAssertEqual(expected.count, 328)
        let graph = try GraphLoader.load(path: root.appendingPathComponent("graphs/bench/ddpm_unet.json").path).get()
        let manifest = Dictionary(uniqueKeysWithValues: graph.weights.map { ($0.name, $0.shape) })
        XCTAssertEqual(Set(manifest.keys), Set(expected.keys))
        for (name, shape) in expected { XCTAssertEqual(manifest[name], shape, name) }
    }
}
