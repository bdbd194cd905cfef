import Foundation

/// `.npy` files (format versions 1 to 3): float32, float16 and float64, little-endian, C order.
public enum NumpyFile {
    public static let maxBytes = 4 << 30

    public static func read(_ path: String) throws(RuntimeError) -> Tensor {
        try parse(try MappedFile.data(path), name: path)
    }

    public static func parse(_ data: Data, name: String) throws(RuntimeError) -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw RuntimeError("'\(name)' is not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw RuntimeError("'\(name)' is truncated in its header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw RuntimeError("'\(name)': unsupported .npy version \(major)")
        }
        guard headerLength <= 1 << 16, headerStart + headerLength <= data.count else {
            throw RuntimeError("'\(name)': header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        let header = String(decoding: data[data.startIndex + headerStart..<data.startIndex + headerStart + headerLength], as: UTF8.self)
        guard let descr = field(header, "descr").map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) }) else {
            throw RuntimeError("'\(name)': header has no 'descr'")
        }
        if let fortran = field(header, "fortran_order"), fortran.contains("True") {
            throw RuntimeError("'\(name)': Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }
        guard let shapeText = shapeField(header) else { throw RuntimeError("'\(name)': header has no 'shape'") }
        var shape: [Int] = []
        for part in shapeText.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0, d <= 1 << 31 else { throw RuntimeError("'\(name)': bad dimension '\(t)' in shape") }
            shape.append(d)
        }
        guard shape.count <= 6 else { throw RuntimeError("'\(name)': rank \(shape.count) is above the limit of 6") }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p <= maxBytes / 4 else { throw RuntimeError("'\(name)': shape \(shape) is too large") }
            count = p
        }
        let width: Int
        switch descr {
        case "<f4", "=f4": width = 4
        case "<f2", "=f2": width = 2
        case "<f8", "=f8": width = 8
        default: throw RuntimeError("'\(name)': dtype '\(descr)' is not supported (float32, float16 or float64, little-endian)")
        }
        let offset = headerStart + headerLength
        guard data.count - offset >= count * width else {
            throw RuntimeError("'\(name)' is truncated: shape \(shape) needs \(count * width) data bytes, the file has \(data.count - offset)")
        }
        let tensor = Tensor(shape: shape)
        data.withUnsafeBytes { raw in
            guard let start = raw.baseAddress else { return }
            let base = start + offset
            for i in 0..<count {
                switch width {
                case 4: tensor[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                case 2: tensor[i] = HalfPrecision.float16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                default: tensor[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            }
        }
        return tensor
    }

    static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...]
        let end = rest.firstIndex(of: ",") ?? rest.endIndex
        return String(rest[..<end])
    }

    static func shapeField(_ header: String) -> String? {
        guard let range = header.range(of: "'shape':"), let open = header[range.upperBound...].firstIndex(of: "("),
              let close = header[open...].firstIndex(of: ")") else { return nil }
        return String(header[header.index(after: open)..<close])
    }

    /// A version-1 `.npy` image of a float32 tensor.
    public static func encode(_ tensor: Tensor) -> Data {
        let shape = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: tensor.data, count: tensor.count * 4))
        return data
    }

    public static func write(_ tensor: Tensor, to path: String) throws(RuntimeError) {
        try AtomicFile.write(encode(tensor), to: path)
    }
}
