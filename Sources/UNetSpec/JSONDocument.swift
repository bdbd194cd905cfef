import CJSONC
import Foundation

/// Parses graph-file bytes with json-c into a `JSONNode` tree carrying source positions.
public enum JSONDocument {
    /// Parses `bytes` (the content of `file`) or returns every problem found, located.
    public static func parse(_ bytes: [UInt8], file: String) -> Result<JSONNode, DiagnosticList> {
        func fail(_ message: String, at location: SourceLocation? = nil, hint: String? = nil) -> Result<JSONNode, DiagnosticList> {
            .failure(DiagnosticList([Diagnostic(file: file, location: location, message: message, hint: hint)]))
        }
        if bytes.count > Limits.maxFileBytes {
            return fail("file is \(bytes.count) bytes, over the limit of \(Limits.maxFileBytes) bytes")
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return fail("empty file: expected a JSON object describing a graph")
        }
        if let nul = bytes.firstIndex(of: 0) {
            return fail("binary data (NUL byte) in a JSON file", at: SourceMap.location(ofOffset: nul, in: bytes))
        }
        if let bad = firstInvalidUTF8(bytes) {
            return fail("invalid UTF-8 byte sequence", at: SourceMap.location(ofOffset: bad, in: bytes),
                        hint: "graph files must be UTF-8 text")
        }

        guard let tokener = json_tokener_new_ex(Int32(Limits.maxNestingDepth)) else {
            return fail("cannot create the JSON tokener")
        }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, Int32(JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8))

        let object: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                json_tokener_parse_ex(tokener, chars.baseAddress, Int32(chars.count))
            }
        }
        let error = json_tokener_get_error(tokener)
        let end = json_tokener_get_parse_end(tokener)
        guard error == json_tokener_success, let object else {
            let offset = Int(end)
            var message: String
            if error == json_tokener_continue {
                message = "unexpected end of file: the JSON document is incomplete"
            } else if error == json_tokener_error_depth {
                message = "nesting deeper than the limit of \(Limits.maxNestingDepth) levels"
            } else {
                message = "malformed JSON: " + String(cString: json_tokener_error_desc(error))
            }
            if offset < bytes.count, error != json_tokener_continue {
                message += " near '" + excerpt(bytes, at: offset) + "'"
            }
            if let start = SourceMap.unterminatedString(before: offset, in: bytes) {
                let what = bytes[start] == UInt8(ascii: "'") ? "malformed JSON: strings must be in double quotes"
                                                             : "unterminated string (it runs over a line break)"
                return fail(what, at: SourceMap.location(ofOffset: start, in: bytes),
                            hint: "close the string with \" on the same line; json-c then stopped at \(SourceMap.location(ofOffset: min(offset, bytes.count), in: bytes)): \(message)")
            }
            return fail(message, at: SourceMap.location(ofOffset: min(offset, bytes.count), in: bytes))
        }
        defer { json_object_put(object) }
        if end < bytes.count {
            let rest = bytes[Int(end)...]
            if !rest.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                return fail("unexpected text after the JSON document",
                            at: SourceMap.location(ofOffset: Int(end), in: bytes))
            }
        }

        let map = SourceMap(bytes: bytes)
        if let first = map.violations.first {
            return fail("malformed JSON: " + first.message, at: first.location)
        }
        var diagnostics: [Diagnostic] = map.duplicates.map {
            Diagnostic(file: file, location: $0.location, path: $0.path,
                       message: "duplicate key '\($0.key)' (first defined at \($0.firstLocation))",
                       hint: "each key may appear once in an object")
        }
        let root = convert(object, path: "$", map: map, file: file, diagnostics: &diagnostics)
        if !diagnostics.isEmpty { return .failure(DiagnosticList(diagnostics)) }
        return .success(root)
    }

    private static func excerpt(_ bytes: [UInt8], at offset: Int) -> String {
        let slice = bytes[offset..<min(bytes.count, offset + 12)].prefix { $0 != 0x0A }
        return String(decoding: slice, as: UTF8.self)
    }

    private static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let length: Int
            switch b {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return i
            }
            if i + length > bytes.count { return i }
            for k in 1..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }

    private static func convert(_ object: OpaquePointer?, path: String, map: SourceMap, file: String,
                                diagnostics: inout [Diagnostic]) -> JSONNode {
        let entry = map.entries[path]
        var node = JSONNode(value: .null, path: path, location: entry?.location)
        node.keyLocation = entry?.keyLocation
        guard let object else { return node }
        switch json_object_get_type(object) {
        case json_type_null:
            node.value = .null
        case json_type_boolean:
            node.value = .bool(json_object_get_boolean(object) != 0)
        case json_type_int, json_type_double:
            // The literal decides: json-c saturates out-of-range integers and turns 1e999 into infinity.
            let literal = entry?.literal ?? String(cString: json_object_to_json_string(object))
            guard let first = literal.first, first == "-" || first.isASCII && first.isNumber else {
                diagnostics.append(Diagnostic(file: file, location: entry?.location, path: path,
                                              message: "malformed JSON: '\(literal)' is not a JSON number"))
                return node
            }
            let isInteger = !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
            if isInteger {
                if let v = Int64(literal) {
                    node.value = .int(v)
                } else {
                    diagnostics.append(Diagnostic(file: file, location: entry?.location, path: path,
                                                  message: "integer \(literal) is out of range"))
                }
            } else if let v = Double(literal), v.isFinite {
                node.value = .double(v)
            } else {
                diagnostics.append(Diagnostic(file: file, location: entry?.location, path: path,
                                              message: "number \(literal) is out of range"))
            }
        case json_type_string:
            let length = Int(json_object_get_string_len(object))
            let pointer = json_object_get_string(object)
            if let pointer {
                let raw = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self)
                node.value = .string(String(decoding: UnsafeBufferPointer(start: raw, count: length), as: UTF8.self))
            } else {
                node.value = .string("")
            }
        case json_type_array:
            let count = json_object_array_length(object)
            var items: [JSONNode] = []
            items.reserveCapacity(count)
            for i in 0..<count {
                items.append(convert(json_object_array_get_idx(object, i), path: path + "[\(i)]", map: map,
                                     file: file, diagnostics: &diagnostics))
            }
            node.value = .array(items)
        case json_type_object:
            var members: [(key: String, node: JSONNode)] = []
            var it = json_object_iter_begin(object)
            var end = json_object_iter_end(object)
            while json_object_iter_equal(&it, &end) == 0 {
                let key = String(cString: json_object_iter_peek_name(&it))
                let child = convert(json_object_iter_peek_value(&it), path: SourceMap.memberPath(path, key), map: map,
                                    file: file, diagnostics: &diagnostics)
                members.append((key, child))
                json_object_iter_next(&it)
            }
            node.value = .object(members)
        default:
            node.value = .null
        }
        return node
    }
}
