import UNetSpec

/// A shape rule that an operator's operands break, phrased for the person who wrote the graph.
public struct ShapeError: Error, Sendable {
    public var message: String
    public var hint: String?

    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// Per-operator facts: output shape, weights, FLOPs. One place, so the verifier, the summary and
/// later the runtime agree.
public enum OpSemantics {
    /// The weight of an operator relative to its node's `state_dict` prefix.
    public struct LocalWeight: Sendable {
        public var name: String
        public var shape: Shape
        public var dtype: WeightSpec.DType = .f32
        public var isBuffer = false
        public var isOptional = false
    }

    public static func describe(_ shape: Shape) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// Number of operands the operator takes.
    public static func arity(of op: Op) -> ClosedRange<Int> {
        switch op {
        case .input: 0...0
        case .binary, .film, .matmul, .fromTokens: 2...2
        case .attention: 1...2
        case .concat: 1...Int.max
        case .conv2d, .convTranspose2d, .linear, .batchNorm, .groupNorm, .layerNorm, .instanceNorm, .unary, .softmax,
             .slice, .reshape, .transpose, .pool2d, .globalPool, .upsample, .pixelShuffle, .channelShuffle, .pad, .crop,
             .timestepEmbedding, .geglu, .labToRGB, .toTokens, .reorder:
            1...1
        }
    }

    /// Checked element count; nil when it overflows or exceeds `Limits.maxElements`.
    public static func elementCount(_ shape: Shape) -> Int? {
        var n = 1
        for d in shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o || p > Int(Limits.maxElements) { return nil }
            n = p
        }
        return n
    }

    static func rank(_ shape: Shape, _ expected: Int, _ what: String) throws(ShapeError) {
        if shape.count != expected {
            throw ShapeError("expects a rank-\(expected) \(what), got \(describe(shape))")
        }
    }

    static func spatial(_ size: Int, kernel: Int, stride: Int, pad: Int, dilation: Int, ceil: Bool = false) -> Int {
        let span = size + 2 * pad - dilation * (kernel - 1) - 1
        if span < 0 { return 0 }
        var q = ceil ? (span + stride - 1) / stride : span / stride
        // PyTorch drops a last window that would start in the right padding.
        if ceil && q * stride >= size + pad { q -= 1 }
        return q + 1
    }

    /// Infers the output shape of `op` applied to operands of `inputs` shapes, or says which rule they break.
    public static func outputShape(of op: Op, inputs: [Shape]) throws(ShapeError) -> Shape {
        guard arity(of: op).contains(inputs.count) else {
            let r = arity(of: op)
            let expected = r.lowerBound == r.upperBound ? "\(r.lowerBound)" : r.upperBound == Int.max ? "at least \(r.lowerBound)" : "\(r.lowerBound) or \(r.upperBound)"
            throw ShapeError("takes \(expected) operand(s), got \(inputs.count)")
        }
        let x = inputs.first ?? []
        let shape: Shape
        switch op {
        case .input:
            throw ShapeError("graph inputs have declared shapes")
        case .conv2d(let c):
            try rank(x, 4, "NCHW input")
            let cin = x[1]
            if cin % c.groups != 0 || c.out % c.groups != 0 {
                throw ShapeError("groups \(c.groups) must divide input channels \(cin) and output channels \(c.out)")
            }
            let h = spatial(x[2], kernel: c.kernel.0, stride: c.stride.0, pad: c.pad.0, dilation: c.dilation.0)
            let w = spatial(x[3], kernel: c.kernel.1, stride: c.stride.1, pad: c.pad.1, dilation: c.dilation.1)
            if h < 1 || w < 1 {
                throw ShapeError("kernel \(c.kernel.0)x\(c.kernel.1) (dilation \(c.dilation.0)) does not fit input \(describe(x)) with padding \(c.pad.0)x\(c.pad.1)")
            }
            shape = [x[0], c.out, h, w]
        case .convTranspose2d(let c):
            try rank(x, 4, "NCHW input")
            if x[1] % c.groups != 0 || c.out % c.groups != 0 {
                throw ShapeError("groups \(c.groups) must divide input channels \(x[1]) and output channels \(c.out)")
            }
            if c.outputPadding.0 >= max(c.stride.0, c.dilation.0) || c.outputPadding.1 >= max(c.stride.1, c.dilation.1) {
                throw ShapeError("output_padding must be smaller than stride or dilation")
            }
            let h = (x[2] - 1) * c.stride.0 - 2 * c.pad.0 + c.dilation.0 * (c.kernel.0 - 1) + c.outputPadding.0 + 1
            let w = (x[3] - 1) * c.stride.1 - 2 * c.pad.1 + c.dilation.1 * (c.kernel.1 - 1) + c.outputPadding.1 + 1
            if h < 1 || w < 1 { throw ShapeError("padding leaves no output for input \(describe(x))") }
            shape = [x[0], c.out, h, w]
        case .linear(let out, _):
            guard !x.isEmpty else { throw ShapeError("needs an input of rank at least 1") }
            shape = Array(x.dropLast()) + [out]
        case .geglu(let out):
            guard !x.isEmpty else { throw ShapeError("needs an input of rank at least 1") }
            shape = Array(x.dropLast()) + [out]
        case .matmul(let transposeB):
            let b = inputs[1]
            guard x.count >= 2, b.count >= 2 else {
                throw ShapeError("needs operands of rank at least 2, got \(describe(x)) and \(describe(b))")
            }
            let (m, k) = (x[x.count - 2], x[x.count - 1])
            let (kb, n) = transposeB ? (b[b.count - 1], b[b.count - 2]) : (b[b.count - 2], b[b.count - 1])
            if k != kb {
                throw ShapeError("inner dimensions differ: \(describe(x)) @ \(describe(b))\(transposeB ? "^T" : "") (\(k) vs \(kb))")
            }
            let batch = try broadcast(Array(x.dropLast(2)), Array(b.dropLast(2)))
            shape = batch + [m, n]
        case .batchNorm, .instanceNorm:
            guard x.count >= 2 else { throw ShapeError("needs an input of rank at least 2 (N, C, ...), got \(describe(x))") }
            shape = x
        case .groupNorm(let groups, _, _):
            guard x.count >= 2 else { throw ShapeError("needs an input of rank at least 2 (N, C, ...), got \(describe(x))") }
            if x[1] % groups != 0 {
                throw ShapeError("\(groups) groups do not divide \(x[1]) channels of \(describe(x))")
            }
            shape = x
        case .layerNorm:
            guard !x.isEmpty else { throw ShapeError("needs an input of rank at least 1") }
            shape = x
        case .unary:
            shape = x
        case .softmax(let axis):
            guard axis >= -x.count && axis < x.count else { throw ShapeError("axis \(axis) is out of range for \(describe(x))") }
            shape = x
        case .binary:
            shape = try broadcast(x, inputs[1])
        case .film:
            let e = inputs[1]
            guard x.count >= 2, e.count == 2, e[0] == x[0], e[1] == 2 * x[1] else {
                throw ShapeError("needs x [B, C, ...] and e [B, 2C]; got \(describe(x)) and \(describe(e))")
            }
            shape = x
        case .concat(let axis):
            let a = axis < 0 ? axis + x.count : axis
            guard a >= 0 && a < x.count else { throw ShapeError("axis \(axis) is out of range for \(describe(x))") }
            var out = x
            for other in inputs.dropFirst() {
                let same = other.count == x.count && (0..<x.count).allSatisfy { $0 == a || other[$0] == x[$0] }
                if !same {
                    throw ShapeError("operands differ outside axis \(axis): \(describe(x)) and \(describe(other))")
                }
                out[a] += other[a]
            }
            shape = out
        case .slice(let axis, let start, let length):
            guard axis >= 0 && axis < x.count else { throw ShapeError("axis \(axis) is out of range for \(describe(x))") }
            guard start >= 0, length >= 1, start + length <= x[axis] else {
                throw ShapeError("slice \(start)..<\(start + length) is outside axis \(axis) of \(describe(x))")
            }
            var out = x
            out[axis] = length
            shape = out
        case .reshape(let target):
            shape = try reshape(x, target)
        case .transpose(let perm):
            guard perm.count == x.count, Set(perm) == Set(0..<x.count) else {
                throw ShapeError("perm \(perm) is not a permutation of the \(x.count) axes of \(describe(x))")
            }
            shape = perm.map { x[$0] }
        case .pool2d(let p):
            try rank(x, 4, "NCHW input")
            if p.pad.0 * 2 > p.kernel.0 || p.pad.1 * 2 > p.kernel.1 {
                throw ShapeError("padding must be at most half the kernel")
            }
            let h = spatial(x[2], kernel: p.kernel.0, stride: p.stride.0, pad: p.pad.0, dilation: 1, ceil: p.ceilMode)
            let w = spatial(x[3], kernel: p.kernel.1, stride: p.stride.1, pad: p.pad.1, dilation: 1, ceil: p.ceilMode)
            if h < 1 || w < 1 { throw ShapeError("kernel \(p.kernel.0)x\(p.kernel.1) is larger than input \(describe(x))") }
            shape = [x[0], x[1], h, w]
        case .globalPool:
            try rank(x, 4, "NCHW input")
            shape = [x[0], x[1], 1, 1]
        case .upsample(let u):
            try rank(x, 4, "NCHW input")
            switch u.target {
            case .scale(let sh, let sw): shape = [x[0], x[1], x[2] * sh, x[3] * sw]
            case .size(let h, let w): shape = [x[0], x[1], h, w]
            }
        case .pixelShuffle(let r):
            try rank(x, 4, "NCHW input")
            if x[1] % (r * r) != 0 { throw ShapeError("channels \(x[1]) are not divisible by factor^2 = \(r * r)") }
            shape = [x[0], x[1] / (r * r), x[2] * r, x[3] * r]
        case .reorder(let layout):
            try rank(x, 4, "NCHW input")
            if layout == .blocked16 && x[1] % 16 != 0 { throw ShapeError("\(x[1]) channels do not fill blocks of 16") }
            shape = x
        case .channelShuffle(let g):
            guard x.count >= 2 else { throw ShapeError("needs an input of rank at least 2") }
            if x[1] % g != 0 { throw ShapeError("\(g) groups do not divide \(x[1]) channels") }
            shape = x
        case .pad(let p):
            try rank(x, 4, "NCHW input")
            if p.mode == .reflect && (p.left >= x[3] || p.right >= x[3] || p.top >= x[2] || p.bottom >= x[2]) {
                throw ShapeError("reflect padding must be smaller than the padded dimension of \(describe(x))")
            }
            shape = [x[0], x[1], x[2] + p.top + p.bottom, x[3] + p.left + p.right]
        case .crop(let c):
            try rank(x, 4, "NCHW input")
            let top = c.top ?? (x[2] - c.height) / 2
            let left = c.left ?? (x[3] - c.width) / 2
            if c.height > x[2] || c.width > x[3] || top < 0 || left < 0 || top + c.height > x[2] || left + c.width > x[3] {
                throw ShapeError("crop \(c.height)x\(c.width) at (\(top), \(left)) does not fit in \(describe(x))")
            }
            shape = [x[0], x[1], c.height, c.width]
        case .timestepEmbedding(let t):
            guard x.count == 1 || (x.count == 2 && x[1] == 1) else {
                throw ShapeError("expects timesteps of shape [B] or [B, 1], got \(describe(x))")
            }
            if t.dim % 2 != 0 { throw ShapeError("dim \(t.dim) must be even") }
            if Double(t.dim / 2) - t.freqShift <= 0 {
                throw ShapeError("freq_shift \(t.freqShift) must be smaller than dim / 2 = \(t.dim / 2) (it divides by their difference)")
            }
            shape = [x[0], t.dim]
        case .attention(let a):
            guard x.count == 3 || x.count == 4 else {
                throw ShapeError("expects tokens [B, N, C] or a feature map [B, C, H, W], got \(describe(x))")
            }
            let channels = x.count == 3 ? x[2] : x[1]
            let headDim = a.headDim ?? channels / a.heads
            if a.headDim == nil && channels % a.heads != 0 {
                throw ShapeError("\(a.heads) heads do not divide \(channels) channels; set head_dim")
            }
            if headDim < 1 { throw ShapeError("head_dim must be positive") }
            if inputs.count == 2 {
                let c = inputs[1]
                guard c.count == 3, c[0] == x[0] else {
                    throw ShapeError("context must be [B, M, C] with the batch of \(describe(x)), got \(describe(c))")
                }
            }
            shape = x
        case .labToRGB:
            try rank(x, 4, "NCHW input")
            if x[1] != 3 { throw ShapeError("expects 3 channels (L, a, b), got \(describe(x))") }
            shape = x
        case .toTokens:
            try rank(x, 4, "NCHW input")
            shape = [x[0], x[2] * x[3], x[1]]
        case .fromTokens:
            let like = inputs[1]
            guard x.count == 3, like.count == 4, like[0] == x[0], like[2] * like[3] == x[1] else {
                throw ShapeError("needs tokens [B, H*W, C] and a feature map [B, C', H, W]; got \(describe(x)) and \(describe(like))")
            }
            shape = [x[0], x[2], like[2], like[3]]
        }
        if shape.count > Limits.maxRank { throw ShapeError("result rank \(shape.count) exceeds the limit \(Limits.maxRank)") }
        for d in shape where d < 1 || d > Int(Limits.maxDimension) {
            throw ShapeError("result \(describe(shape)) has a dimension outside 1...\(Limits.maxDimension)")
        }
        if elementCount(shape) == nil {
            throw ShapeError("result \(describe(shape)) has more than \(Limits.maxElements) elements")
        }
        return shape
    }

    /// numpy broadcasting of two shapes.
    public static func broadcast(_ a: Shape, _ b: Shape) throws(ShapeError) -> Shape {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da != db && da != 1 && db != 1 {
                throw ShapeError("shapes \(describe(a)) and \(describe(b)) do not broadcast (axis \(i): \(da) vs \(db))")
            }
            out[i] = max(da, db)
        }
        return out
    }

    static func reshape(_ x: Shape, _ target: [Int]) throws(ShapeError) -> Shape {
        guard let total = elementCount(x) else { throw ShapeError("input too large") }
        var out: [Int] = []
        var inferred: Int?
        for (i, d) in target.enumerated() {
            switch d {
            case 0:
                guard i < x.count else { throw ShapeError("reshape dim \(i) is 0 (copy) but the input \(describe(x)) has no axis \(i)") }
                out.append(x[i])
            case -1:
                if inferred != nil { throw ShapeError("reshape \(target) has more than one -1") }
                inferred = i
                out.append(1)
            case let v where v > 0:
                out.append(v)
            default:
                throw ShapeError("reshape dimension \(d) is invalid (positive, 0 to copy, or -1 to infer)")
            }
        }
        guard let known = elementCount(out) else { throw ShapeError("reshape \(target) is too large") }
        if let i = inferred {
            if known == 0 || total % known != 0 {
                throw ShapeError("cannot reshape \(describe(x)) (\(total) elements) to \(target)")
            }
            out[i] = total / known
        } else if known != total {
            throw ShapeError("cannot reshape \(describe(x)) (\(total) elements) to \(describe(out)) (\(known) elements)")
        }
        return out
    }

    /// Channel count of the last axis (tokens) or axis 1 (NCHW) an attention reads.
    static func attentionDims(_ a: Attention, inputs: [Shape]) -> (tokens: Int, channels: Int, contextTokens: Int, contextChannels: Int, inner: Int, batch: Int) {
        let x = inputs[0]
        let channels = x.count == 3 ? x[2] : x[1]
        let tokens = x.count == 3 ? x[1] : x[2] * x[3]
        let inner = a.heads * (a.headDim ?? channels / a.heads)
        let context = inputs.count == 2 ? inputs[1] : nil
        return (tokens, channels, context?[1] ?? tokens, context?[2] ?? channels, inner, x[0])
    }

    /// Weights of an operator, named relative to its node (PyTorch module attribute names).
    public static func weights(of op: Op, inputShapes: [Shape], outputShape: Shape) -> [LocalWeight] {
        let x = inputShapes.first ?? []
        func affine(_ n: Int) -> [LocalWeight] { [LocalWeight(name: "weight", shape: [n]), LocalWeight(name: "bias", shape: [n])] }
        switch op {
        case .conv2d(let c):
            return [LocalWeight(name: "weight", shape: [c.out, x[1] / c.groups, c.kernel.0, c.kernel.1])]
                + (c.bias ? [LocalWeight(name: "bias", shape: [c.out])] : [])
        case .convTranspose2d(let c):
            return [LocalWeight(name: "weight", shape: [x[1], c.out / c.groups, c.kernel.0, c.kernel.1])]
                + (c.bias ? [LocalWeight(name: "bias", shape: [c.out])] : [])
        case .linear(let out, let bias):
            return [LocalWeight(name: "weight", shape: [out, x[x.count - 1]])] + (bias ? [LocalWeight(name: "bias", shape: [out])] : [])
        case .geglu(let out):
            return [LocalWeight(name: "proj.weight", shape: [2 * out, x[x.count - 1]]), LocalWeight(name: "proj.bias", shape: [2 * out])]
        case .batchNorm:
            let c = x[1]
            return affine(c) + [
                LocalWeight(name: "running_mean", shape: [c], isBuffer: true),
                LocalWeight(name: "running_var", shape: [c], isBuffer: true),
                LocalWeight(name: "num_batches_tracked", shape: [], dtype: .i64, isBuffer: true, isOptional: true),
            ]
        case .groupNorm(_, _, let on), .instanceNorm(_, let on):
            return on ? affine(x[1]) : []
        case .layerNorm(_, let on):
            return on ? affine(x[x.count - 1]) : []
        case .attention(let a):
            let d = attentionDims(a, inputs: inputShapes)
            func projection(_ name: String, _ out: Int, _ inn: Int, _ bias: Bool) -> [LocalWeight] {
                [LocalWeight(name: name + ".weight", shape: [out, inn])] + (bias ? [LocalWeight(name: name + ".bias", shape: [out])] : [])
            }
            return projection("to_q", d.inner, d.channels, a.qkvBias) + projection("to_k", d.inner, d.contextChannels, a.qkvBias)
                + projection("to_v", d.inner, d.contextChannels, a.qkvBias) + projection("to_out.0", d.channels, d.inner, a.outBias)
        case .input, .matmul, .unary, .softmax, .binary, .film, .concat, .slice, .reshape, .transpose, .pool2d, .globalPool,
             .upsample, .pixelShuffle, .channelShuffle, .pad, .crop, .timestepEmbedding, .labToRGB, .toTokens, .fromTokens, .reorder:
            return []
        }
    }

    /// FLOPs at 2 per multiply-add of conv, conv-transpose, linear, matmul, GEGLU's projection and attention products.
    /// Product with saturation at Int.max, so absurd graphs report a huge count instead of trapping.
    static func product(_ factors: Int...) -> Int {
        var p = 1
        for f in factors {
            let (r, o) = p.multipliedReportingOverflow(by: f)
            if o { return Int.max }
            p = r
        }
        return p
    }

    static func sum(_ terms: Int...) -> Int {
        var s = 0
        for t in terms {
            let (r, o) = s.addingReportingOverflow(t)
            if o { return Int.max }
            s = r
        }
        return s
    }

    public static func flops(of op: Op, inputShapes: [Shape], outputShape: Shape) -> Int {
        let x = inputShapes.first ?? []
        let outElements = elementCount(outputShape) ?? 0
        switch op {
        case .conv2d(let c):
            return product(2, outElements, x[1] / c.groups, c.kernel.0, c.kernel.1)
        case .convTranspose2d(let c):
            return product(2, elementCount(x) ?? 0, c.out / c.groups, c.kernel.0, c.kernel.1)
        case .linear(let out, _):
            return product(2, elementCount(x) ?? 0, out)
        case .geglu(let out):
            return product(4, elementCount(x) ?? 0, out)
        case .matmul:
            return product(2, outElements, x[x.count - 1])
        case .attention(let a):
            let d = attentionDims(a, inputs: inputShapes)
            let projections = sum(product(d.tokens, d.channels, d.inner), product(2, d.contextTokens, d.contextChannels, d.inner),
                                  product(d.tokens, d.inner, d.channels))
            let products = product(2, d.tokens, d.contextTokens, d.inner)
            return product(2, d.batch, sum(projections, products))
        case .input, .batchNorm, .groupNorm, .layerNorm, .instanceNorm, .unary, .softmax, .binary, .film, .concat, .slice,
             .reshape, .transpose, .pool2d, .globalPool, .upsample, .pixelShuffle, .channelShuffle, .pad, .crop,
             .timestepEmbedding, .labToRGB, .toTokens, .fromTokens, .reorder:
            return 0
        }
    }
}
