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
/// | 64... | manifest (binary property list), then padding, then weights (each 64-byte aligned) |
public enum PlanFormat {
    public static let magic = Array("UNETCPLN".utf8)
    public static let version: UInt32 = 2
    public static let headerBytes = 64
    public static let alignment = 64

    /// The ISA this build's kernels and packed weights are for.
    public static var currentISA: String {
        #if arch(x86_64)
        return "x86_64/portable"
        #elseif arch(arm64)
        return "arm64/portable"
        #else
        return "unknown/portable"
        #endif
    }

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

    /// Serializes a compiled graph: the manifest, then every weight 64-byte aligned.
    public static func encode(_ graph: OptimizedGraph, memory: MemoryPlan, passLog: [(String, Int)], compilerVersion: String) throws -> Data {
        var weightBytes: [UInt8] = []
        var steps: [PlanManifest.PlanStep] = []
        for s in graph.steps {
            var refs: [PlanManifest.WeightRef?] = []
            for w in s.weights {
                guard let w, s.live else { refs.append(nil); continue }
                let pad = (alignment - weightBytes.count % alignment) % alignment
                weightBytes += [UInt8](repeating: 0, count: pad)
                refs.append(PlanManifest.WeightRef(offset: weightBytes.count, shape: w.shape))
                weightBytes.reserveCapacity(weightBytes.count + w.count * 4)
                for v in w.values {
                    let bits = v.bitPattern
                    weightBytes += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
                }
            }
            steps.append(PlanManifest.PlanStep(name: s.name, op: s.op, inputs: s.inputs, operatorArity: s.operatorArity, shape: s.shape,
                                               epilogue: s.epilogue, weights: refs, absorbed: s.absorbed, live: s.live,
                                               algorithm: s.algorithm))
        }
        let manifest = PlanManifest(
            name: graph.name, isa: currentISA, compilerVersion: compilerVersion, steps: steps,
            inputs: graph.inputs.map { .init(name: $0.name, step: $0.step, role: $0.role, shape: graph.steps[$0.step].shape) },
            outputs: graph.outputs.map { .init(name: $0.name, step: $0.step, role: nil, shape: graph.steps[$0.step].shape) },
            elidedConcats: graph.elidedConcats.sorted(), gateMapNames: graph.gateMapNames.sorted(), memory: memory,
            passLog: passLog.map { [$0.0, String($0.1)] }, weightBytes: weightBytes.count)
        let encoder = PropertyListEncoder()
        encoder.outputFormat = .binary
        let manifestBytes = [UInt8](try encoder.encode(manifest))
        let weightsOffset = (headerBytes + manifestBytes.count + alignment - 1) / alignment * alignment
        let body = manifestBytes + [UInt8](repeating: 0, count: weightsOffset - headerBytes - manifestBytes.count) + weightBytes
        let header = Header(version: version, manifestLength: UInt64(manifestBytes.count), weightsOffset: UInt64(weightsOffset),
                            weightsLength: UInt64(weightBytes.count), checksum: PlanChecksum.hash(body), isa: currentISA)
        return Data(header.encode() + body)
    }

    public static func decodeManifest(_ bytes: [UInt8]) -> Result<PlanManifest, PlanError> {
        do {
            return .success(try PropertyListDecoder().decode(PlanManifest.self, from: Data(bytes)))
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

/// A fast 64-bit checksum over 8-byte little-endian words (the tail zero-padded), in four
/// independent lanes (word i goes to lane i % 4) so a CPU overlaps the multiplies: fast enough to
/// verify a 140 MB plan at load.
public enum PlanChecksum {
    public static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inlinable @inline(__always)
    public static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
        var x = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 32
        return x
    }

    /// Combines the four lanes and the length.
    @inlinable
    public static func finish(_ lanes: (UInt64, UInt64, UInt64, UInt64), count: Int) -> UInt64 {
        mix(mix(mix(mix(mix(seed, lanes.0), lanes.1), lanes.2), lanes.3), UInt64(count))
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        var lanes = [seed, seed ^ 1, seed ^ 2, seed ^ 3]
        var i = 0
        var index = 0
        while i < bytes.count {
            var word: UInt64 = 0
            for k in 0..<min(8, bytes.count - i) { word |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            lanes[index % 4] = mix(lanes[index % 4], word)
            i += 8
            index += 1
        }
        return finish((lanes[0], lanes[1], lanes[2], lanes[3]), count: bytes.count)
    }
}
