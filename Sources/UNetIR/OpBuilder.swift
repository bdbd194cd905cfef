import UNetSpec

/// Reads a step's attributes into an `Op`, checking names, types and ranges.
///
/// Every attribute an operator reads is recorded, so whatever the step gives beyond that is
/// reported as unknown, with the nearest valid name.
struct OpBuilder {
    /// What a spec-level operator turns into: most become one IR op, `split`/`chunk` several slices.
    enum Built {
        case single(Op)
        case split(axis: Int, sizes: [Int]?, chunks: Int?)
    }

    /// Operator names accepted in graph files.
    static let names = [
        "conv2d", "conv_transpose2d", "linear", "matmul", "batch_norm", "group_norm", "layer_norm", "instance_norm",
        "relu", "relu6", "leaky_relu", "silu", "gelu", "sigmoid", "tanh", "identity", "softmax", "clamp", "scale",
        "add", "sub", "mul", "div", "film", "concat", "split", "chunk", "reshape", "transpose", "max_pool2d",
        "avg_pool2d", "global_avg_pool", "global_max_pool", "upsample", "pixel_shuffle", "channel_shuffle", "pad",
        "crop", "timestep_embedding", "attention", "geglu", "lab_to_rgb", "to_tokens", "from_tokens",
    ]

    struct Problem: Error {
        var node: JSONNode
        var message: String
        var hint: String?
    }

    let attributes: [(key: String, node: JSONNode)]
    let step: JSONNode
    private(set) var known: [String] = []
    private(set) var problems: [Problem] = []

    init(attributes: [(key: String, node: JSONNode)], step: JSONNode) {
        self.attributes = attributes
        self.step = step
    }

    private mutating func raw(_ key: String) -> JSONNode? {
        known.append(key)
        return attributes.first { $0.key == key }?.node
    }

    private mutating func fail(_ node: JSONNode, _ message: String, hint: String? = nil) {
        problems.append(Problem(node: node, message: message, hint: hint))
    }

    mutating func int(_ key: String, default value: Int? = nil, min lower: Int = 1) -> Int {
        guard let node = raw(key) else {
            if let value { return value }
            fail(step, "missing required attribute '\(key)'")
            return max(lower, 1)
        }
        guard case .int(let v) = node.value else {
            fail(node, "'\(key)' must be an integer, found \(node.found)", hint: node.stringValue.map { _ in
                "write a number, or an expression over block parameters such as \"$out * 2\"" })
            return max(lower, 1)
        }
        guard v >= Int64(lower), v <= Limits.maxDimension else {
            fail(node, "'\(key)' = \(v) is out of range (\(lower) to \(Limits.maxDimension))")
            return max(lower, 1)
        }
        return Int(v)
    }

    mutating func signedInt(_ key: String, default value: Int) -> Int {
        guard let node = raw(key) else { return value }
        guard case .int(let v) = node.value, abs(v) <= Limits.maxDimension else {
            fail(node, "'\(key)' must be an integer of magnitude at most \(Limits.maxDimension), found \(node.typeName)")
            return value
        }
        return Int(v)
    }

    /// An integer or a `[h, w]` pair.
    mutating func pair(_ key: String, default value: (Int, Int)?, min lower: Int = 1) -> (Int, Int) {
        guard let node = raw(key) else {
            if let value { return value }
            fail(step, "missing required attribute '\(key)'")
            return (1, 1)
        }
        func check(_ n: JSONNode) -> Int? {
            guard case .int(let v) = n.value else {
                fail(n, "'\(key)' must be an integer or a [h, w] pair of integers, found \(n.found)")
                return nil
            }
            guard v >= Int64(lower), v <= Limits.maxDimension else {
                fail(n, "'\(key)' = \(v) is out of range (\(lower) to \(Limits.maxDimension))")
                return nil
            }
            return Int(v)
        }
        if let items = node.elements {
            guard items.count == 2 else {
                fail(node, "'\(key)' must have 2 elements [h, w], found \(items.count)")
                return (lower, lower)
            }
            return (check(items[0]) ?? lower, check(items[1]) ?? lower)
        }
        let v = check(node) ?? lower
        return (v, v)
    }

    mutating func intList(_ key: String, allowNegative: Bool = false) -> [Int]? {
        guard let node = raw(key) else { return nil }
        guard let items = node.elements, !items.isEmpty, items.count <= Limits.maxRank * 2 else {
            fail(node, "'\(key)' must be a non-empty list of integers, found \(node.typeName)")
            return []
        }
        var out: [Int] = []
        for item in items {
            guard case .int(let v) = item.value, abs(v) <= Limits.maxDimension, allowNegative || v >= 0 else {
                fail(item, "'\(key)' must hold \(allowNegative ? "" : "non-negative ")integers, found \(item.found)")
                return []
            }
            out.append(Int(v))
        }
        return out
    }

    mutating func bool(_ key: String, default value: Bool) -> Bool {
        guard let node = raw(key) else { return value }
        guard case .bool(let b) = node.value else {
            fail(node, "'\(key)' must be true or false, found \(node.found)")
            return value
        }
        return b
    }

    mutating func double(_ key: String, default value: Double?) -> Double? {
        guard let node = raw(key) else { return value }
        switch node.value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default:
            fail(node, "'\(key)' must be a number, found \(node.found)")
            return value
        }
    }

    mutating func choice(_ key: String, _ options: [String], default value: String) -> String {
        guard let node = raw(key) else { return value }
        guard let s = node.stringValue else {
            fail(node, "'\(key)' must be one of \(options.map { "\"\($0)\"" }.joined(separator: ", ")), found \(node.typeName)")
            return value
        }
        guard options.contains(s) else {
            fail(node, "unknown \(key) '\(s)'", hint: NearestName.hint(s, in: options) ?? "one of: " + options.joined(separator: ", "))
            return value
        }
        return s
    }

    /// Builds the op named `name`; unknown attributes and bad values end up in `problems`.
    mutating func build(_ name: String) -> Built? {
        let built: Built?
        switch name {
        case "conv2d":
            let out = int("out")
            let kernel = pair("kernel", default: nil)
            let stride = pair("stride", default: (1, 1))
            let dilation = pair("dilation", default: (1, 1))
            let groups = int("groups", default: 1)
            let bias = bool("bias", default: true)
            var pad = (0, 0)
            if let p = attributes.first(where: { $0.key == "pad" })?.node, p.stringValue == "same" {
                known.append("pad")
                if stride != (1, 1) || kernel.0 % 2 == 0 || kernel.1 % 2 == 0 {
                    fail(p, "pad \"same\" needs stride 1 and an odd kernel")
                }
                pad = (dilation.0 * (kernel.0 - 1) / 2, dilation.1 * (kernel.1 - 1) / 2)
            } else {
                pad = pair("pad", default: (0, 0), min: 0)
            }
            built = .single(.conv2d(Conv2D(out: out, kernel: kernel, stride: stride, pad: pad, dilation: dilation, groups: groups, bias: bias)))
        case "conv_transpose2d":
            built = .single(.convTranspose2d(ConvTranspose2D(
                out: int("out"), kernel: pair("kernel", default: nil), stride: pair("stride", default: (1, 1)),
                pad: pair("pad", default: (0, 0), min: 0), outputPadding: pair("output_padding", default: (0, 0), min: 0),
                dilation: pair("dilation", default: (1, 1)), groups: int("groups", default: 1), bias: bool("bias", default: true))))
        case "linear":
            built = .single(.linear(out: int("out"), bias: bool("bias", default: true)))
        case "geglu":
            built = .single(.geglu(out: int("out")))
        case "matmul":
            built = .single(.matmul(transposeB: bool("transpose_b", default: false)))
        case "batch_norm":
            built = .single(.batchNorm(eps: positive("eps", default: 1e-5)))
        case "group_norm":
            built = .single(.groupNorm(groups: int("groups"), eps: positive("eps", default: 1e-5), affine: bool("affine", default: true)))
        case "layer_norm":
            built = .single(.layerNorm(eps: positive("eps", default: 1e-5), affine: bool("affine", default: true)))
        case "instance_norm":
            built = .single(.instanceNorm(eps: positive("eps", default: 1e-5), affine: bool("affine", default: false)))
        case "relu": built = .single(.unary(.relu))
        case "relu6": built = .single(.unary(.relu6))
        case "silu": built = .single(.unary(.silu))
        case "sigmoid": built = .single(.unary(.sigmoid))
        case "tanh": built = .single(.unary(.tanh))
        case "identity": built = .single(.unary(.identity))
        case "leaky_relu": built = .single(.unary(.leakyRelu(slope: double("slope", default: 0.01) ?? 0.01)))
        case "gelu":
            built = .single(.unary(.gelu(tanhApproximation: choice("approximate", ["none", "tanh"], default: "none") == "tanh")))
        case "clamp":
            let lo = double("min", default: nil)
            let hi = double("max", default: nil)
            if lo == nil && hi == nil { fail(step, "clamp needs 'min', 'max' or both") }
            if let lo, let hi, lo > hi { fail(step, "clamp min \(lo) is greater than max \(hi)") }
            built = .single(.unary(.clamp(min: lo, max: hi)))
        case "scale":
            built = .single(.unary(.scale(factor: double("factor", default: nil) ?? 1, offset: double("offset", default: 0) ?? 0)))
            if attributes.first(where: { $0.key == "factor" }) == nil { fail(step, "missing required attribute 'factor'") }
        case "softmax": built = .single(.softmax(axis: signedInt("axis", default: -1)))
        case "add": built = .single(.binary(.add))
        case "sub": built = .single(.binary(.sub))
        case "mul": built = .single(.binary(.mul))
        case "div": built = .single(.binary(.div))
        case "film": built = .single(.film)
        case "concat": built = .single(.concat(axis: signedInt("axis", default: 1)))
        case "split":
            let axis = int("axis", default: 1, min: 0)
            let sizes = intList("sizes")
            if sizes == nil { fail(step, "missing required attribute 'sizes'") }
            if let sizes, sizes.contains(0) { fail(step, "split sizes must be positive") }
            built = .split(axis: axis, sizes: sizes ?? [1], chunks: nil)
        case "chunk":
            built = .split(axis: int("axis", default: 1, min: 0), sizes: nil, chunks: int("chunks"))
        case "reshape":
            let shape = intList("shape", allowNegative: true)
            if shape == nil { fail(step, "missing required attribute 'shape'") }
            built = .single(.reshape(shape: shape ?? []))
        case "transpose":
            let perm = intList("perm")
            if perm == nil { fail(step, "missing required attribute 'perm'") }
            built = .single(.transpose(perm: perm ?? []))
        case "max_pool2d", "avg_pool2d":
            let kernel = pair("kernel", default: (2, 2))
            built = .single(.pool2d(Pool2D(kind: name == "max_pool2d" ? .max : .average, kernel: kernel,
                                           stride: pair("stride", default: kernel), pad: pair("pad", default: (0, 0), min: 0),
                                           ceilMode: bool("ceil_mode", default: false))))
        case "global_avg_pool": built = .single(.globalPool(.average))
        case "global_max_pool": built = .single(.globalPool(.max))
        case "upsample":
            let mode = Upsample.Mode(rawValue: choice("mode", ["nearest", "bilinear"], default: "nearest")) ?? .nearest
            let align = bool("align_corners", default: false)
            if align && mode == .nearest, let n = attributes.first(where: { $0.key == "align_corners" })?.node {
                fail(n, "align_corners applies to bilinear upsampling only")
            }
            let hasSize = attributes.contains { $0.key == "size" }
            let target: Upsample.Target
            if hasSize {
                if attributes.contains(where: { $0.key == "scale" }) { fail(step, "give either 'scale' or 'size', not both") }
                let s = pair("size", default: nil)
                target = .size(s.0, s.1)
            } else {
                let s = pair("scale", default: (2, 2))
                target = .scale(s.0, s.1)
            }
            built = .single(.upsample(Upsample(mode: mode, target: target, alignCorners: align)))
        case "pixel_shuffle": built = .single(.pixelShuffle(factor: int("factor")))
        case "channel_shuffle": built = .single(.channelShuffle(groups: int("groups")))
        case "pad":
            var pads = [0, 0, 0, 0]
            if let node = attributes.first(where: { $0.key == "pads" })?.node, case .int = node.value {
                let p = int("pads", min: 0)
                pads = [p, p, p, p]
            } else if let list = intList("pads") {
                if list.count == 4 { pads = list } else { fail(step, "'pads' must be an integer or [left, right, top, bottom]") }
            } else {
                fail(step, "missing required attribute 'pads'")
            }
            let mode = Pad.Mode(rawValue: choice("mode", ["zero", "reflect", "replicate"], default: "zero")) ?? .zero
            built = .single(.pad(Pad(left: pads[0], right: pads[1], top: pads[2], bottom: pads[3], mode: mode,
                                     value: double("value", default: 0) ?? 0)))
        case "crop":
            let size = pair("size", default: nil)
            var top: Int?
            var left: Int?
            if let offset = intList("offset") {
                if offset.count == 2 { (top, left) = (offset[0], offset[1]) } else { fail(step, "'offset' must be [top, left]") }
            }
            built = .single(.crop(Crop(height: size.0, width: size.1, top: top, left: left)))
        case "timestep_embedding":
            built = .single(.timestepEmbedding(TimestepEmbedding(
                dim: int("dim"), maxPeriod: positive("max_period", default: 10000),
                flipSinToCos: bool("flip_sin_to_cos", default: true), freqShift: double("freq_shift", default: 0) ?? 0)))
        case "attention":
            let heads = int("heads", default: 1)
            let headDim = attributes.contains { $0.key == "head_dim" } ? int("head_dim") : nil
            if headDim == nil { known.append("head_dim") }
            built = .single(.attention(Attention(heads: heads, headDim: headDim, qkvBias: bool("qkv_bias", default: false),
                                                 outBias: bool("out_bias", default: true))))
        case "lab_to_rgb": built = .single(.labToRGB)
        case "to_tokens": built = .single(.toTokens)
        case "from_tokens": built = .single(.fromTokens)
        default:
            built = nil
        }
        for (key, node) in attributes where !known.contains(key) {
            fail(node, "unknown attribute '\(key)' for op '\(name)'",
                 hint: NearestName.hint(key, in: known) ?? (known.isEmpty ? "'\(name)' takes no attributes" : "valid attributes: " + known.joined(separator: ", ")))
        }
        return built
    }

    private mutating func positive(_ key: String, default value: Double) -> Double {
        let v = double(key, default: value) ?? value
        if !(v > 0) {
            if let node = attributes.first(where: { $0.key == key })?.node { fail(node, "'\(key)' must be positive") }
            return value
        }
        return v
    }
}
