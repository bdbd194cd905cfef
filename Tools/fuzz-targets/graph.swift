// libFuzzer target: graph-file bytes through json-c, the spec decoder and lowering to a verified IR.
// Built by Tools/fuzz; any crash, trap or sanitizer report is a bug.
import UNetIR
import UNetSpec

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraph(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch SpecDecoder.decode(bytes: bytes, file: "fuzz.json") {
    case .failure(let d): _ = d.report()
    case .success(let spec):
        switch Lowering.lower(spec) {
        case .failure(let d): _ = d.report()
        case .success(let g):
            _ = g.totalFLOPs
            _ = g.weights.count
        }
    }
    return 0
}
