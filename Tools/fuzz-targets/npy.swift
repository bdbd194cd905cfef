// libFuzzer target: bytes through the .npy reader (header parsing, dtype conversion).
// Built by Tools/fuzz; any crash, trap or sanitizer report is a bug.
import Foundation
import UNetRuntime

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    do {
        let t = try NumpyFile.parse(Data(bytes: data, count: size), name: "fuzz.npy")
        _ = t.count > 0 ? t[t.count - 1] : 0
    } catch {
        _ = error.description
    }
    return 0
}
