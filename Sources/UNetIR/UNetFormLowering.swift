import UNetSpec

/// The ModularUNet form: stem, encoders pushing skips, connector, decoders popping them, head.
extension Lowering {
    mutating func lowerUNet(_ unet: UNetFormSpec) {
        guard var x = top.values[unet.input] else {
            error(unet.inputSource, "unet input '\(unet.input)' is not a graph input or a 'nodes' value",
                  hint: NearestName.hint(unet.input, in: top.order))
            // Names the unet would have defined are poisoned, so outputs naming them raise no second error.
            for step in unet.stem + unet.head { if let name = step.name { top.define(name, .poisoned) } }
            top.define("unet", .poisoned)
            return
        }
        downsamplingFactor = Self.downsamplingFactor(unet)
        unetInputShape = { if case .node(let id) = x { return graph.nodes[id].shape } else { return nil } }()

        let stem = ListContext(weightPrefix: "", namePrefix: "", indexPrefix: "stem", parameters: [:], blockStack: [],
                               skipPolicy: .push, encoderLevel: nil)
        if !unet.stem.isEmpty {
            var scope = top
            if let v = lowerList(unet.stem, scope: &scope, context: stem, initial: x) { x = v }
            top = scope
        }

        for (i, level) in unet.encoders.enumerated() {
            let prefix = level.path ?? "encoders.\(i)"
            x = lowerLevel(level, prefix: prefix, role: .encoder, x: x)
        }
        if let connector = unet.connector {
            x = lowerLevel(connector, prefix: connector.path ?? "connector", role: .connector, x: x)
        }
        for (i, level) in unet.decoders.enumerated() {
            let prefix = level.path ?? "decoders.\(i)"
            x = lowerLevel(level, prefix: prefix, role: .decoder, x: x)
        }
        if diagnostics.isEmpty {
            for skip in skips {
                let shape: String = { if case .node(let id) = skip.value { return " " + OpSemantics.describe(graph.nodes[id].shape) } else { return "" } }()
                error(skip.source, "skip\(skip.name.map { " '\($0)'" } ?? "") from \(skip.level)\(shape) is never consumed by a decoder",
                      step: skip.level, hint: "add a decoder for it, or drop it explicitly with \"skip\": null on the decoder")
            }
        }
        skips.removeAll()

        let head = ListContext(weightPrefix: "", namePrefix: "", indexPrefix: "head", parameters: [:], blockStack: [],
                               skipPolicy: .none, encoderLevel: nil)
        if !unet.head.isEmpty {
            var scope = top
            if let v = lowerList(unet.head, scope: &scope, context: head, initial: x) { x = v }
            top = scope
        }
        top.define("unet", x)
    }

    enum LevelRole { case encoder, connector, decoder }

    mutating func lowerLevel(_ level: LevelSpec, prefix: String, role: LevelRole, x: Value) -> Value {
        var context = ListContext(weightPrefix: prefix, namePrefix: prefix + ".", indexPrefix: nil, parameters: [:], blockStack: [],
                                  skipPolicy: role == .encoder ? .push : role == .decoder ? .pop : .none,
                                  encoderLevel: role == .encoder ? prefix : nil)
        switch level.form {
        case .steps(let steps):
            var scope = top
            let result = lowerList(steps, scope: &scope, context: context, initial: x) ?? .poisoned
            return result
        case .short(let short):
            var x = x
            context.skipPolicy = .none
            if role == .decoder {
                if let up = short.up { x = lowerResampling(up, segment: "up", x: x, context: context) }
                guard let merged = mergeSkip(x, mode: short.merge, mark: short.skip, gate: short.gate,
                                             at: (short.skip != nil ? level.source["skip"] : nil) ?? short.mergeSource ?? level.source,
                                             level: prefix, stepName: prefix + ".merge") else { return .poisoned }
                x = merged
            }
            if let block = short.block, case .block(let name) = block.kind {
                if case .node(let id) = x {
                    x = lowerBlockInstance(block, blockName: name, operands: [id], index: 0, stepName: prefix, context: context,
                                           instanceSegment: .some(nil)) ?? .poisoned
                } else {
                    x = .poisoned
                }
            }
            if role == .encoder {
                pushSkip(x, mark: short.skip ?? .anonymous, level: prefix, source: level.source)
                if let down = short.down {
                    context.encoderLevel = prefix
                    x = lowerResampling(down, segment: "down", x: x, context: context)
                }
            }
            return x
        }
    }

    /// `down`/`up` steps: named `down`/`up` under the level unless they carry their own name.
    mutating func lowerResampling(_ step: StepSpec, segment: String, x: Value, context: ListContext) -> Value {
        var step = step
        if step.name == nil { step.name = segment }
        var scope = top
        return lowerStep(step, index: 0, previous: x, scope: &scope, context: context) ?? .poisoned
    }

    mutating func pushSkip(_ value: Value, mark: StepSpec.SkipMark, level: String, source: JSONNode) {
        if case .node(let id) = value { graph.skipSources.append(id) }
        switch mark {
        case .anonymous: skips.append(Skip(name: nil, value: value, level: level, source: source))
        case .named(let name):
            if skips.contains(where: { $0.name == name }) {
                error(source["skip"] ?? source, "skip name '\(name)' is used twice", step: level)
            }
            skips.append(Skip(name: name, value: value, level: level, source: source))
        case .drop:
            error(source["skip"] ?? source, "\"skip\": null drops a skip on the decoder side; an encoder pushes with true or a name",
                  step: level)
        }
    }

    /// Pops the skip a decoder takes (last in, first out, or by name), optionally gates it, and merges it into `x`.
    mutating func mergeSkip(_ x: Value, mode: String, mark: StepSpec.SkipMark?, gate: StepSpec? = nil, at source: JSONNode,
                            level: String, stepName: String) -> Value? {
        var taken: Skip
        switch mark {
        case .named(let name)?:
            guard let k = skips.lastIndex(where: { $0.name == name }) else {
                error(source, "no skip named '\(name)' is waiting for \(level)", step: stepName,
                      hint: NearestName.hint(name, in: skips.compactMap(\.name)))
                return nil
            }
            taken = skips.remove(at: k)
        case .drop?:
            guard !skips.isEmpty else {
                error(source, "\(level) drops a skip but none is left", step: stepName)
                return nil
            }
            skips.removeLast()
            return x
        case .anonymous?, nil:
            guard let last = skips.popLast() else {
                error(source, "\(level) needs a skip but every encoder skip is already taken", step: stepName,
                      hint: "there are more decoders than encoders; remove one or give it \"skip\": null")
                return nil
            }
            taken = last
        }
        guard case .node(let xID) = x, case .node(var skipID) = taken.value else { return .poisoned }

        if let gate {
            guard case .block(let blockName) = gate.kind else {
                error(gate.source, "'gate' must be a block instance taking [skip, gating signal]", step: stepName)
                return nil
            }
            let gateContext = ListContext(weightPrefix: level, namePrefix: level + ".", indexPrefix: nil, parameters: [:],
                                          blockStack: [], skipPolicy: .none, encoderLevel: nil)
            var gateStep = gate
            if gateStep.name == nil { gateStep.name = "gate" }
            let firstGateNode = graph.nodes.count
            defer {
                graph.gateMaps += graph.nodes[firstGateNode...].filter { $0.op == .unary(.sigmoid) }.map(\.id)
            }
            guard case .node(let g)? = lowerBlockInstance(gateStep, blockName: blockName, operands: [skipID, xID], index: 0,
                                                          stepName: level + "." + (gateStep.name ?? "gate"), context: gateContext)
            else { return nil }
            skipID = g
        }

        let xs = graph.nodes[xID].shape
        let ss = graph.nodes[skipID].shape
        if xs.count == 4, ss.count == 4, xs[2...] != ss[2...] {
            if !spatialErrorReported {
                let inputDivides = unetInputShape.map { $0.count == 4 && $0[2] % downsamplingFactor == 0 && $0[3] % downsamplingFactor == 0 } ?? false
                error(source, "\(level) cannot merge its input \(OpSemantics.describe(xs)) with the skip from \(taken.level) \(OpSemantics.describe(ss)): spatial sizes differ",
                      step: stepName,
                      hint: inputDivides ? "'\(graph.nodes[xID].name)' must undo the downsampling of \(taken.level) (compare their scale and stride)" : sizeHint())
            }
            return nil
        }
        let op: Op
        var operands: [Int]
        switch mode {
        case "add": op = .binary(.add); operands = [xID, skipID]
        case "concat_skip_first": op = .concat(axis: 1); operands = [skipID, xID]
        default: op = .concat(axis: 1); operands = [xID, skipID]
        }
        do {
            let shape = try OpSemantics.outputShape(of: op, inputs: operands.map { graph.nodes[$0].shape })
            return .node(append(Node(id: 0, name: stepName, op: op, inputs: operands, shape: shape, weightPrefix: nil,
                                     origin: Origin(path: source.path, location: source.location))))
        } catch {
            self.error(source, "\(level) cannot \(mode == "add" ? "add" : "concatenate") its input \(OpSemantics.describe(xs)) and the skip from \(taken.level) \(OpSemantics.describe(ss)): \(error.message)",
                       step: stepName, hint: mode == "add" ? "an add merge needs equal channel counts; use \"merge\": \"concat\" or change 'out'" : nil)
            return nil
        }
    }

    /// An encoder's downsampling step must divide the spatial size exactly, or the decoder's skips will not line up.
    mutating func checkDownsampling(_ op: Op, input: Shape, level: String, step: StepSpec, stepName: String) {
        // Only where an odd size is silently rounded: pooling, and strided convolutions with "same"-style padding.
        // A conv after an explicit pad step (diffusers' padding=0 downsampler) is exact by construction.
        let stride: (Int, Int)
        switch op {
        case .pool2d(let p): stride = p.stride
        case .conv2d(let c) where c.pad.0 * 2 == c.dilation.0 * (c.kernel.0 - 1): stride = c.stride
        default: return
        }
        guard input.count == 4, stride.0 > 1 || stride.1 > 1 else { return }
        if input[2] % stride.0 != 0 || input[3] % stride.1 != 0 {
            if spatialErrorReported { return }
            spatialErrorReported = true
            error(step.source, "\(level): spatial size \(input[2])x\(input[3]) does not divide by the downsampling stride \(stride.0)x\(stride.1)",
                  step: stepName, hint: sizeHint())
        }
    }

    func sizeHint() -> String {
        let f = downsamplingFactor
        guard let shape = unetInputShape, shape.count == 4, f > 1 else {
            return "make every spatial size divisible by the encoders' downsampling, or add a pad/crop step"
        }
        func nearest(_ n: Int) -> String {
            let down = n / f * f
            let up = down + f
            return down >= f && down != n ? "\(down) or \(up)" : "\(up)"
        }
        return "the unet input \(OpSemantics.describe(shape)) needs height and width divisible by \(f) (the encoders downsample by \(f) in all): "
            + "use height \(nearest(shape[2])) and width \(nearest(shape[3])), or add a pad step in 'stem' and a crop step in 'head'"
    }

    /// Product of the encoders' downsampling strides, read from the spec (for the size hint only).
    static func downsamplingFactor(_ unet: UNetFormSpec) -> Int {
        var factor = 1
        func strideOf(_ step: StepSpec) -> Int {
            guard case .op(let name) = step.kind else { return 1 }
            let attr = step.attribute("stride") ?? (name.hasSuffix("pool2d") ? step.attribute("kernel") : nil)
            if let attr, case .int(let v) = attr.value, v > 0, v < 64 { return Int(v) }
            return name.hasSuffix("pool2d") ? 2 : 1
        }
        for level in unet.encoders {
            switch level.form {
            case .short(let s): if let down = s.down { factor *= strideOf(down) }
            case .steps(let steps): for step in steps { factor *= strideOf(step) }
            }
            if factor > 1 << 20 { break }
        }
        return factor
    }
}
