/// Block-parameter expressions: `"$out"`, `"$out * 4"`, `"$in != $out"`.
///
/// Integer arithmetic with overflow checks, comparisons and boolean logic; nothing else, so a
/// graph file cannot make the compiler loop or allocate.
public enum ParamExpression {
    public enum Value: Sendable, Equatable {
        case int(Int64)
        case bool(Bool)
    }

    public struct Failure: Error, Sendable {
        public var message: String
        public var hint: String?
    }

    /// Substitutes parameters in `node` (recursively through arrays); strings starting with `$` are expressions.
    public static func resolve(_ node: JSONNode, parameters: [String: JSONNode]) -> Result<JSONNode, Failure> {
        switch node.value {
        case .string(let text) where text.contains("$"):
            let name = String(text.dropFirst())
            if text.hasPrefix("$"), isIdentifier(name) {
                guard let bound = parameters[name] else {
                    return .failure(Failure(message: "unknown parameter '$\(name)'",
                                            hint: NearestName.hint(name, in: Array(parameters.keys)).map { $0.replacingDollar() }))
                }
                var out = bound
                out.path = node.path
                out.location = node.location
                return .success(out)
            }
            switch evaluate(text, parameters: parameters) {
            case .failure(let f): return .failure(f)
            case .success(let v):
                var out = node
                switch v {
                case .int(let i): out.value = .int(i)
                case .bool(let b): out.value = .bool(b)
                }
                return .success(out)
            }
        case .array(let items):
            var resolved: [JSONNode] = []
            for item in items {
                switch resolve(item, parameters: parameters) {
                case .success(let r): resolved.append(r)
                case .failure(let f): return .failure(f)
                }
            }
            var out = node
            out.value = .array(resolved)
            return .success(out)
        default:
            return .success(node)
        }
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || first == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }

    /// Evaluates an expression string.
    public static func evaluate(_ text: String, parameters: [String: JSONNode]) -> Result<Value, Failure> {
        var parser = Parser(chars: Array(text), parameters: parameters)
        do {
            let v = try parser.expression(depth: 0)
            parser.skipSpace()
            if parser.index < parser.chars.count {
                throw Failure(message: "unexpected '\(parser.chars[parser.index])' in expression '\(text)'")
            }
            return .success(v)
        } catch let f as Failure {
            return .failure(Failure(message: f.message.contains(text) ? f.message : f.message + " in '\(text)'", hint: f.hint))
        } catch {
            return .failure(Failure(message: "invalid expression '\(text)'"))
        }
    }

    private struct Parser {
        let chars: [Character]
        let parameters: [String: JSONNode]
        var index = 0

        init(chars: [Character], parameters: [String: JSONNode]) {
            self.chars = chars
            self.parameters = parameters
        }

        mutating func skipSpace() {
            while index < chars.count, chars[index] == " " { index += 1 }
        }

        mutating func take(_ token: String) -> Bool {
            skipSpace()
            let t = Array(token)
            guard index + t.count <= chars.count, Array(chars[index..<index + t.count]) == t else { return false }
            // "<" must not swallow the first half of "<=", etc.
            if t.count == 1, index + 1 < chars.count, chars[index + 1] == "=", "<>=!".contains(t[0]) { return false }
            index += t.count
            return true
        }

        mutating func expression(depth: Int) throws -> Value {
            if depth > 32 { throw Failure(message: "expression nested too deeply") }
            var lhs = try comparison(depth: depth)
            while true {
                if take("&&") {
                    let rhs = try comparison(depth: depth)
                    lhs = .bool(try bool(lhs) && bool(rhs))
                } else if take("||") {
                    let rhs = try comparison(depth: depth)
                    lhs = .bool(try bool(lhs) || bool(rhs))
                } else {
                    return lhs
                }
            }
        }

        mutating func comparison(depth: Int) throws -> Value {
            let lhs = try sum(depth: depth)
            for op in ["==", "!=", "<=", ">=", "<", ">"] where take(op) {
                let rhs = try sum(depth: depth)
                if op == "==" { return .bool(lhs == rhs) }
                if op == "!=" { return .bool(lhs != rhs) }
                let (a, b) = (try int(lhs), try int(rhs))
                switch op {
                case "<=": return .bool(a <= b)
                case ">=": return .bool(a >= b)
                case "<": return .bool(a < b)
                default: return .bool(a > b)
                }
            }
            return lhs
        }

        mutating func sum(depth: Int) throws -> Value {
            var lhs = try product(depth: depth)
            while true {
                if take("+") {
                    lhs = try arithmetic(lhs, try product(depth: depth)) { $0.addingReportingOverflow($1) }
                } else if take("-") {
                    lhs = try arithmetic(lhs, try product(depth: depth)) { $0.subtractingReportingOverflow($1) }
                } else {
                    return lhs
                }
            }
        }

        mutating func product(depth: Int) throws -> Value {
            var lhs = try unary(depth: depth)
            while true {
                if take("*") {
                    lhs = try arithmetic(lhs, try unary(depth: depth)) { $0.multipliedReportingOverflow(by: $1) }
                } else if take("/") {
                    let rhs = try unary(depth: depth)
                    if try int(rhs) == 0 { throw Failure(message: "division by zero") }
                    lhs = try arithmetic(lhs, rhs) { $0.dividedReportingOverflow(by: $1) }
                } else if take("%") {
                    let rhs = try unary(depth: depth)
                    if try int(rhs) == 0 { throw Failure(message: "division by zero") }
                    lhs = try arithmetic(lhs, rhs) { $0.remainderReportingOverflow(dividingBy: $1) }
                } else {
                    return lhs
                }
            }
        }

        mutating func unary(depth: Int) throws -> Value {
            if take("!") { return .bool(!(try bool(try unary(depth: depth + 1)))) }
            if take("-") { return try arithmetic(.int(0), try unary(depth: depth + 1)) { $0.subtractingReportingOverflow($1) } }
            return try primary(depth: depth)
        }

        mutating func primary(depth: Int) throws -> Value {
            skipSpace()
            guard index < chars.count else { throw Failure(message: "expression ends early") }
            if take("(") {
                let v = try expression(depth: depth + 1)
                guard take(")") else { throw Failure(message: "missing ')'") }
                return v
            }
            if chars[index] == "$" {
                index += 1
                let start = index
                while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" { index += 1 }
                let name = String(chars[start..<index])
                guard let bound = parameters[name] else {
                    throw Failure(message: "unknown parameter '$\(name)'",
                                  hint: NearestName.find(name, in: Array(parameters.keys)).map { "did you mean '$\($0)'?" })
                }
                switch bound.value {
                case .int(let i): return .int(i)
                case .bool(let b): return .bool(b)
                default: throw Failure(message: "parameter '$\(name)' is \(bound.typeName), not an integer or boolean")
                }
            }
            if chars[index].isNumber {
                let start = index
                while index < chars.count, chars[index].isNumber { index += 1 }
                guard let v = Int64(String(chars[start..<index])) else { throw Failure(message: "integer out of range") }
                return .int(v)
            }
            if take("true") { return .bool(true) }
            if take("false") { return .bool(false) }
            throw Failure(message: "unexpected '\(chars[index])'")
        }

        func int(_ v: Value) throws -> Int64 {
            guard case .int(let i) = v else { throw Failure(message: "expected an integer, found a boolean") }
            return i
        }

        func bool(_ v: Value) throws -> Bool {
            guard case .bool(let b) = v else { throw Failure(message: "expected a boolean, found an integer") }
            return b
        }

        func arithmetic(_ a: Value, _ b: Value, _ op: (Int64, Int64) -> (partialValue: Int64, overflow: Bool)) throws -> Value {
            let r = op(try int(a), try int(b))
            if r.overflow { throw Failure(message: "integer overflow") }
            return .int(r.partialValue)
        }
    }
}

extension String {
    fileprivate func replacingDollar() -> String {
        guard let q = firstIndex(of: "'") else { return self }
        var s = self
        s.insert("$", at: s.index(after: q))
        return s
    }
}
