// libFuzzer target: bytes through the PNG reader (chunks, CRCs, zlib, row filters).
// Built by Tools/fuzz; any crash, trap or sanitizer report is a bug.
import CZlib
import UNetRuntime

/// Recomputes every chunk's CRC, so mutations get past the CRC check and reach zlib and the filters.
func withValidCRCs(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    var i = 8
    while i + 12 <= bytes.count {
        let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        guard i + 12 + length <= bytes.count else { break }
        let crc = bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress! + i + 4, UInt32(4 + length))) }
        for k in 0..<4 { bytes[i + 8 + length + k] = UInt8((crc >> (24 - 8 * UInt32(k))) & 0xFF) }
        i += 12 + length
    }
    return bytes
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        // Odd sizes keep their CRCs as they are, so the CRC check itself is fuzzed too.
        let t = try PNGFile.decode(size % 2 == 0 ? withValidCRCs(bytes) : bytes, name: "fuzz.png")
        _ = t[t.count - 1]
    } catch {
        _ = error.description
    }
    return 0
}
