import CZlib
import Foundation

/// 8-bit grayscale or RGB PNG files. Written with uncompressed deflate blocks (a valid zlib stream
/// any decoder reads); read with zlib: 8-bit gray, gray+alpha, RGB or RGBA, not interlaced.
public enum PNGFile {
    /// Encodes `pixels` (row-major, `channels` interleaved bytes per pixel) as a PNG.
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> Data {
        precondition(channels == 1 || channels == 3, "PNG output is gray or RGB")
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * channels + 1))
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw += pixels[(y * width * channels)..<((y + 1) * width * channels)]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65535, raw.count - offset)
            let final: UInt8 = offset + count == raw.count ? 1 : 0
            zlib += [final, UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)]
            zlib += raw[offset..<(offset + count)]
            offset += count
        } while offset < raw.count
        zlib += bigEndian(adler32(raw))

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, channels == 3 ? 2 : 0, 0, 0, 0])
        png += chunk("IDAT", zlib)
        png += chunk("IEND", [])
        return Data(png)
    }

    /// Maps model values in [-1, 1] to bytes (`round((v + 1) * 127.5)`, clamped), NCHW planes to interleaved pixels.
    public static func bytes(fromPlanes t: Tensor, batch b: Int) -> (width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        var pixels = [UInt8](repeating: 0, count: h * w * c)
        for ch in 0..<c {
            for p in 0..<(h * w) {
                let v = t[((b * c) + ch) * h * w + p]
                let scaled = v.isNaN ? 0 : ((v + 1) * 127.5).rounded()
                pixels[p * c + ch] = UInt8(min(max(scaled, 0), 255))
            }
        }
        return (w, h, c, pixels)
    }

    public static let maxPixels = 1 << 26

    /// Decodes a PNG to `[1, C, H, W]` with values mapped back to [-1, 1] (`v / 127.5 - 1`); alpha is dropped.
    public static func read(_ path: String) throws(RuntimeError) -> Tensor {
        try decode([UInt8](try MappedFile.data(path)), name: path)
    }

    /// Decodes PNG bytes (see `read`); `name` is used in error messages.
    public static func decode(_ data: [UInt8], name: String) throws(RuntimeError) -> Tensor {
        func fail(_ m: String) -> RuntimeError { RuntimeError("'\(name)': \(m)") }
        guard data.count >= 8, Array(data[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { throw fail("not a PNG file") }
        var i = 8
        var width = 0, height = 0, colorType = -1
        var idat: [UInt8] = []
        func be32(_ at: Int) -> Int { Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3]) }
        while i + 8 <= data.count {
            let length = be32(i)
            let kind = String(decoding: data[(i + 4)..<(i + 8)], as: UTF8.self)
            guard length >= 0, i + 12 + length <= data.count else { throw fail("truncated chunk '\(kind)'") }
            let body = Array(data[(i + 8)..<(i + 8 + length)])
            guard UInt32(be32(i + 8 + length)) == crc32(Array(data[(i + 4)..<(i + 8)]) + body) else { throw fail("CRC mismatch in chunk '\(kind)'") }
            switch kind {
            case "IHDR":
                guard body.count == 13 else { throw fail("bad IHDR") }
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                guard body[8] == 8 else { throw fail("only 8-bit PNGs are read, this one has \(body[8]) bits per sample") }
                guard body[12] == 0 else { throw fail("interlaced PNGs are not read") }
                colorType = Int(body[9])
            case "IDAT": idat += body
            default: break
            }
            i += 12 + length
        }
        let channels: Int
        switch colorType {
        case 0: channels = 1
        case 4: channels = 2
        case 2: channels = 3
        case 6: channels = 4
        default: throw fail("color type \(colorType) is not read (gray, gray+alpha, RGB or RGBA)")
        }
        guard width >= 1, height >= 1, width <= maxPixels, height <= maxPixels, width * height <= maxPixels else { throw fail("size \(width)x\(height) is out of range") }
        let stride = width * channels
        // Deflate expands at most 1032:1; an image its compressed data cannot fill is refused before
        // its buffer is allocated (a 76-byte file once asked for 268 MB).
        let rawBytes = height * (stride + 1)
        guard rawBytes <= idat.count * 1032 + 1024 else {
            throw fail("corrupt image data: \(idat.count) compressed bytes cannot hold a \(width)x\(height) image")
        }
        var raw = [UInt8](repeating: 0, count: rawBytes)
        var rawLength = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            idat.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else { throw fail("corrupt image data (zlib status \(status))") }
        // Undo the per-row filters.
        var pixels = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = (x >= channels && y > 0) ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: throw fail("unknown row filter \(filter)")
                }
                pixels[y * stride + x] = UInt8((v + predictor) & 0xFF)
            }
        }
        let colors = channels >= 3 ? 3 : 1
        let t = Tensor(shape: [1, colors, height, width])
        for ch in 0..<colors {
            for p in 0..<(width * height) { t[ch * width * height + p] = Float(pixels[p * channels + ch]) / 127.5 - 1 }
        }
        return t
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in bytes {
            a = (a + UInt32(x)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }
}
