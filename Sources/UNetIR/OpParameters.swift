import UNetSpec

extension Op {
    /// Why the operator's own attributes are out of range, or nil when they are fine.
    ///
    /// Graph files get these checks attribute by attribute in `OpBuilder`, with source positions;
    /// this is for operators decoded from elsewhere (plan files), so that shape inference and the
    /// kernels never see a zero stride, a negative kernel or a value whose arithmetic overflows.
    public var parameterProblem: String? {
        let limit = Int(Limits.maxDimension)
        var problems: [String] = []
        func check(_ what: String, _ v: Int, min: Int) {
            if v < min || v > limit { problems.append("\(what) = \(v) is outside \(min)...\(limit)") }
        }
        func check(_ what: String, _ pair: (Int, Int), min: Int) {
            check(what, pair.0, min: min)
            check(what, pair.1, min: min)
        }
        func checkAxis(_ axis: Int) { check("axis", axis, min: -Limits.maxRank) }
        switch self {
        case .input, .matmul, .batchNorm, .layerNorm, .instanceNorm, .unary, .binary, .film, .globalPool, .labToRGB, .toTokens, .fromTokens, .reorder:
            break
        case .conv2d(let c):
            check("out", c.out, min: 1); check("kernel", c.kernel, min: 1); check("stride", c.stride, min: 1)
            check("pad", c.pad, min: 0); check("dilation", c.dilation, min: 1); check("groups", c.groups, min: 1)
        case .convTranspose2d(let c):
            check("out", c.out, min: 1); check("kernel", c.kernel, min: 1); check("stride", c.stride, min: 1)
            check("pad", c.pad, min: 0); check("output_padding", c.outputPadding, min: 0); check("dilation", c.dilation, min: 1)
            check("groups", c.groups, min: 1)
        case .linear(let out, _), .geglu(let out): check("out", out, min: 1)
        case .groupNorm(let groups, _, _): check("groups", groups, min: 1)
        case .softmax(let axis), .concat(let axis): checkAxis(axis)
        case .slice(let axis, let start, let length):
            checkAxis(axis); check("start", start, min: 0); check("length", length, min: 1)
        case .reshape(let shape):
            if shape.count > Limits.maxRank { problems.append("shape has rank \(shape.count)") }
            for d in shape { check("shape entry", d, min: -1) }
        case .transpose(let perm):
            if perm.count > Limits.maxRank { problems.append("perm has \(perm.count) axes") }
            for a in perm { checkAxis(a) }
        case .pool2d(let p):
            check("kernel", p.kernel, min: 1); check("stride", p.stride, min: 1); check("pad", p.pad, min: 0)
        case .upsample(let u):
            switch u.target {
            case .scale(let h, let w), .size(let h, let w): check("size", (h, w), min: 1)
            }
        case .pixelShuffle(let factor): check("factor", factor, min: 1)
        case .channelShuffle(let groups): check("groups", groups, min: 1)
        case .pad(let p):
            for v in [p.left, p.right, p.top, p.bottom] { check("padding", v, min: 0) }
        case .crop(let c):
            check("size", (c.height, c.width), min: 1)
            if let top = c.top { check("top", top, min: 0) }
            if let left = c.left { check("left", left, min: 0) }
        case .timestepEmbedding(let t): check("dim", t.dim, min: 1)
        case .attention(let a):
            check("heads", a.heads, min: 1)
            if let d = a.headDim { check("head_dim", d, min: 1) }
        }
        return problems.isEmpty ? nil : "\(name): " + problems.joined(separator: ", ")
    }
}
