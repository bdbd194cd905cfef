import Foundation
import XCTest

/// Every file in Tests/Corpus/bad must make `unetc validate` exit 1 with the message listed in expected.tsv, never crash.
final class BadInputCorpusTests: XCTestCase {
    func testEveryBadGraphIsRejectedWithItsMessage() throws {
        let corpus = CLIHarness.repositoryRoot.appendingPathComponent("Tests/Corpus/bad")
        let table = try String(contentsOf: corpus.appendingPathComponent("expected.tsv"), encoding: .utf8)
        var expectations: [(file: String, needles: [String])] = []
        for line in table.split(separator: "\n") where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let fields = line.split(separator: "\t").map(String.init)
            XCTAssertGreaterThanOrEqual(fields.count, 2, "bad line in expected.tsv: \(line)")
            if fields.count >= 2 { expectations.append((fields[0], Array(fields[1...]))) }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0 != "expected.tsv" }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 40, "the corpus must hold at least 40 bad graphs")
        XCTAssertEqual(Set(files), Set(expectations.map(\.file)), "every corpus file needs exactly one expected.tsv line")

        for (file, needles) in expectations {
            let result = try CLIHarness.run(["validate", "Tests/Corpus/bad/" + file])
            XCTAssertEqual(result.status, 1, "\(file): expected exit 1, got \(result.status)\n\(result.stderr)")
            for needle in needles {
                XCTAssertTrue(result.stderr.contains(needle), "\(file): message lacks '\(needle)':\n\(result.stderr)")
            }
            XCTAssertTrue(result.stdout.isEmpty || !result.stdout.contains(": ok"), "\(file): reported ok")
        }
    }
}
