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
        guard header.isa == PlanFormat.currentISA else {
            throw fail("compiled for \(header.isa), this machine runs \(PlanFormat.currentISA): compile the graph again here")
        }
        let bodyStart = PlanFormat.headerBytes
        let bodyEnd = Int(header.weightsOffset + header.weightsLength)
        if verifyChecksum {
            guard checksum(file.bytes + bodyStart, count: bodyEnd - bodyStart) == header.checksum else {
                throw fail("checksum mismatch: the file is corrupt")
            }
        }
        let manifest: PlanManifest
        switch PlanFormat.decodeManifest(file.slice(bodyStart..<(bodyStart + Int(header.manifestLength)))) {
        case .failure(let e): throw fail(e.message)
        case .success(let m): manifest = m
        }
        guard manifest.weightBytes == Int(header.weightsLength) else { throw fail("corrupt: the manifest and header disagree on the weight size") }
        if let problem = manifest.validate() { throw fail("corrupt: \(problem)") }
        try budget.check(arena: manifest.memory.arenaBytes, weights: manifest.weightBytes, in: "plan '\(path)'")
        let base = UnsafeMutableRawPointer(mutating: file.bytes + Int(header.weightsOffset))
        let weights = manifest.steps.map { step in
            step.weights.map { ref in
                ref.map { Tensor(shape: $0.shape, viewing: (base + $0.offset).assumingMemoryBound(to: Float.self), owner: file) }
            }
        }
        let program = Program(graph: manifest.graph(), memory: manifest.memory, weights: weights)
        return Loaded(program: program, manifest: manifest, file: file)
    }

    /// `PlanChecksum.hash` over raw memory, a word at a time.
    static func checksum(_ p: UnsafeRawPointer, count: Int) -> UInt64 {
        let seed = PlanChecksum.seed
        var l0 = seed, l1 = seed ^ 1, l2 = seed ^ 2, l3 = seed ^ 3
        let words = count / 8
        // The body starts 64 bytes into a page-aligned mapping, so its words are aligned.
        let buffer = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt64.self), count: words)
        func word(_ i: Int) -> UInt64 { UInt64(littleEndian: buffer[i]) }
        var i = 0
        while i + 4 <= words {
            l0 = PlanChecksum.mix(l0, UInt64(littleEndian: buffer[i]))
            l1 = PlanChecksum.mix(l1, UInt64(littleEndian: buffer[i + 1]))
            l2 = PlanChecksum.mix(l2, UInt64(littleEndian: buffer[i + 2]))
            l3 = PlanChecksum.mix(l3, UInt64(littleEndian: buffer[i + 3]))
            i += 4
        }
        var lanes = [l0, l1, l2, l3]
        while i < words {
            lanes[i % 4] = PlanChecksum.mix(lanes[i % 4], word(i))
            i += 1
        }
        if count % 8 != 0 {
            var tail: UInt64 = 0
            for k in 0..<(count % 8) { tail |= UInt64(p.load(fromByteOffset: words * 8 + k, as: UInt8.self)) << (8 * UInt64(k)) }
            lanes[words % 4] = PlanChecksum.mix(lanes[words % 4], tail)
        }
        return PlanChecksum.finish((lanes[0], lanes[1], lanes[2], lanes[3]), count: count)
    }
}
