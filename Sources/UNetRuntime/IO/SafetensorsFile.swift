import Foundation
import UNetSpec

/// `.safetensors` weight files: an 8-byte little-endian header length, a JSON header (parsed with
/// json-c), then raw little-endian tensor data. F32, F16 and BF16 tensors are upcast to float32;
/// integer tensors (`num_batches_tracked`) are skipped.
public enum SafetensorsFile {
    /// Reads every float tensor; `maxBytes` bounds what they take as float32, checked before any is decoded.
    public static func read(_ path: String, maxBytes: Int = Int.max) throws(RuntimeError) -> [String: Tensor] {
        try parse(try MappedFile.data(path), name: path, maxBytes: maxBytes)
    }

    public static func parse(_ data: Data, name: String, maxBytes: Int = Int.max) throws(RuntimeError) -> [String: Tensor] {
        guard data.count >= 8 else { throw RuntimeError("'\(name)' is truncated: \(data.count) bytes, shorter than the 8-byte header length") }
        var length: UInt64 = 0
        for (i, b) in data.prefix(8).enumerated() { length |= UInt64(b) << (8 * UInt64(i)) }
        guard length <= UInt64(data.count - 8) else {
            throw RuntimeError("'\(name)': header length \(length) runs past the end of the file (\(data.count) bytes)")
        }
        guard length <= UInt64(Limits.maxFileBytes) else { throw RuntimeError("'\(name)': header of \(length) bytes is over the limit") }
        let headerBytes = [UInt8](data[data.startIndex + 8..<data.startIndex + 8 + Int(length)])
        let root: JSONNode
        switch JSONDocument.parse(headerBytes, file: name + " (header)") {
        case .success(let r): root = r
        case .failure(let d): throw RuntimeError("'\(name)': the header is not valid JSON: " + (d.items.first?.message ?? ""))
        }
        guard let members = root.members else { throw RuntimeError("'\(name)': the header is not a JSON object") }
        let dataStart = 8 + Int(length)
        let dataLength = data.count - dataStart
        // Every entry is checked (offsets, sizes, no overlap, total size) before any is decoded, so a header
        // that points many tensors at one range cannot multiply the file into a huge allocation.
        var entries: [(key: String, dtype: String, shape: [Int], count: Int, begin: Int, end: Int)] = []
        for (key, entry) in members where key != "__metadata__" {
            guard let dtype = entry["dtype"]?.stringValue, let shapeList = entry["shape"]?.elements,
                  let offsets = entry["data_offsets"]?.elements, offsets.count == 2,
                  case .int(let begin64)? = offsets.first?.value, case .int(let end64)? = offsets.last?.value else {
                throw RuntimeError("'\(name)': tensor '\(key)' needs 'dtype', 'shape' and two 'data_offsets'")
            }
            guard shapeList.count <= Limits.maxRank else { throw RuntimeError("'\(name)': tensor '\(key)' has rank \(shapeList.count), above the limit of \(Limits.maxRank)") }
            var shape: [Int] = []
            var count = 1
            for d in shapeList {
                guard case .int(let v) = d.value, v >= 0, v <= Limits.maxDimension else {
                    throw RuntimeError("'\(name)': tensor '\(key)' has an invalid shape")
                }
                shape.append(Int(v))
                let (p, o) = count.multipliedReportingOverflow(by: Int(v))
                guard !o, p <= Int(Limits.maxElements) else { throw RuntimeError("'\(name)': tensor '\(key)' is too large") }
                count = p
            }
            let width: Int
            switch dtype {
            case "F32", "I32", "U32": width = 4
            case "F16", "BF16", "I16", "U16": width = 2
            case "F64", "I64", "U64": width = 8
            case "I8", "U8", "BOOL": width = 1
            default: throw RuntimeError("'\(name)': tensor '\(key)' has unknown dtype '\(dtype)'")
            }
            let begin = Int(begin64), end = Int(end64)
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw RuntimeError("'\(name)': tensor '\(key)' data offsets [\(begin), \(end)] are outside the data section (\(dataLength) bytes)")
            }
            guard end - begin == count * width else {
                throw RuntimeError("'\(name)': tensor '\(key)' \(shape) \(dtype) needs \(count * width) bytes, its offsets span \(end - begin)")
            }
            entries.append((key, dtype, shape, count, begin, end))
        }
        let ranges = entries.sorted { $0.begin < $1.begin }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.begin < a.end {
            throw RuntimeError("'\(name)': tensors '\(a.key)' and '\(b.key)' overlap in the data section")
        }
        let floats = entries.filter { ["F32", "F16", "BF16"].contains($0.dtype) }
        let decodedBytes = floats.reduce(0) { $0 + $1.count * 4 }
        guard decodedBytes <= maxBytes else {
            throw RuntimeError("'\(name)': its tensors take \(decodedBytes >> 20) MiB as float32, over the limit of \(maxBytes >> 20) MiB (raise it with --max-weights-mib)")
        }
        var tensors: [String: Tensor] = [:]
        for (key, dtype, shape, count, begin, _) in floats {
            let tensor = Tensor(shape: shape)
            data.withUnsafeBytes { raw in
                guard let start = raw.baseAddress else { return }
                let base = start + dataStart + begin
                for i in 0..<count {
                    switch dtype {
                    case "F32": tensor[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                    case "F16": tensor[i] = HalfPrecision.float16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                    default: tensor[i] = HalfPrecision.bfloat16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                    }
                }
            }
            tensors[key] = tensor
        }
        return tensors
    }
}
