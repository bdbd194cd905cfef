import Foundation
import UNetIR
import UNetPasses

/// The plan file layout (version 2: adds the statistics epilogue and convolution algorithms), all integers little-endian:
///
/// | bytes | content |
/// |---|---|
/// | 0..<8 | magic `UNETCPLN` |
/// | 8..<12 | format version |
/// | 12..<16 | reserved (0) |
/// | 16..<24 | manifest length |
/// | 24..<32 | weight section offset (a multiple of 64) |
/// | 32..<40 | weight section length |
/// | 40..<48 | checksum of the manifest and weight bytes (`PlanChecksum`) |
/// | 48..<64 | ISA tag, NUL-padded |
/// | 64... | manifest (JSON), then padding, then weights (each 64-byte aligned) |
public enum PlanFormat {
    public static let magic = Array("UNETCPLN".utf8)
    public static let version: UInt32 = 2
    public static let headerBytes = 64
    public static let alignment = 64

    public struct Header: Equatable, Sendable {
        public var version: UInt32
        public var manifestLength: UInt64
        public var weightsOffset: UInt64
        public var weightsLength: UInt64
        public var checksum: UInt64
        public var isa: String

        public func encode() -> [UInt8] {
            var bytes = PlanFormat.magic
            bytes += le(UInt64(version))[0..<4] + [0, 0, 0, 0]
            bytes += le(manifestLength) + le(weightsOffset) + le(weightsLength) + le(checksum)
            let tag = Array(isa.utf8.prefix(16))
            bytes += tag + [UInt8](repeating: 0, count: 16 - tag.count)
            return bytes
        }

        /// Parses and checks the header against the file's size; the message says what is wrong.
        public static func decode(_ bytes: [UInt8], fileSize: Int) -> Result<Header, PlanError> {
            guard bytes.count >= PlanFormat.headerBytes else { return .failure(PlanError("truncated: the file is shorter than the 64-byte header")) }
            guard Array(bytes[0..<8]) == PlanFormat.magic else { return .failure(PlanError("not a unetc plan (bad magic)")) }
            let version = UInt32(truncatingIfNeeded: read(bytes, 8) & 0xFFFF_FFFF)
            guard version == PlanFormat.version else {
                return .failure(PlanError("plan format version \(version); this unetc reads version \(PlanFormat.version): compile the graph again"))
            }
            let header = Header(version: version, manifestLength: read(bytes, 16), weightsOffset: read(bytes, 24), weightsLength: read(bytes, 32),
                                checksum: read(bytes, 40),
                                isa: String(decoding: bytes[48..<64].prefix { $0 != 0 }, as: UTF8.self))
            let size = UInt64(fileSize)
            guard header.manifestLength <= size, UInt64(PlanFormat.headerBytes) + header.manifestLength <= header.weightsOffset,
                  header.weightsOffset % UInt64(PlanFormat.alignment) == 0, header.weightsOffset <= size,
                  header.weightsLength <= size - header.weightsOffset else {
                return .failure(PlanError("truncated or corrupt: sections run past the end of the file (\(fileSize) bytes)"))
            }
            return .success(header)
        }

        static func read(_ b: [UInt8], _ at: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
        }
    }

    static func le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }

    /// A convolution filter already in its kernel's layout, as the runtime prepared it.
    public struct PreparedWeight {
        public var layout: WeightLayout
        public var values: [Float]
        public init(layout: WeightLayout, values: [Float]) {
            self.layout = layout
            self.values = values
        }
    }

    /// Serializes a compiled graph: the manifest, then every weight 64-byte aligned. `prepare` gives,
    /// per step, its first weight in the layout its kernel reads (packed for `panelRows`-row panels
    /// of the instruction set `isa`), or nil to store it plain.
    public static func encode(_ graph: OptimizedGraph, memory: MemoryPlan, passLog: [(String, Int)], compilerVersion: String,
                              isa: String, panelRows: Int, prepare: (Int) -> PreparedWeight? = { _ in nil }) throws -> Data {
        var weightBytes: [UInt8] = []
        var steps: [PlanManifest.PlanStep] = []
        func append(_ values: [Float]) {
            let pad = (alignment - weightBytes.count % alignment) % alignment
            weightBytes += [UInt8](repeating: 0, count: pad)
            #if _endian(little)
            values.withUnsafeBytes { weightBytes.append(contentsOf: $0) }
            #else
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { weightBytes.append(contentsOf: $0) } }
            #endif
        }
        for (i, s) in graph.steps.enumerated() {
            var refs: [PlanManifest.WeightRef?] = []
            for (k, w) in s.weights.enumerated() {
                guard let w, s.live else { refs.append(nil); continue }
                let prepared = k == 0 ? prepare(i) : nil
                let values = prepared?.values ?? w.values
                let pad = (alignment - weightBytes.count % alignment) % alignment
                refs.append(PlanManifest.WeightRef(offset: weightBytes.count + pad, shape: w.shape, layout: prepared?.layout ?? .plain,
                                                   storedCount: values.count))
                append(values)
            }
            steps.append(PlanManifest.PlanStep(name: s.name, op: s.op, inputs: s.inputs, operatorArity: s.operatorArity, shape: s.shape,
                                               epilogue: s.epilogue, weights: refs, absorbed: s.absorbed, live: s.live,
                                               algorithm: s.algorithm, layout: s.layout == .plain ? nil : s.layout,
                                               fusedIntoConsumer: s.fusedIntoConsumer ? true : nil))
        }
        let manifest = PlanManifest(
            name: graph.name, isa: isa, panelRows: panelRows, compilerVersion: compilerVersion, steps: steps,
            inputs: graph.inputs.map { .init(name: $0.name, step: $0.step, role: $0.role, shape: graph.steps[$0.step].shape) },
            outputs: graph.outputs.map { .init(name: $0.name, step: $0.step, role: nil, shape: graph.steps[$0.step].shape) },
            elidedConcats: graph.elidedConcats.sorted(), gateMapNames: graph.gateMapNames.sorted(), memory: memory,
            passLog: passLog.map { [$0.0, String($0.1)] }, weightBytes: weightBytes.count)
        // JSON, not a binary property list: Foundation's binary plist reader traps on some malformed
        // files (found by fuzzing), and a plan file is untrusted input.
        let encoder = JSONEncoder()
        let manifestBytes = [UInt8](try encoder.encode(manifest))
        let weightsOffset = (headerBytes + manifestBytes.count + alignment - 1) / alignment * alignment
        let body = manifestBytes + [UInt8](repeating: 0, count: weightsOffset - headerBytes - manifestBytes.count) + weightBytes
        let header = Header(version: version, manifestLength: UInt64(manifestBytes.count), weightsOffset: UInt64(weightsOffset),
                            weightsLength: UInt64(weightBytes.count), checksum: PlanChecksum.hash(body), isa: isa)
        return Data(header.encode() + body)
    }

    public static func decodeManifest(_ bytes: [UInt8]) -> Result<PlanManifest, PlanError> {
        do {
            return .success(try JSONDecoder().decode(PlanManifest.self, from: Data(bytes)))
        } catch {
            return .failure(PlanError("corrupt manifest: \(error.localizedDescription)"))
        }
    }
}

/// A plan file problem, phrased for the user.
public struct PlanError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A fast 64-bit checksum over 8-byte little-endian words (the tail zero-padded), in eight
/// independent lanes (word i goes to lane i % 8) so a CPU overlaps the multiply chains: verifying a
/// 270 MB plan takes about 15 ms.
public enum PlanChecksum {
    public static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let lanes = 8

    @inlinable @inline(__always)
    public static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
        var x = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 32
        return x
    }

    /// Combines the lanes and the length.
    public static func finish(_ lanes: [UInt64], count: Int) -> UInt64 {
        mix(lanes.reduce(seed, mix), UInt64(count))
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// The checksum of raw memory, a word at a time (the same value as for the byte array).
    public static func hash(_ memory: UnsafeRawBufferPointer) -> UInt64 {
        let count = memory.count
        var lane = (0..<UInt64(lanes)).map { seed ^ $0 }
        guard let p = memory.baseAddress else { return finish(lane, count: 0) }
        var (l0, l1, l2, l3, l4, l5, l6, l7) = (lane[0], lane[1], lane[2], lane[3], lane[4], lane[5], lane[6], lane[7])
        let words = count / 8
        @inline(__always) func word(_ i: Int) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        var i = 0
        while i + 8 <= words {
            l0 = mix(l0, word(i)); l1 = mix(l1, word(i + 1)); l2 = mix(l2, word(i + 2)); l3 = mix(l3, word(i + 3))
            l4 = mix(l4, word(i + 4)); l5 = mix(l5, word(i + 5)); l6 = mix(l6, word(i + 6)); l7 = mix(l7, word(i + 7))
            i += 8
        }
        lane = [l0, l1, l2, l3, l4, l5, l6, l7]
        while i < words {
            lane[i % lanes] = mix(lane[i % lanes], word(i))
            i += 1
        }
        if count % 8 != 0 {
            var tail: UInt64 = 0
            for k in 0..<(count % 8) { tail |= UInt64(p.load(fromByteOffset: words * 8 + k, as: UInt8.self)) << (8 * UInt64(k)) }
            lane[words % lanes] = mix(lane[words % lanes], tail)
        }
        return finish(lane, count: count)
    }
}
