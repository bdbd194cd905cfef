import XCTest
@testable import UNetRuntime

/// .npy and .safetensors readers: round trips, half-precision upcasts, and every kind of broken file rejected with a message.
final class FileFormatTests: XCTestCase {
    func safetensors(_ header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        let n = declaredLength ?? UInt64(h.count)
        return Data((0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data)
    }

    func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as RuntimeError {
            return error.message
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    func testNpyRoundTripAndTruncation() throws {
        let t = Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, 5, 6])
        let data = NumpyFile.encode(t)
        XCTAssertEqual(data.count % 64, 24 % 64 == 0 ? 0 : (data.count % 64), "header is padded")
        let back = try NumpyFile.parse(data, name: "t.npy")
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(back.values, t.values)
        XCTAssertTrue(message { _ = try NumpyFile.parse(data.prefix(data.count - 4), name: "t.npy") }?.contains("truncated") ?? false)
        XCTAssertTrue(message { _ = try NumpyFile.parse(Data("not numpy".utf8), name: "t.npy") }?.contains("bad magic") ?? false)
        var wrongType = data
        if let r = wrongType.range(of: Data("<f4".utf8)) { wrongType.replaceSubrange(r, with: Data("<i4".utf8)) }
        XCTAssertTrue(message { _ = try NumpyFile.parse(wrongType, name: "t.npy") }?.contains("dtype '<i4'") ?? false)
        var hugeHeader = data
        hugeHeader[8] = 0xFF
        hugeHeader[9] = 0xFF
        XCTAssertTrue(message { _ = try NumpyFile.parse(hugeHeader, name: "t.npy") }?.contains("runs past the end") ?? false)
    }

    func testNpyFloat16AndFloat64AreConverted() throws {
        func file(_ descr: String, _ payload: [UInt8]) -> Data {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2,), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            let n = header.utf8.count
            return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8) + payload)
        }
        let half = try NumpyFile.parse(file("<f2", [0x00, 0x3C, 0x00, 0xC0]), name: "h")
        XCTAssertEqual(half.values, [1, -2])
        let double = try NumpyFile.parse(file("<f8", Array(withUnsafeBytes(of: 0.5) { Array($0) } + withUnsafeBytes(of: -3.0) { Array($0) })), name: "d")
        XCTAssertEqual(double.values, [0.5, -3])
    }

    func testSafetensorsReadsAndUpcasts() throws {
        let f32: [UInt8] = withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian) { Array($0) }
        let header = #"{"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "BF16", "shape": [1], "data_offsets": [4, 6]}, "c": {"dtype": "F16", "shape": [1], "data_offsets": [6, 8]}, "n": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}}"#
        let tensors = try SafetensorsFile.parse(safetensors(header, data: f32 + [0xC0, 0x3F] + [0x00, 0x3C] + [UInt8](repeating: 0, count: 8)), name: "w")
        XCTAssertEqual(tensors["a"]?.values, [1.5])
        XCTAssertEqual(tensors["b"]?.values, [1.5])
        XCTAssertEqual(tensors["c"]?.values, [1])
        XCTAssertNil(tensors["n"])
    }

    func testBrokenSafetensorsAreRejected() {
        let ok = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "truncated"),
            (safetensors(ok, data: [UInt8](repeating: 0, count: 8), declaredLength: 1 << 40), "runs past the end"),
            (safetensors("{not json", data: []), "not valid JSON"),
            (safetensors(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}"#, data: [UInt8](repeating: 0, count: 8)), "outside the data section"),
            (safetensors(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "needs 12 bytes"),
            (safetensors(#"{"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "unknown dtype 'Q4'"),
            (safetensors(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
                         data: [UInt8](repeating: 0, count: 8)), "overlap"),
            (safetensors(#"{"a": {"dtype": "F32", "shape": [2]}}"#, data: []), "data_offsets"),
        ]
        for (data, needle) in cases {
            let m = message { _ = try SafetensorsFile.parse(data, name: "w.safetensors") }
            XCTAssertTrue(m?.contains(needle) ?? false, "expected '\(needle)', got \(m ?? "success")")
        }
    }

    func testAtomicWriteLeavesNoPartialFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-atomic-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("o.npy").path
        try NumpyFile.write(Tensor(shape: [1], values: [7]), to: path)
        XCTAssertEqual(try NumpyFile.read(path).values, [7])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["o.npy"])
        XCTAssertTrue(message { try NumpyFile.write(Tensor(shape: [1], values: [7]), to: "/nonexistent-dir/o.npy") }?.contains("does not exist") ?? false)
    }

    /// Found by reading for the fuzz work: many entries aliasing one range used to be decoded one by one
    /// before the overlap check, multiplying a small file into a huge allocation.
    func testSafetensorsAreCheckedBeforeAnythingIsDecoded() {
        let aliased = safetensors(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#,
                                  data: [UInt8](repeating: 0, count: 8))
        XCTAssertTrue(message { _ = try SafetensorsFile.parse(aliased, name: "w") }?.contains("overlap") ?? false)
        let f16 = safetensors(#"{"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8))
        XCTAssertNoThrow(try SafetensorsFile.parse(f16, name: "w", maxBytes: 16))
        let m = message { _ = try SafetensorsFile.parse(f16, name: "w", maxBytes: 15) }
        XCTAssertTrue(m?.contains("over the limit") ?? false, m ?? "accepted")
        let deep = safetensors(#"{"a": {"dtype": "F32", "shape": [1,1,1,1,1,1,1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
        XCTAssertTrue(message { _ = try SafetensorsFile.parse(deep, name: "w") }?.contains("rank 7") ?? false)
    }

    /// Found by reading for the fuzz work: width * height of a hostile IHDR (up to 2^32 each) overflowed and trapped.
    func testPNGWithHugeDimensionsIsRefused() {
        let valid = [UInt8](PNGFile.encode(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 12)))
        XCTAssertEqual(try PNGFile.decode(valid, name: "p").shape, [1, 3, 2, 2])
        var huge = valid
        // IHDR body sits at bytes 16..<29, its CRC at 29..<33.
        for k in 16..<24 { huge[k] = 0xFF }
        let crc = PNGFile.crc32(Array(huge[12..<29]))
        for k in 0..<4 { huge[29 + k] = UInt8((crc >> (24 - 8 * UInt32(k))) & 0xFF) }
        let m = message { _ = try PNGFile.decode(huge, name: "p") }
        XCTAssertTrue(m?.contains("out of range") ?? false, m ?? "accepted")
    }

    /// Found by fuzzing (a 76-byte input): a 2x33554432 header with a few bytes of image data made the
    /// reader allocate and clear 268 MB before zlib could say the data was short.
    func testPNGWhoseDataCannotFillItsSizeIsRefusedBeforeAllocating() {
        var png = [UInt8](PNGFile.encode(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 12)))
        // IHDR's height (bytes 20..<24) becomes 2^25; its CRC (29..<33) is recomputed.
        png[20] = 0x02; png[21] = 0; png[22] = 0; png[23] = 0
        let crc = PNGFile.crc32(Array(png[12..<29]))
        for k in 0..<4 { png[29 + k] = UInt8((crc >> (24 - 8 * UInt32(k))) & 0xFF) }
        let m = message { _ = try PNGFile.decode(png, name: "p") }
        XCTAssertTrue(m?.contains("cannot hold") ?? false, m ?? "accepted")
    }

    /// Found by fuzzing the plan loader: Foundation's binary property-list reader trapped on this plan's
    /// corrupt manifest (checksum patched to match). Manifests are JSON now; the same bytes are refused.
    func testPlanThatCrashedThePropertyListReaderIsRefused() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Corpus/fuzz/plan-bplist-trap.unetc")
        // The file was written for the portable kernels: give it this machine's ISA tag so the loader
        // gets as far as the manifest.
        var bytes = try [UInt8](Data(contentsOf: url))
        let tag = Array(CPUFeatures.planTag.utf8.prefix(16))
        for k in 0..<16 { bytes[48 + k] = k < tag.count ? tag[k] : 0 }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bplist-trap-\(UUID().uuidString).unetc").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let m = message { _ = try PlanLoader.load(path, verifyChecksum: false) }
        XCTAssertTrue(m?.contains("corrupt manifest") ?? false, m ?? "accepted")
    }
}
