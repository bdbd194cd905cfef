import Foundation

/// 8-bit grayscale or RGB PNG files. The image data is stored with uncompressed deflate blocks:
/// a valid zlib stream every decoder reads, without a compression library.
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
