/// Turns the JSON tree of a graph file into a `GraphSpec`, collecting every structural error it finds.
public struct SpecDecoder {
    public static let topLevelKeys = ["$schema", "unetc", "name", "description", "inputs", "blocks", "nodes", "unet", "outputs"]
    static let blockKeys = ["params", "inputs", "body", "output", "description"]
    static let unetKeys = ["input", "stem", "encoders", "connector", "decoders", "head"]
    static let stepReservedKeys = ["name", "op", "block", "in", "when", "skip", "merge"]
    static let shortLevelKeys = ["block", "down", "up", "gate", "merge", "skip", "path"]
    static let inputRoles = ["image", "timestep", "context", "mask", "condition"]
    public static let mergeModes = ["concat", "concat_skip_first", "add"]

    let file: String
    var diagnostics: [Diagnostic] = []

    /// Reads and decodes a graph file.
    public static func decode(bytes: [UInt8], file: String) -> Result<GraphSpec, DiagnosticList> {
        switch JSONDocument.parse(bytes, file: file) {
        case .failure(let list): return .failure(list)
        case .success(let root):
            var decoder = SpecDecoder(file: file)
            let spec = decoder.graph(root)
            if let spec, decoder.diagnostics.isEmpty { return .success(spec) }
            return .failure(DiagnosticList(decoder.diagnostics))
        }
    }

    init(file: String) { self.file = file }

    mutating func error(_ node: JSONNode, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(file: file, location: node.location, path: node.path, message: message, hint: hint))
    }

    /// The members of an object node; reports keys outside `allowed` (with the nearest valid one).
    mutating func object(_ node: JSONNode, what: String, allowed: [String]?) -> [(key: String, node: JSONNode)]? {
        guard let members = node.members else {
            error(node, "\(what) must be an object, found \(node.typeName)")
            return nil
        }
        if let allowed {
            for (key, child) in members where !allowed.contains(key) {
                var at = child
                at.location = child.keyLocation ?? child.location
                error(at, "unknown key '\(key)' in \(what)",
                      hint: NearestName.hint(key, in: allowed) ?? "valid keys: " + allowed.joined(separator: ", "))
            }
        }
        return members
    }

    mutating func string(_ node: JSONNode, what: String) -> String? {
        guard let s = node.stringValue else {
            error(node, "\(what) must be a string, found \(node.typeName)")
            return nil
        }
        return s
    }

    mutating func require(_ members: [(key: String, node: JSONNode)], _ key: String, in parent: JSONNode, what: String) -> JSONNode? {
        if let found = members.first(where: { $0.key == key }) { return found.node }
        error(parent, "\(what) is missing the required key '\(key)'")
        return nil
    }

    mutating func graph(_ root: JSONNode) -> GraphSpec? {
        guard let members = object(root, what: "the graph", allowed: Self.topLevelKeys) else { return nil }
        var version = 0
        if let v = require(members, "unetc", in: root, what: "the graph") {
            if case .int(let n) = v.value, n == 1 {
                version = 1
            } else if case .int = v.value {
                error(v, "unsupported language version \(Self.render(v)); this unetc reads version 1",
                      hint: "write \"unetc\": 1")
            } else {
                error(v, "'unetc' (the language version) must be the integer 1, found \(v.found)", hint: "write \"unetc\": 1")
            }
        }
        var name = ""
        if let n = require(members, "name", in: root, what: "the graph") { name = string(n, what: "'name'") ?? "" }
        let description = root["description"].flatMap { string($0, what: "'description'") }

        var inputs: [InputSpec] = []
        if let node = require(members, "inputs", in: root, what: "the graph"),
           let list = object(node, what: "'inputs'", allowed: nil) {
            if list.isEmpty { error(node, "the graph declares no inputs") }
            for (key, value) in list {
                if let input = input(key, value) { inputs.append(input) }
            }
        }

        var blocks: [String: BlockSpec] = [:]
        var blockOrder: [String] = []
        if let node = root["blocks"], let list = object(node, what: "'blocks'", allowed: nil) {
            for (key, value) in list {
                if let block = block(key, value) {
                    blocks[key] = block
                    blockOrder.append(key)
                }
            }
        }

        var nodes: [StepSpec] = []
        if let node = root["nodes"] { nodes = steps(node, what: "'nodes'") }
        var unet: UNetFormSpec?
        if let node = root["unet"] { unet = unetForm(node) }
        if root["nodes"] == nil && root["unet"] == nil {
            error(root, "the graph has neither 'nodes' nor 'unet': nothing to compute")
        }

        var outputs: [OutputSpec] = []
        if let node = require(members, "outputs", in: root, what: "the graph"),
           let list = object(node, what: "'outputs'", allowed: nil) {
            if list.isEmpty { error(node, "the graph declares no outputs") }
            for (key, value) in list {
                if let target = string(value, what: "output '\(key)'") {
                    outputs.append(OutputSpec(name: key, value: target, source: value))
                }
            }
        }
        return GraphSpec(file: file, version: version, name: name, description: description, inputs: inputs,
                         blocks: blocks, blockOrder: blockOrder, nodes: nodes, unet: unet, outputs: outputs)
    }

    mutating func input(_ name: String, _ node: JSONNode) -> InputSpec? {
        if !Self.isValidName(name) {
            error(node, "invalid input name '\(name)': names are non-empty, without spaces, brackets or control characters")
            return nil
        }
        var shapeNode = node
        var role: String?
        if node.members != nil {
            guard let members = object(node, what: "input '\(name)'", allowed: ["shape", "role"]),
                  let s = require(members, "shape", in: node, what: "input '\(name)'") else { return nil }
            shapeNode = s
            if let r = node["role"], let text = string(r, what: "the role of input '\(name)'") {
                if Self.inputRoles.contains(text) {
                    role = text
                } else {
                    error(r, "unknown input role '\(text)'", hint: NearestName.hint(text, in: Self.inputRoles))
                }
            }
        }
        guard let dims = shapeNode.elements else {
            error(shapeNode, "the shape of input '\(name)' must be an array of positive integers, found \(shapeNode.typeName)")
            return nil
        }
        if dims.isEmpty || dims.count > Limits.maxRank {
            error(shapeNode, "input '\(name)' has rank \(dims.count); ranks 1 to \(Limits.maxRank) are supported")
            return nil
        }
        var shape: [Int64] = []
        for d in dims {
            guard case .int(let v) = d.value else {
                error(d, "dimension of input '\(name)' must be an integer, found \(d.typeName)")
                return nil
            }
            guard v >= 1, v <= Limits.maxDimension else {
                error(d, "dimension \(v) of input '\(name)' is out of range (1 to \(Limits.maxDimension))")
                return nil
            }
            shape.append(v)
        }
        return InputSpec(name: name, shape: shape, role: role, source: node)
    }

    mutating func block(_ name: String, _ node: JSONNode) -> BlockSpec? {
        guard let members = object(node, what: "block '\(name)'", allowed: Self.blockKeys),
              let bodyNode = require(members, "body", in: node, what: "block '\(name)'") else { return nil }
        var parameters: [BlockSpec.Parameter] = []
        defer {
            var seen = Set<String>()
            for p in parameters where !seen.insert(p.name).inserted {
                error(node["params"] ?? node, "duplicate parameter '\(p.name)' in block '\(name)'")
            }
            for p in parameters where p.name == "in" {
                error(node["params"] ?? node, "block '\(name)' may not declare parameter 'in': $in is the input's channel count")
            }
        }
        if let p = node["params"] {
            if let list = p.elements {
                for item in list {
                    if let s = string(item, what: "a parameter name") { parameters.append(.init(name: s, defaultValue: nil)) }
                }
            } else if let dict = p.members {
                for (key, value) in dict {
                    if case .null = value.value {
                        parameters.append(.init(name: key, defaultValue: nil))
                    } else {
                        parameters.append(.init(name: key, defaultValue: value))
                    }
                }
            } else {
                error(p, "'params' of block '\(name)' must be a list of names or an object of defaults, found \(p.typeName)")
            }
        }
        var inputs = ["x"]
        if let i = node["inputs"] {
            if let list = i.elements, !list.isEmpty {
                inputs = list.compactMap { string($0, what: "a block input name") }
            } else {
                error(i, "'inputs' of block '\(name)' must be a non-empty list of names")
            }
        }
        let body = steps(bodyNode, what: "the body of block '\(name)'")
        if body.isEmpty, bodyNode.elements != nil { error(bodyNode, "block '\(name)' has an empty body") }
        let output = node["output"].flatMap { string($0, what: "'output' of block '\(name)'") }
        return BlockSpec(name: name, parameters: parameters, inputs: inputs, body: body, output: output, source: node)
    }

    mutating func steps(_ node: JSONNode, what: String) -> [StepSpec] {
        guard let list = node.elements else {
            error(node, "\(what) must be a list of steps, found \(node.typeName)")
            return []
        }
        return list.compactMap { step($0) }
    }

    mutating func step(_ node: JSONNode) -> StepSpec? {
        guard let members = object(node, what: "a step", allowed: nil) else { return nil }
        let opNode = node["op"]
        let blockNode = node["block"]
        let kind: StepSpec.Kind
        let kindSource: JSONNode
        switch (opNode, blockNode) {
        case (let o?, nil):
            guard let s = string(o, what: "'op'") else { return nil }
            kind = .op(s)
            kindSource = o
        case (nil, let b?):
            guard let s = string(b, what: "'block'") else { return nil }
            kind = .block(s)
            kindSource = b
        case (_?, _?):
            diagnostics.append(Diagnostic(file: file, location: node.location, path: node.path, node: node["name"]?.stringValue,
                                          message: "a step has both 'op' and 'block'; give one"))
            return nil
        case (nil, nil):
            diagnostics.append(Diagnostic(file: file, location: node.location, path: node.path, node: node["name"]?.stringValue,
                                          message: "a step needs 'op' (an operator) or 'block' (a block instance)",
                                          hint: NearestName.find(members.map(\.key).first { !Self.stepReservedKeys.contains($0) } ?? "", in: ["op", "block"])
                                            .map { "did you mean '\($0)'?" }))
            return nil
        }
        var name: String?
        if let n = node["name"] {
            name = string(n, what: "'name'")
            if let s = name, !Self.isValidName(s) {
                error(n, "invalid step name '\(s.unicodeScalars.map { $0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())': names are non-empty, without spaces, brackets or control characters")
            }
        }
        var inputs: [String]?
        let inNode = node["in"]
        if let inNode {
            if let s = inNode.stringValue {
                inputs = [s]
            } else if let list = inNode.elements {
                inputs = list.compactMap { string($0, what: "an input name") }
                if list.isEmpty { error(inNode, "'in' is an empty list") }
            } else {
                error(inNode, "'in' must be a value name or a list of value names, found \(inNode.typeName)")
            }
        }
        var skip: StepSpec.SkipMark?
        if let s = node["skip"] { skip = skipMark(s) }
        let merge = node["merge"].flatMap { m -> String? in
            guard let text = string(m, what: "'merge'") else { return nil }
            if !Self.mergeModes.contains(text) {
                error(m, "unknown merge '\(text)'", hint: NearestName.hint(text, in: Self.mergeModes))
            }
            return text
        }
        let attributes = members.filter { !Self.stepReservedKeys.contains($0.key) }
        return StepSpec(name: name, kind: kind, kindSource: kindSource, inputs: inputs, inputsSource: inNode,
                        when: node["when"], skip: skip, merge: merge, attributes: attributes, source: node)
    }

    static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && !s.unicodeScalars.contains { $0.value < 0x21 || $0 == "[" || $0 == "]" || $0.value == 0x7F }
    }

    mutating func skipMark(_ node: JSONNode) -> StepSpec.SkipMark? {
        switch node.value {
        case .null: return .drop
        case .bool(true): return .anonymous
        case .string(let s) where !s.isEmpty: return .named(s)
        default:
            error(node, "'skip' must be true, a skip name, or null (drop), found \(node.typeName)")
            return nil
        }
    }

    mutating func unetForm(_ node: JSONNode) -> UNetFormSpec? {
        guard let members = object(node, what: "'unet'", allowed: Self.unetKeys),
              let inputNode = require(members, "input", in: node, what: "'unet'"),
              let input = string(inputNode, what: "'unet.input'") else { return nil }
        let stem = node["stem"].map { steps($0, what: "'unet.stem'") } ?? []
        let head = node["head"].map { steps($0, what: "'unet.head'") } ?? []
        func levels(_ key: String, _ role: LevelRole, _ decoder: inout SpecDecoder) -> [LevelSpec] {
            guard let n = node[key] else { return [] }
            guard let list = n.elements else {
                decoder.error(n, "'unet.\(key)' must be a list of levels, found \(n.typeName)")
                return []
            }
            return list.compactMap { decoder.level($0, role: role) }
        }
        let encoders = levels("encoders", .encoder, &self)
        let decoders = levels("decoders", .decoder, &self)
        let connector = node["connector"].flatMap { level($0, role: .connector) }
        return UNetFormSpec(input: input, inputSource: inputNode, stem: stem, encoders: encoders, connector: connector,
                            decoders: decoders, head: head, source: node)
    }

    enum LevelRole { case encoder, connector, decoder }

    mutating func level(_ node: JSONNode, role: LevelRole) -> LevelSpec? {
        guard let members = node.members else {
            error(node, "a level must be an object, found \(node.typeName)")
            return nil
        }
        let path = node["path"].flatMap { string($0, what: "'path'") }
        if let stepsNode = node["steps"] {
            for (key, child) in members where key != "steps" && key != "path" {
                error(child, "unknown key '\(key)' in a level written with 'steps'",
                      hint: "a level is either {\"steps\": [...]} or the short form with 'block'")
            }
            return LevelSpec(form: .steps(steps(stepsNode, what: "'steps'")), path: path, source: node)
        }
        let allowedResampling: [String] = switch role {
        case .encoder: ["down", "skip"]
        case .connector: []
        case .decoder: ["up", "gate", "merge", "skip"]
        }
        for (key, child) in members where ["down", "up", "gate", "merge", "skip"].contains(key) && !allowedResampling.contains(key) {
            error(child, "'\(key)' is not allowed in \(role == .encoder ? "an encoder" : role == .decoder ? "a decoder" : "the connector")")
        }
        var short = LevelSpec.ShortLevel(block: nil, down: nil, up: nil, gate: nil, merge: "concat", mergeSource: nil, skip: nil)
        if node["block"] != nil {
            var blockNode = node
            blockNode.value = .object(members.filter { !["down", "up", "gate", "merge", "skip", "path"].contains($0.key) })
            short.block = step(blockNode)
        } else {
            let params = members.filter { !Self.shortLevelKeys.contains($0.key) }
            for (key, child) in params {
                error(child, "unknown key '\(key)' in a level without 'block'",
                      hint: NearestName.hint(key, in: Self.shortLevelKeys + ["steps"]))
            }
        }
        short.down = node["down"].flatMap { resamplingStep($0) }
        short.up = node["up"].flatMap { resamplingStep($0) }
        if let g = node["gate"] { short.gate = step(g) }
        if let m = node["merge"], let text = string(m, what: "'merge'") {
            if Self.mergeModes.contains(text) {
                short.merge = text
            } else {
                error(m, "unknown merge '\(text)'", hint: NearestName.hint(text, in: Self.mergeModes))
            }
            short.mergeSource = m
        }
        if let s = node["skip"] { short.skip = skipMark(s) }
        if short.block == nil && short.up == nil && short.down == nil {
            error(node, "a level needs 'block' (short form) or 'steps' (general form)")
            return nil
        }
        return LevelSpec(form: .short(short), path: path, source: node)
    }

    /// `"max_pool2d"` is shorthand for `{"op": "max_pool2d"}`.
    mutating func resamplingStep(_ node: JSONNode) -> StepSpec? {
        if let name = node.stringValue {
            return StepSpec(name: nil, kind: .op(name), kindSource: node, inputs: nil, inputsSource: nil, when: nil,
                            skip: nil, merge: nil, attributes: [], source: node)
        }
        return step(node)
    }

    static func render(_ node: JSONNode) -> String {
        switch node.value {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): "'\(s)'"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
