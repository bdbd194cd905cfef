import Foundation
import XCTest
@testable import UNetRuntime

/// Outputs are replaced atomically: a process killed while writing leaves the old file or the new one, never a part.
final class AtomicOutputTests: XCTestCase {
    func testKillingACompileMidWriteLeavesTheOldPlanOrTheNewOne() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("model.unetc").path
        let first = try CLIHarness.run(["compile", "graphs/dag_tiny.json", "-o", target])
        XCTAssertEqual(first.status, 0, first.stderr)
        let old = try Data(contentsOf: URL(fileURLWithPath: target))

        var keptOld = 0, replaced = 0, partialTemporaries = 0
        // Kill at the moment the temporary file shows up, then progressively later, up to after the rename.
        for delay: useconds_t in [0, 0, 500, 2000, 8000, 30000] {
            try old.write(to: URL(fileURLWithPath: target))
            let process = Process()
            process.executableURL = CLIHarness.binary
            process.arguments = ["compile", "graphs/unet_classic.json", "-o", target]
            process.currentDirectoryURL = CLIHarness.repositoryRoot
            process.standardOutput = Pipe()
            process.standardError = Pipe()
            try process.run()
            while process.isRunning, (try FileManager.default.contentsOfDirectory(atPath: dir.path)).count < 2 { usleep(100) }
            if delay > 0 { usleep(delay) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            let now = try Data(contentsOf: URL(fileURLWithPath: target))
            if now == old {
                keptOld += 1
            } else {
                // Anything else must be the complete new plan: its checksum covers every byte.
                let loaded = try PlanLoader.load(target)
                XCTAssertEqual(loaded.manifest.name, "unet-classic")
                replaced += 1
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name != "model.unetc" {
                let size = (try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path)[.size] as? NSNumber)?.intValue ?? 0
                XCTAssertTrue(name.hasPrefix(".model.unetc.") && name.hasSuffix(".tmp"), "unexpected file \(name)")
                if size < 7_000_000 { partialTemporaries += 1 }
                try FileManager.default.removeItem(at: dir.appendingPathComponent(name))
            }
        }
        print("kills: old plan kept \(keptOld), new plan in place \(replaced), partial temporary files left \(partialTemporaries)")
        XCTAssertGreaterThan(keptOld, 0, "no kill landed before the rename: the test did not exercise a mid-write kill")
    }
}
