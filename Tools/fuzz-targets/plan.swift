// libFuzzer target: bytes through the plan loader (header, manifest, validation of every index),
// then, when the plan is small, a run on zero inputs so that anything validation let through is
// exercised by the kernels under AddressSanitizer. Built by Tools/fuzz.
import Foundation
import UNetRuntime

/// The loader maps files, so each input goes through a file in memory-backed /dev/shm.
let planPath = "/dev/shm/unetc-fuzz-\(getpid()).unetc"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlan(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard FileManager.default.createFile(atPath: planPath, contents: Data(bytes: data, count: size)) else { return 0 }
    defer { unlink(planPath) }
    do {
        // Checksums stop almost every mutation at the door; skip them for most inputs so the manifest gets fuzzed.
        let loaded = try PlanLoader.load(planPath, verifyChecksum: size % 8 == 0)
        let g = loaded.program.graph
        let flops = g.liveSteps.reduce(0) { $0 + g.flops(of: $1) }
        guard flops <= 50_000_000, loaded.program.memory.arenaBytes <= 64 << 20 else { return 0 }
        let executor = Executor(program: loaded.program, threads: 1)
        var inputs: [String: Tensor] = [:]
        for (name, step, _) in g.inputs { inputs[name] = Tensor(zeros: g.steps[step].shape) }
        _ = try executor.run(inputs: inputs)
    } catch {
        _ = error.description
    }
    return 0
}
