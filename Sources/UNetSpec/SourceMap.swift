import Foundation

/// Positions of the values of a document that json-c has already accepted.
///
/// json-c builds the tree but records no positions and silently keeps the last of duplicate
/// keys. This index walks the same (known valid) text once to recover, per JSON path, the
/// line:column and the literal text of numbers, and to report duplicate keys. It never decides
/// validity: json-c does.
struct SourceMap {
    struct Entry {
        var location: SourceLocation
        /// Literal text for numbers, so integer range can be checked exactly.
        var literal: String?
        /// Where the member's key starts, for members of objects.
        var keyLocation: SourceLocation?
    }

    /// Text json-c accepts but JSON does not (single-quoted keys, raw control characters in strings, lone surrogates).
    struct Violation {
        var message: String
        var location: SourceLocation
    }

    struct DuplicateKey {
        var path: String
        var key: String
        var location: SourceLocation
        var firstLocation: SourceLocation
    }

    private(set) var entries: [String: Entry] = [:]
    private(set) var duplicates: [DuplicateKey] = []
    private(set) var violations: [Violation] = []

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var column = 1

    init(bytes: [UInt8]) {
        self.bytes = bytes
        skipSpace()
        value(path: "$")
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func advance() {
        guard let byte = current else { return }
        index += 1
        if byte == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            column += 1
        }
    }

    private mutating func skipSpace() {
        while let b = current, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { advance() }
    }

    private var here: SourceLocation { SourceLocation(line: line, column: column) }

    private mutating func value(path: String) {
        let start = here
        switch current {
        case UInt8(ascii: "{"):
            entries[path] = Entry(location: start)
            advance()
            var seen: [String: SourceLocation] = [:]
            skipSpace()
            while let b = current, b != UInt8(ascii: "}") {
                let keyLocation = here
                if b != UInt8(ascii: "\"") {
                    violations.append(Violation(message: "object keys must be in double quotes", location: keyLocation))
                }
                let key = string()
                let childPath = SourceMap.memberPath(path, key)
                if let first = seen[key] {
                    duplicates.append(DuplicateKey(path: childPath, key: key, location: keyLocation, firstLocation: first))
                } else {
                    seen[key] = keyLocation
                }
                skipSpace()
                advance()  // ':'
                skipSpace()
                // json-c keeps the last duplicate, so the last position wins here too.
                value(path: childPath)
                entries[childPath]?.keyLocation = keyLocation
                skipSpace()
                if current == UInt8(ascii: ",") { advance(); skipSpace() }
            }
            advance()
        case UInt8(ascii: "["):
            entries[path] = Entry(location: start)
            advance()
            skipSpace()
            var i = 0
            while let b = current, b != UInt8(ascii: "]") {
                value(path: path + "[\(i)]")
                i += 1
                skipSpace()
                if current == UInt8(ascii: ",") { advance(); skipSpace() }
            }
            advance()
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            if current == UInt8(ascii: "'") {
                violations.append(Violation(message: "strings must be in double quotes", location: start))
            }
            _ = string()
            entries[path] = Entry(location: start)
        default:
            let begin = index
            while let b = current, !(b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == UInt8(ascii: ",")
                                      || b == UInt8(ascii: "]") || b == UInt8(ascii: "}")) {
                advance()
            }
            let literal = String(decoding: bytes[begin..<index], as: UTF8.self)
            entries[path] = Entry(location: start, literal: literal)
        }
    }

    /// Reads a string token; keys only need escapes resolved well enough to compare and name them.
    private mutating func string() -> String {
        let start = here
        let quote = current ?? UInt8(ascii: "\"")
        advance()  // opening quote
        var raw: [UInt8] = []
        var pendingHighSurrogate = false
        while let b = current, b != quote {
            if b < 0x20 {
                violations.append(Violation(message: b == 0x0A ? "unterminated string (a raw line break inside a string)"
                                                               : "raw control character in a string; escape it", location: start))
            }
            if b == UInt8(ascii: "\\") {
                advance()
                guard let e = current else { break }
                switch e {
                case UInt8(ascii: "n"): raw.append(0x0A)
                case UInt8(ascii: "t"): raw.append(0x09)
                case UInt8(ascii: "r"): raw.append(0x0D)
                case UInt8(ascii: "b"): raw.append(0x08)
                case UInt8(ascii: "f"): raw.append(0x0C)
                case UInt8(ascii: "u"):
                    var code: UInt32 = 0
                    for _ in 0..<4 {
                        advance()
                        code = code &* 16 &+ UInt32(hexValue(current ?? 0))
                    }
                    if (0xD800...0xDBFF).contains(code) {
                        if pendingHighSurrogate { violations.append(Violation(message: "invalid \\u escape: unpaired surrogate", location: start)) }
                        pendingHighSurrogate = true
                        advance()
                        continue
                    }
                    if (0xDC00...0xDFFF).contains(code) {
                        if !pendingHighSurrogate { violations.append(Violation(message: "invalid \\u escape: unpaired surrogate", location: start)) }
                        pendingHighSurrogate = false
                        advance()
                        continue
                    }
                    raw.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                default: raw.append(e)
                }
                if pendingHighSurrogate && e != UInt8(ascii: "u") {
                    violations.append(Violation(message: "invalid \\u escape: unpaired surrogate", location: start))
                    pendingHighSurrogate = false
                }
                advance()
            } else {
                if pendingHighSurrogate {
                    violations.append(Violation(message: "invalid \\u escape: unpaired surrogate", location: start))
                    pendingHighSurrogate = false
                }
                raw.append(b)
                advance()
            }
        }
        if pendingHighSurrogate { violations.append(Violation(message: "invalid \\u escape: unpaired surrogate", location: start)) }
        advance()  // closing quote
        return String(decoding: raw, as: UTF8.self)
    }

    private func hexValue(_ b: UInt8) -> UInt8 {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: 0
        }
    }

    /// The JSON path of a member: `$.a.b` for identifier-like keys, `$["odd key"]` otherwise.
    static func memberPath(_ parent: String, _ key: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy {
            ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "$"
        }
        if plain { return parent + "." + key }
        let escaped = key.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return parent + "[\"" + escaped + "\"]"
    }

    /// Where a string that runs over a line break starts, or a single quote outside strings, before
    /// `offset`: the usual causes of a confusing json-c error further on.
    static func unterminatedString(before offset: Int, in bytes: [UInt8]) -> Int? {
        var inString = false
        var start = 0
        var i = 0
        while i < min(offset, bytes.count) {
            let b = bytes[i]
            if inString {
                if b == UInt8(ascii: "\\") { i += 1 } else if b == UInt8(ascii: "\"") { inString = false } else if b == 0x0A { return start }
            } else if b == UInt8(ascii: "\"") {
                inString = true
                start = i
            } else if b == UInt8(ascii: "'") {
                return i
            }
            i += 1
        }
        return nil
    }

    /// Line and column of a byte offset, for json-c's syntax errors.
    static func location(ofOffset offset: Int, in bytes: [UInt8]) -> SourceLocation {
        var line = 1
        var column = 1
        for b in bytes.prefix(offset) {
            if b == 0x0A {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(line: line, column: column)
    }
}
