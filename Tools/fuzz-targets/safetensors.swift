// libFuzzer target: bytes through the safetensors reader (JSON header via json-c, offsets, dtypes).
// Built by Tools/fuzz; any crash, trap or sanitizer report is a bug.
import Foundation
import UNetRuntime

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    do {
        for (_, t) in try SafetensorsFile.parse(Data(bytes: data, count: size), name: "fuzz.safetensors") where t.count > 0 {
            _ = t[t.count - 1]
        }
    } catch {
        _ = error.description
    }
    return 0
}
