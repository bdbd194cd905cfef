/// Every operator the IR knows, with its attributes. `switch`es over `Op` are exhaustive, so adding
/// an operator makes the compiler list every place that must handle it.
public enum Op: Sendable, Equatable, Codable {
    case input(name: String)
    case conv2d(Conv2D)
    case convTranspose2d(ConvTranspose2D)
    case linear(out: Int, bias: Bool)
    case matmul(transposeB: Bool)
    case batchNorm(eps: Double)
    case groupNorm(groups: Int, eps: Double, affine: Bool)
    case layerNorm(eps: Double, affine: Bool)
    case instanceNorm(eps: Double, affine: Bool)
    case unary(UnaryOp)
    case softmax(axis: Int)
    case binary(BinaryOp)
    /// `x * (1 + scale) + shift` with `scale, shift = chunk(e, 2, dim: 1)` broadcast over space.
    case film
    case concat(axis: Int)
    case slice(axis: Int, start: Int, length: Int)
    /// Target shape as written: `0` copies the input dimension, one `-1` is inferred.
    case reshape(shape: [Int])
    case transpose(perm: [Int])
    case pool2d(Pool2D)
    case globalPool(PoolKind)
    case upsample(Upsample)
    case pixelShuffle(factor: Int)
    case channelShuffle(groups: Int)
    case pad(Pad)
    case crop(Crop)
    case timestepEmbedding(TimestepEmbedding)
    case attention(Attention)
    case geglu(out: Int)
    case labToRGB
    /// `[B, C, H, W]` to `[B, H*W, C]`.
    case toTokens
    /// `[B, N, C]` back to `[B, C, H, W]`, with H and W taken from the second operand.
    case fromTokens
    /// The same `[N, C, H, W]` values rewritten in memory layout `to`. Only the compiler inserts it
    /// (at the edges of a channel-blocked region); graph files cannot name it.
    case reorder(to: ActivationLayout)
}

/// How a 4-D activation `[N, C, H, W]` lies in memory.
public enum ActivationLayout: String, Sendable, Equatable, Codable {
    /// NCHW: each channel's plane contiguous.
    case plain = "nchw"
    /// NCHW16c: channels in blocks of 16, each block `[H, W, 16]`, so a pixel's 16 channels are one
    /// 64-byte vector. Needs a channel count that is a multiple of 16; block `b` then starts where
    /// channel `16 b` starts in the plain layout, so channel slices (zero-copy concatenation) keep
    /// their offsets.
    case blocked16 = "nchw16c"
}

public struct Conv2D: Sendable, Equatable {
    public var out: Int
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    public var pad: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int
    public var bias: Bool

    public init(out: Int, kernel: (Int, Int), stride: (Int, Int), pad: (Int, Int), dilation: (Int, Int), groups: Int, bias: Bool) {
        (self.out, self.kernel, self.stride, self.pad, self.dilation, self.groups, self.bias) = (out, kernel, stride, pad, dilation, groups, bias)
    }

    public static func == (a: Conv2D, b: Conv2D) -> Bool {
        a.out == b.out && a.kernel == b.kernel && a.stride == b.stride && a.pad == b.pad
            && a.dilation == b.dilation && a.groups == b.groups && a.bias == b.bias
    }

    /// 1x1, stride 1, no padding: each output pixel reads the same pixel of its input channels,
    /// so kernels can take the input's planes as they lie (dilation does not matter).
    public var isPointwise: Bool { kernel == (1, 1) && stride == (1, 1) && pad == (0, 0) }

    /// Pixels from which a pointwise convolution to at most 4 channels (a segmentation head) runs
    /// the runtime's few-outputs kernel rather than a GEMM.
    public static let fewOutputsMinimumPixels = 1024

    /// Whether this is such a head on a map of `pixels`: one group, at most 4 outputs.
    public func isFewOutputsHead(pixels: Int) -> Bool {
        isPointwise && groups == 1 && out <= 4 && pixels >= Conv2D.fewOutputsMinimumPixels
    }
}

public struct ConvTranspose2D: Sendable, Equatable {
    public var out: Int
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    public var pad: (Int, Int)
    public var outputPadding: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int
    public var bias: Bool

    public static func == (a: ConvTranspose2D, b: ConvTranspose2D) -> Bool {
        a.out == b.out && a.kernel == b.kernel && a.stride == b.stride && a.pad == b.pad
            && a.outputPadding == b.outputPadding && a.dilation == b.dilation && a.groups == b.groups && a.bias == b.bias
    }
}

public enum UnaryOp: Sendable, Equatable, Codable {
    case identity
    case relu
    case relu6
    case leakyRelu(slope: Double)
    case silu
    case gelu(tanhApproximation: Bool)
    case sigmoid
    case tanh
    case clamp(min: Double?, max: Double?)
    /// `x * factor + offset`.
    case scale(factor: Double, offset: Double)
}

public enum BinaryOp: String, Sendable, Equatable, Codable {
    case add, sub, mul, div
}

public enum PoolKind: String, Sendable, Equatable, Codable {
    case max, average
}

public struct Pool2D: Sendable, Equatable {
    public var kind: PoolKind
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    public var pad: (Int, Int)
    public var ceilMode: Bool

    public static func == (a: Pool2D, b: Pool2D) -> Bool {
        a.kind == b.kind && a.kernel == b.kernel && a.stride == b.stride && a.pad == b.pad && a.ceilMode == b.ceilMode
    }
}

public struct Upsample: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Equatable, Codable { case nearest, bilinear }
    public enum Target: Sendable, Equatable, Codable {
        case scale(Int, Int)
        case size(Int, Int)
    }
    public var mode: Mode
    public var target: Target
    public var alignCorners: Bool
}

public struct Pad: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Equatable, Codable { case zero, reflect, replicate }
    public var left: Int, right: Int, top: Int, bottom: Int
    public var mode: Mode
    public var value: Double
}

public struct Crop: Sendable, Equatable, Codable {
    public var height: Int, width: Int
    /// nil: centred.
    public var top: Int?, left: Int?
}

public struct TimestepEmbedding: Sendable, Equatable, Codable {
    public var dim: Int
    public var maxPeriod: Double
    public var flipSinToCos: Bool
    public var freqShift: Double
}

public struct Attention: Sendable, Equatable, Codable {
    public var heads: Int
    /// nil: channels / heads.
    public var headDim: Int?
    public var qkvBias: Bool
    public var outBias: Bool
}

extension Op {
    /// The operator's name as written in graph files.
    public var name: String {
        switch self {
        case .input: "input"
        case .conv2d: "conv2d"
        case .convTranspose2d: "conv_transpose2d"
        case .linear: "linear"
        case .matmul: "matmul"
        case .batchNorm: "batch_norm"
        case .groupNorm: "group_norm"
        case .layerNorm: "layer_norm"
        case .instanceNorm: "instance_norm"
        case .unary(let u):
            switch u {
            case .identity: "identity"
            case .relu: "relu"
            case .relu6: "relu6"
            case .leakyRelu: "leaky_relu"
            case .silu: "silu"
            case .gelu: "gelu"
            case .sigmoid: "sigmoid"
            case .tanh: "tanh"
            case .clamp: "clamp"
            case .scale: "scale"
            }
        case .softmax: "softmax"
        case .binary(let b): b.rawValue
        case .film: "film"
        case .concat: "concat"
        case .slice: "slice"
        case .reshape: "reshape"
        case .transpose: "transpose"
        case .pool2d(let p): p.kind == .max ? "max_pool2d" : "avg_pool2d"
        case .globalPool(let k): k == .max ? "global_max_pool" : "global_avg_pool"
        case .upsample: "upsample"
        case .pixelShuffle: "pixel_shuffle"
        case .channelShuffle: "channel_shuffle"
        case .pad: "pad"
        case .crop: "crop"
        case .timestepEmbedding: "timestep_embedding"
        case .attention: "attention"
        case .geglu: "geglu"
        case .labToRGB: "lab_to_rgb"
        case .toTokens: "to_tokens"
        case .fromTokens: "from_tokens"
        case .reorder: "reorder"
        }
    }
}

/// Tuples are not Codable: the structs holding (h, w) pairs encode them as two-element arrays.
private func encodePair(_ p: (Int, Int)) -> [Int] { [p.0, p.1] }

private func decodePair(_ a: [Int], _ decoder: Decoder) throws -> (Int, Int) {
    guard a.count == 2 else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected an (h, w) pair")) }
    return (a[0], a[1])
}

extension Conv2D: Codable {
    enum CodingKeys: String, CodingKey { case out, kernel, stride, pad, dilation, groups, bias }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(out: try c.decode(Int.self, forKey: .out), kernel: try decodePair(c.decode([Int].self, forKey: .kernel), decoder),
                  stride: try decodePair(c.decode([Int].self, forKey: .stride), decoder), pad: try decodePair(c.decode([Int].self, forKey: .pad), decoder),
                  dilation: try decodePair(c.decode([Int].self, forKey: .dilation), decoder), groups: try c.decode(Int.self, forKey: .groups),
                  bias: try c.decode(Bool.self, forKey: .bias))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(out, forKey: .out)
        try c.encode(encodePair(kernel), forKey: .kernel)
        try c.encode(encodePair(stride), forKey: .stride)
        try c.encode(encodePair(pad), forKey: .pad)
        try c.encode(encodePair(dilation), forKey: .dilation)
        try c.encode(groups, forKey: .groups)
        try c.encode(bias, forKey: .bias)
    }
}

extension ConvTranspose2D: Codable {
    enum CodingKeys: String, CodingKey { case out, kernel, stride, pad, outputPadding, dilation, groups, bias }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(out: try c.decode(Int.self, forKey: .out), kernel: try decodePair(c.decode([Int].self, forKey: .kernel), decoder),
                  stride: try decodePair(c.decode([Int].self, forKey: .stride), decoder), pad: try decodePair(c.decode([Int].self, forKey: .pad), decoder),
                  outputPadding: try decodePair(c.decode([Int].self, forKey: .outputPadding), decoder),
                  dilation: try decodePair(c.decode([Int].self, forKey: .dilation), decoder), groups: try c.decode(Int.self, forKey: .groups),
                  bias: try c.decode(Bool.self, forKey: .bias))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(out, forKey: .out)
        try c.encode(encodePair(kernel), forKey: .kernel)
        try c.encode(encodePair(stride), forKey: .stride)
        try c.encode(encodePair(pad), forKey: .pad)
        try c.encode(encodePair(outputPadding), forKey: .outputPadding)
        try c.encode(encodePair(dilation), forKey: .dilation)
        try c.encode(groups, forKey: .groups)
        try c.encode(bias, forKey: .bias)
    }
}

extension Pool2D: Codable {
    enum CodingKeys: String, CodingKey { case kind, kernel, stride, pad, ceilMode }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kind: try c.decode(PoolKind.self, forKey: .kind), kernel: try decodePair(c.decode([Int].self, forKey: .kernel), decoder),
                  stride: try decodePair(c.decode([Int].self, forKey: .stride), decoder), pad: try decodePair(c.decode([Int].self, forKey: .pad), decoder),
                  ceilMode: try c.decode(Bool.self, forKey: .ceilMode))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(encodePair(kernel), forKey: .kernel)
        try c.encode(encodePair(stride), forKey: .stride)
        try c.encode(encodePair(pad), forKey: .pad)
        try c.encode(ceilMode, forKey: .ceilMode)
    }
}
