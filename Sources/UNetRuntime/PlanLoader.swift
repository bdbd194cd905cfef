import Foundation
import UNetIR
import UNetPasses
import UNetPlan

/// Opens a plan file: maps it, checks header, checksum, version, ISA and every index in it, and
/// builds a program whose weights are views into the mapping (no copy).
public enum PlanLoader {
    public struct Loaded {
        public var program: Program
        public var manifest: PlanManifest
        public var file: MappedFile
    }

    /// `budget` bounds what running the plan will allocate (its arena, packed weights); it is checked before anything is.
    public static func load(_ path: String, verifyChecksum: Bool = true, budget: MemoryBudget = MemoryBudget()) throws(RuntimeError) -> Loaded {
        let file = try MappedFile(path: path)
        func fail(_ message: String) -> RuntimeError { RuntimeError("'\(path)': \(message)") }
        let header: PlanFormat.Header
        switch PlanFormat.Header.decode(file.slice(0..<min(file.count, PlanFormat.headerBytes)), fileSize: file.count) {
        case .failure(let e): throw fail(e.message)
        case .success(let h): header = h
        }
        guard header.isa == CPUFeatures.planTag else {
            throw fail("compiled for \(header.isa), this machine runs \(CPUFeatures.planTag): compile the graph again here")
        }
        let bodyStart = PlanFormat.headerBytes
        let bodyEnd = Int(header.weightsOffset + header.weightsLength)
        if verifyChecksum {
            guard PlanChecksum.hash(UnsafeRawBufferPointer(start: file.bytes + bodyStart, count: bodyEnd - bodyStart)) == header.checksum else {
                throw fail("checksum mismatch: the file is corrupt")
            }
        }
        let manifest: PlanManifest
        switch PlanFormat.decodeManifest(file.slice(bodyStart..<(bodyStart + Int(header.manifestLength)))) {
        case .failure(let e): throw fail(e.message)
        case .success(let m): manifest = m
        }
        guard manifest.weightBytes == Int(header.weightsLength) else { throw fail("corrupt: the manifest and header disagree on the weight size") }
        guard manifest.panelRows == GEMM.mr, manifest.isa == header.isa else {
            throw fail("corrupt: the manifest's weights are packed for \(manifest.isa) panels of \(manifest.panelRows) rows")
        }
        if let problem = manifest.validate() { throw fail("corrupt: \(problem)") }
        if !WinogradConvolution.available, let step = manifest.steps.first(where: { $0.live && $0.algorithm == .winograd4x4 }) {
            throw fail("step '\(step.name)' runs a Winograd convolution, whose kernels need AVX2 or AVX-512: compile the graph again here")
        }
        if !BlockedLayoutKernel.available, let step = manifest.steps.first(where: { step in
            guard step.live else { return false }
            if case .reorder = step.op { return true }
            return (step.layout ?? .plain) != .plain
        }) {
            throw fail("step '\(step.name)' runs in the channel-blocked layout, whose kernels need AVX2 or AVX-512: compile the graph again here")
        }
        try budget.check(arena: manifest.memory.arenaBytes, weights: manifest.weightBytes, in: "plan '\(path)'")
        let base = UnsafeMutableRawPointer(mutating: file.bytes + Int(header.weightsOffset))
        // Only live operator steps' weights were validated; the others are never read.
        let weights = manifest.steps.map { step -> [Tensor?] in
            if !step.live { return step.weights.map { _ in nil } }
            if case .input = step.op { return step.weights.map { _ in nil } }
            return step.weights.map { ref in
                ref.map { Tensor(shape: $0.layout == .plain ? $0.shape : [$0.storedCount], viewing: (base + $0.offset).assumingMemoryBound(to: Float.self), owner: file) }
            }
        }
        let layouts = manifest.steps.map { $0.weights.first??.layout ?? .plain }
        let program = Program(graph: manifest.graph(), memory: manifest.memory, weights: weights, layouts: layouts)
        return Loaded(program: program, manifest: manifest, file: file)
    }
}
