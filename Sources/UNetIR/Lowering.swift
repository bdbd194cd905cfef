import UNetSpec

/// Expands blocks, wires the ModularUNet form, infers every shape and names every weight.
///
/// Lowering and shape inference run together because a block may depend on the shape of
/// what it receives (`$in`, `when`). Errors are collected rather than thrown: a step whose
/// operands are unknown is skipped quietly, so one mistake yields one message.
public struct Lowering {
    /// A value visible under a name: a node, or nothing because an earlier error poisoned it.
    enum Value {
        case node(Int)
        case poisoned
    }

    /// Names visible while lowering one step list.
    struct Scope {
        var values: [String: Value] = [:]
        /// Shown in "did you mean" and "visible values" hints.
        var order: [String] = []

        mutating func define(_ name: String, _ value: Value) {
            if values[name] == nil { order.append(name) }
            values[name] = value
        }
    }

    /// Where a step list sits: how its weights and IR names are prefixed, and how it may touch skips.
    struct ListContext {
        var weightPrefix: String
        var namePrefix: String
        /// Prefix for unnamed weighted steps at top level (`stem`, `head`); nil inside bodies (index alone).
        var indexPrefix: String?
        var parameters: [String: JSONNode]
        var blockStack: [String]
        var skipPolicy: SkipPolicy
        /// Set inside an encoder: downsampling steps there check that spatial sizes divide.
        var encoderLevel: String?
    }

    enum SkipPolicy { case none, push, pop }

    let spec: GraphSpec
    var graph: Graph
    var diagnostics: [Diagnostic] = []
    /// Place and message of every error reported, so repeats in other block instances are not.
    var reported: Set<String> = []
    var top = Scope()
    /// The ModularUNet skip stack.
    var skips: [Skip] = []
    var nodeLimitReported = false
    var spatialErrorReported = false
    var usedNames = Set<String>()
    var instantiatedBlocks = Set<String>()
    var downsamplingFactor = 1
    var unetInputShape: Shape?

    struct Skip {
        var name: String?
        var value: Value
        var level: String
        var source: JSONNode
    }

    /// Lowers a decoded spec to a verified graph, or returns all diagnostics.
    public static func lower(_ spec: GraphSpec) -> Result<Graph, DiagnosticList> {
        var lowering = Lowering(spec: spec)
        lowering.run()
        if lowering.diagnostics.isEmpty {
            let problems = Verifier.verify(lowering.graph)
            if problems.isEmpty { return .success(lowering.graph) }
            return .failure(DiagnosticList(problems.map { Diagnostic(file: spec.file, message: "internal verifier: " + $0) }))
        }
        return .failure(DiagnosticList(lowering.diagnostics))
    }

    init(spec: GraphSpec) {
        self.spec = spec
        self.graph = Graph(name: spec.name)
    }

    /// Reports an error once per place and message: a mistake in a block body repeats in every
    /// instance of the block, and a graph may expand a block thousands of times.
    mutating func error(_ node: JSONNode, _ message: String, step: String? = nil, hint: String? = nil) {
        guard reported.insert(node.path + "\u{0}" + message).inserted else { return }
        diagnostics.append(Diagnostic(file: spec.file, location: node.location, path: node.path, node: step,
                                      message: message, hint: hint))
    }

    /// Whether an error at `node` with `message` would be new (callers skip working out a costly hint otherwise).
    func isNew(_ node: JSONNode, _ message: String) -> Bool { !reported.contains(node.path + "\u{0}" + message) }

    mutating func run() {
        for input in spec.inputs {
            let id = append(Node(id: 0, name: input.name, op: .input(name: input.name), inputs: [], shape: input.shape.map { Int($0) },
                                 weightPrefix: nil, origin: Origin(path: input.source.path, location: input.source.location)))
            graph.inputs.append((input.name, id, input.role))
            top.define(input.name, .node(id))
            if OpSemantics.elementCount(graph.nodes[id].shape) == nil {
                error(input.source, "input '\(input.name)' has more than \(Limits.maxElements) elements")
            }
        }
        let context = ListContext(weightPrefix: "", namePrefix: "", indexPrefix: "nodes", parameters: [:], blockStack: [],
                                  skipPolicy: .none, encoderLevel: nil)
        if !spec.nodes.isEmpty {
            var scope = top
            _ = lowerList(spec.nodes, scope: &scope, context: context, initial: nil)
            top = scope
        }
        if let unet = spec.unet { lowerUNet(unet) }
        for output in spec.outputs {
            switch lookup(output.value, in: top) {
            case .node(let id)?: graph.outputs.append((output.name, id))
            case .poisoned?: break
            case nil:
                error(output.source, "output '\(output.name)' names unknown value '\(output.value)'",
                      hint: NearestName.hint(output.value, in: top.order))
            }
        }
        checkWeightNames()
        checkUnusedBlocks()
        if diagnostics.isEmpty && graph.totalFLOPs > Graph.maxFLOPs {
            diagnostics.append(Diagnostic(file: spec.file, message: "the graph needs \(graph.totalFLOPs == Int.max ? "more than 9.2e18" : String(graph.totalFLOPs)) FLOP per run, over the limit of 1e16",
                                          hint: "check the input shapes and block parameters"))
        }
    }

    /// A block never instantiated is never lowered; still, its operator and block names must exist.
    mutating func checkUnusedBlocks() {
        for name in spec.blockOrder where !instantiatedBlocks.contains(name) {
            guard let block = spec.blocks[name] else { continue }
            for step in block.body {
                switch step.kind {
                case .op(let op) where !OpBuilder.names.contains(op):
                    error(step.kindSource, "unknown op '\(op)' in block '\(name)'", hint: NearestName.hint(op, in: OpBuilder.names))
                case .block(let b) where spec.blocks[b] == nil:
                    error(step.kindSource, "unknown block '\(b)' in block '\(name)'", hint: NearestName.hint(b, in: spec.blockOrder))
                default: break
                }
            }
        }
    }

    /// Value names; `name[i]` picks an output of a split.
    func lookup(_ name: String, in scope: Scope) -> Value? { scope.values[name] }

    mutating func append(_ node: Node) -> Int {
        var node = node
        node.id = graph.nodes.count
        // Names are for people; a clash (a step named like another's generated name) gets a numeric suffix.
        if usedNames.contains(node.name) {
            var k = 2
            while usedNames.contains("\(node.name)#\(k)") { k += 1 }
            node.name = "\(node.name)#\(k)"
        }
        usedNames.insert(node.name)
        graph.nodes.append(node)
        return node.id
    }

    var overNodeLimit: Bool { graph.nodes.count >= Limits.maxNodes }

    /// Lowers a step list: resolves order by dependencies, runs each step, returns the value of the last step in source order.
    mutating func lowerList(_ steps: [StepSpec], scope: inout Scope, context: ListContext, initial: Value?) -> Value? {
        // Local names, to find dependencies between steps of this list.
        var localIndex: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            guard let name = step.name else { continue }
            if localIndex[name] != nil {
                error(step.source["name"] ?? step.source, "duplicate step name '\(name)' in the same list",
                      step: context.namePrefix + name)
                continue
            }
            localIndex[name] = i
        }
        for (name, i) in localIndex.sorted(by: { $0.value < $1.value }) where scope.values[name] != nil {
            error(steps[i].source["name"] ?? steps[i].source, "step name '\(name)' hides the value '\(name)' defined outside this list",
                  step: context.namePrefix + name, hint: "rename the step")
        }
        var deps = [[Int]](repeating: [], count: steps.count)
        for (i, step) in steps.enumerated() {
            if let inputs = step.inputs {
                for input in inputs {
                    if let j = localIndex[Self.baseName(input)] { deps[i].append(j) }
                }
            } else if i > 0 {
                deps[i].append(i - 1)
            }
        }
        guard let order = topologicalOrder(deps, steps: steps, context: context) else {
            for name in localIndex.keys { scope.define(name, .poisoned) }
            return nil
        }

        var results = [Value?](repeating: nil, count: steps.count)
        for i in order {
            if overNodeLimit {
                if !nodeLimitReported {
                    nodeLimitReported = true
                    let root = context.namePrefix.split(separator: ".").first.map(String.init) ?? (steps[i].name ?? "")
                    error(steps[i].source, "the graph expands to more than \(Limits.maxNodes) nodes (while expanding '\(root)'\(context.blockStack.isEmpty ? "" : ", blocks " + context.blockStack.joined(separator: " > ")))",
                          step: context.namePrefix + (steps[i].name ?? "#\(i)"), hint: "check block parameters and nesting")
                }
                return nil
            }
            let previous: Value? = i == 0 ? initial : results[i - 1]
            let value = lowerStep(steps[i], index: i, previous: previous, scope: &scope, context: context)
            results[i] = value ?? .poisoned
            if let name = steps[i].name { scope.define(name, value ?? .poisoned) }
        }
        return results.last ?? initial
    }

    static func baseName(_ name: String) -> String {
        if name.hasSuffix("]"), let open = name.lastIndex(of: "[") { return String(name[..<open]) }
        return name
    }

    /// Kahn's algorithm preferring source order; a cycle is reported with the steps on it.
    mutating func topologicalOrder(_ deps: [[Int]], steps: [StepSpec], context: ListContext) -> [Int]? {
        let n = steps.count
        var indegree = [Int](repeating: 0, count: n)
        var users = [[Int]](repeating: [], count: n)
        for (i, ds) in deps.enumerated() {
            for d in ds {
                indegree[i] += 1
                users[d].append(i)
            }
        }
        var ready = (0..<n).filter { indegree[$0] == 0 }
        var order: [Int] = []
        while !ready.isEmpty {
            let i = ready.removeFirst()
            order.append(i)
            for u in users[i] {
                indegree[u] -= 1
                if indegree[u] == 0 {
                    let at = ready.firstIndex { $0 > u } ?? ready.count
                    ready.insert(u, at: at)
                }
            }
        }
        if order.count == n { return order }
        // Walk dependencies from an unfinished step until a step repeats: that loop is the cycle.
        let pending = Set((0..<n).filter { indegree[$0] > 0 })
        var path: [Int] = []
        var current = pending.min() ?? 0
        while !path.contains(current) {
            path.append(current)
            current = deps[current].first { pending.contains($0) } ?? current
        }
        // `path` follows "reads from" edges; data flows the other way. Start the loop at its earliest step.
        var loop = Array(path[(path.firstIndex(of: current) ?? 0)...].reversed())
        if let start = loop.firstIndex(of: loop.min() ?? 0) { loop = Array(loop[start...] + loop[..<start]) }
        let names = (loop + loop.prefix(1)).map { steps[$0].name ?? "#\($0)" }
        error(steps[current].source, "cycle between steps: " + names.joined(separator: " -> "),
              step: context.namePrefix + (steps[current].name ?? "#\(current)"),
              hint: "a step cannot depend on its own output, directly or through others")
        return nil
    }

    static func join(_ a: String, _ b: String) -> String {
        a.isEmpty ? b : b.isEmpty ? a : a + "." + b
    }

    /// Resolves a value name used by a step, reporting unknown names.
    mutating func resolve(_ name: String, scope: Scope, step: StepSpec, stepName: String) -> Value? {
        if let v = scope.values[name] { return v }
        if case .poisoned? = scope.values[Self.baseName(name)] { return .poisoned }
        error(step.inputsSource ?? step.source, "unknown value '\(name)'", step: stepName,
              hint: NearestName.hint(name, in: scope.order) ?? (scope.order.isEmpty ? nil : "visible values: " + scope.order.suffix(12).joined(separator: ", ")))
        return nil
    }

    mutating func lowerStep(_ step: StepSpec, index: Int, previous: Value?, scope: inout Scope, context: ListContext) -> Value? {
        let localName: String = step.name ?? {
            switch step.kind {
            case .op(let op): "\(op)_\(index)"
            case .block(let b): "\(b)_\(index)"
            }
        }()
        // Unnamed steps of top-level lists get their list in the name (`head.relu_2`), so the stem's and head's do not collide.
        let stepName = context.namePrefix + (step.name == nil ? context.indexPrefix.map { $0 + "." } ?? "" : "") + localName

        if step.skip != nil && context.skipPolicy == .none {
            error(step.source["skip"] ?? step.source, "'skip' is only meaningful in unet levels and the stem", step: stepName)
        }
        if step.merge != nil && context.skipPolicy != .pop {
            error(step.source["merge"] ?? step.source, "'merge' is only meaningful in decoder steps", step: stepName)
        }

        // Operands.
        var operands: [Value] = []
        if let names = step.inputs {
            for name in names {
                guard let v = resolve(name, scope: scope, step: step, stepName: stepName) else { return nil }
                operands.append(v)
            }
        } else if let previous {
            operands.append(previous)
        }

        if let when = step.when {
            switch condition(when, parameters: context.parameters, stepName: stepName) {
            case nil: return nil
            case false?:
                guard let first = operands.first else {
                    error(when, "a step left out by 'when' needs an input to stand for", step: stepName)
                    return nil
                }
                return first
            case true?: break
            }
        }

        if context.skipPolicy == .pop, let merge = step.merge {
            guard let x = operands.first else {
                error(step.source, "a merging step needs an input", step: stepName)
                return nil
            }
            guard let merged = mergeSkip(x, mode: merge, mark: step.skip, at: step.source["merge"] ?? step.source,
                                         level: context.weightPrefix, stepName: stepName) else { return nil }
            operands[0] = merged
        }

        var ids: [Int] = []
        for operand in operands {
            guard case .node(let id) = operand else { return .poisoned }
            ids.append(id)
        }

        let result: Value?
        switch step.kind {
        case .op(let opName):
            result = lowerOp(step, opName: opName, operands: ids, localName: localName, index: index, stepName: stepName,
                             scope: &scope, context: context)
        case .block(let blockName):
            result = lowerBlockInstance(step, blockName: blockName, operands: ids, index: index, stepName: stepName, context: context)
        }
        if context.skipPolicy == .push, let mark = step.skip {
            // A failed step still pushes (a poisoned value), so the decoders' pairing stays as written.
            pushSkip(result ?? .poisoned, mark: mark, level: stepName, source: step.source)
        }
        return result
    }

    mutating func condition(_ node: JSONNode, parameters: [String: JSONNode], stepName: String) -> Bool? {
        switch node.value {
        case .bool(let b): return b
        case .string(let text):
            switch ParamExpression.evaluate(text, parameters: parameters) {
            case .success(.bool(let b)): return b
            case .success(.int):
                error(node, "'when' must be a boolean expression, '\(text)' is an integer", step: stepName)
            case .failure(let f):
                error(node, f.message, step: stepName, hint: f.hint)
            }
        default:
            error(node, "'when' must be a boolean or an expression string, found \(node.typeName)", step: stepName)
        }
        return nil
    }

    mutating func resolveAttributes(_ attributes: [(key: String, node: JSONNode)], parameters: [String: JSONNode],
                                    stepName: String) -> [(key: String, node: JSONNode)]? {
        var resolved: [(key: String, node: JSONNode)] = []
        var ok = true
        for (key, node) in attributes {
            switch ParamExpression.resolve(node, parameters: parameters) {
            case .success(let r): resolved.append((key, r))
            case .failure(let f):
                error(node, f.message, step: stepName, hint: f.hint)
                ok = false
            }
        }
        return ok ? resolved : nil
    }

    mutating func lowerOp(_ step: StepSpec, opName: String, operands: [Int], localName: String, index: Int, stepName: String,
                          scope: inout Scope, context: ListContext) -> Value? {
        guard OpBuilder.names.contains(opName) else {
            let message = "unknown op '\(opName)'"
            guard isNew(step.kindSource, message) else { return nil }
            let isBlock = spec.blocks[opName] != nil
            error(step.kindSource, message, step: stepName,
                  hint: isBlock ? "'\(opName)' is a block: write \"block\": \"\(opName)\"" : NearestName.hint(opName, in: OpBuilder.names))
            return nil
        }
        if operands.isEmpty {
            error(step.source, "step has no input: it is the first of its list, so name its operands with \"in\"", step: stepName)
            return nil
        }
        guard let attributes = resolveAttributes(step.attributes, parameters: context.parameters, stepName: stepName) else { return nil }
        var builder = OpBuilder(attributes: attributes, step: step.source)
        let built = builder.build(opName)
        for p in builder.problems { error(p.node, p.message, step: stepName, hint: p.hint) }
        guard builder.problems.isEmpty, let built else { return nil }
        let shapes = operands.map { graph.nodes[$0].shape }
        let origin = Origin(path: step.source.path, location: step.source.location)

        switch built {
        case .single(let op):
            let shape: Shape
            do {
                shape = try OpSemantics.outputShape(of: op, inputs: shapes)
            } catch {
                let operandText = zip(operands, shapes).map { "'\(graph.nodes[$0.0].name)' \(OpSemantics.describe($0.1))" }
                self.error(step.source, "\(opName): \(error.message)" + (operandText.isEmpty ? "" : "; operands: " + operandText.joined(separator: ", ")),
                           step: stepName, hint: error.hint)
                return nil
            }
            if let level = context.encoderLevel { checkDownsampling(op, input: shapes[0], level: level, step: step, stepName: stepName) }
            let localWeights = OpSemantics.weights(of: op, inputShapes: shapes, outputShape: shape)
            for w in localWeights where OpSemantics.elementCount(w.shape) == nil {
                error(step.source, "\(opName): weight '\(w.name)' \(OpSemantics.describe(w.shape)) has more than \(Limits.maxElements) elements",
                      step: stepName)
                return nil
            }
            let hasWeights = !localWeights.isEmpty
            var weightPrefix: String?
            if hasWeights {
                let segment = step.name ?? context.indexPrefix.map { "\($0).\(index)" } ?? "\(index)"
                weightPrefix = Self.join(context.weightPrefix, segment)
            }
            let id = append(Node(id: 0, name: stepName, op: op, inputs: operands, shape: shape, weightPrefix: weightPrefix, origin: origin))
            return .node(id)
        case .split(let axis, let sizes, let chunks):
            guard let x = shapes.first, shapes.count == 1 else {
                error(step.source, "\(opName) takes 1 operand, got \(shapes.count)", step: stepName)
                return nil
            }
            guard axis < x.count else {
                error(step.source, "\(opName): axis \(axis) is out of range for \(OpSemantics.describe(x))", step: stepName)
                return nil
            }
            var parts = sizes ?? []
            if let chunks {
                guard x[axis] % chunks == 0 else {
                    error(step.source, "chunk: \(chunks) chunks do not divide axis \(axis) of \(OpSemantics.describe(x))", step: stepName)
                    return nil
                }
                parts = [Int](repeating: x[axis] / chunks, count: chunks)
            }
            guard parts.reduce(0, +) == x[axis] else {
                error(step.source, "split sizes \(parts) add up to \(parts.reduce(0, +)), but axis \(axis) of \(OpSemantics.describe(x)) is \(x[axis])",
                      step: stepName)
                return nil
            }
            var start = 0
            var first: Value?
            for (k, size) in parts.enumerated() {
                var shape = x
                shape[axis] = size
                let id = append(Node(id: 0, name: "\(stepName)[\(k)]", op: .slice(axis: axis, start: start, length: size),
                                     inputs: operands, shape: shape, weightPrefix: nil, origin: origin))
                scope.define("\(localName)[\(k)]", .node(id))
                if first == nil { first = .node(id) }
                start += size
            }
            return first
        }
    }

    mutating func lowerBlockInstance(_ step: StepSpec, blockName: String, operands: [Int], index: Int, stepName: String,
                                     context: ListContext, instanceSegment: String?? = nil) -> Value? {
        guard let block = spec.blocks[blockName] else {
            let isOp = OpBuilder.names.contains(blockName)
            error(step.kindSource, "unknown block '\(blockName)'", step: stepName,
                  hint: isOp ? "'\(blockName)' is an operator: write \"op\": \"\(blockName)\"" : NearestName.hint(blockName, in: spec.blockOrder))
            return nil
        }
        if let first = context.blockStack.firstIndex(of: blockName) {
            let chain = context.blockStack[first...] + [blockName]
            error(step.kindSource, "recursive block: " + chain.joined(separator: " -> "), step: stepName,
                  hint: "a block cannot instantiate itself, directly or through other blocks")
            return nil
        }
        instantiatedBlocks.insert(blockName)
        if context.blockStack.count >= Limits.maxBlockDepth {
            error(step.kindSource, "blocks nest deeper than \(Limits.maxBlockDepth) levels", step: stepName)
            return nil
        }
        guard let attributes = resolveAttributes(step.attributes, parameters: context.parameters, stepName: stepName) else { return nil }

        // Parameters: given, defaults, then `$in`.
        var parameters: [String: JSONNode] = [:]
        let declared = block.parameters.map(\.name)
        var ok = true
        for (key, node) in attributes {
            if declared.contains(key) {
                parameters[key] = node
            } else {
                error(node, "unknown parameter '\(key)' for block '\(blockName)'", step: stepName,
                      hint: NearestName.hint(key, in: declared) ?? (declared.isEmpty ? "'\(blockName)' takes no parameters" : "parameters: " + declared.joined(separator: ", ")))
                ok = false
            }
        }
        if let first = operands.first {
            let shape = graph.nodes[first].shape
            parameters["in"] = JSONNode(value: .int(Int64(shape.count >= 2 ? shape[1] : shape[0])), path: step.source.path,
                                        location: step.source.location)
        }
        for p in block.parameters where parameters[p.name] == nil {
            if let d = p.defaultValue {
                switch ParamExpression.resolve(d, parameters: parameters) {
                case .success(let r): parameters[p.name] = r
                case .failure(let f):
                    error(d, f.message, step: stepName, hint: f.hint)
                    ok = false
                }
            } else {
                error(step.source, "block '\(blockName)' needs parameter '\(p.name)'", step: stepName)
                ok = false
            }
        }
        guard ok else { return nil }

        // Inputs: given ones first, the rest bound by name from the top-level scope (conditioning values).
        if operands.count > block.inputs.count {
            error(step.inputsSource ?? step.source, "block '\(blockName)' takes \(block.inputs.count) input(s) \(block.inputs), got \(operands.count)",
                  step: stepName)
            return nil
        }
        var scope = Scope()
        for (k, name) in block.inputs.enumerated() {
            if k < operands.count {
                scope.define(name, .node(operands[k]))
            } else if let v = top.values[name] {
                scope.define(name, v)
            } else {
                error(step.source, "block '\(blockName)' input '\(name)' is not given and no top-level value is named '\(name)'",
                      step: stepName, hint: "pass it with \"in\": [...] or define '\(name)' in 'nodes' or 'inputs'")
                return nil
            }
        }
        // A short-form level passes `.some(nil)`: the block's weights sit directly under the level.
        let segment: String? = instanceSegment ?? (step.name ?? "\(index)")
        let inner = ListContext(weightPrefix: Self.join(context.weightPrefix, segment ?? ""),
                                namePrefix: segment == nil ? context.namePrefix : stepName + ".",
                                indexPrefix: nil, parameters: parameters, blockStack: context.blockStack + [blockName],
                                skipPolicy: .none, encoderLevel: nil)
        let first = block.inputs.first.flatMap { scope.values[$0] }
        let last = lowerList(block.body, scope: &scope, context: inner, initial: first)
        if let output = block.output {
            guard let v = scope.values[output] else {
                error(block.source["output"] ?? block.source, "block '\(blockName)' output '\(output)' is not a value of its body",
                      hint: NearestName.hint(output, in: scope.order))
                return nil
            }
            return v
        }
        return last
    }

    /// Two weights with one name would load the same tensor twice: report it.
    mutating func checkWeightNames() {
        guard diagnostics.isEmpty else { return }
        var owner: [String: Int] = [:]
        for node in graph.nodes {
            guard let prefix = node.weightPrefix else { continue }
            if let other = owner[prefix] {
                let first = graph.nodes[other]
                diagnostics.append(Diagnostic(file: spec.file, location: node.origin.location, path: node.origin.path, node: node.name,
                                              message: "weight path '\(prefix)' is used by two nodes ('\(first.name)' and '\(node.name)')",
                                              hint: "give the steps distinct names"))
            } else {
                owner[prefix] = node.id
            }
        }
    }
}
