import Foundation

/// A weight tensor held by the compiler: shape and values, immutable.
public final class ConstantTensor: Sendable {
    public let shape: [Int]
    public let values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public var count: Int { values.count }
}

/// The weight tensors of a graph, by `state_dict` name.
public struct WeightSet: Sendable {
    public var tensors: [String: ConstantTensor]
    public init(tensors: [String: ConstantTensor]) { self.tensors = tensors }

    /// Deterministic initialisation used when no weight file is given (`--seed`).
    ///
    /// Each tensor draws from its own SplitMix64 stream seeded by `seed` and a hash of its name,
    /// so adding a layer does not change the others. Convolution and linear weights and biases
    /// are uniform in ±1/sqrt(fan_in) (PyTorch's default bound); norm scales are 1, shifts 0;
    /// running means 0 and variances 1; attention and GEGLU projections like linear layers.
    public static func seeded(for graph: Graph, seed: UInt64) -> WeightSet {
        var tensors: [String: ConstantTensor] = [:]
        for node in graph.nodes {
            guard let prefix = node.weightPrefix else { continue }
            let shapes = node.inputs.map { graph.nodes[$0].shape }
            let isNorm: Bool = switch node.op {
            case .batchNorm, .groupNorm, .layerNorm, .instanceNorm: true
            default: false
            }
            var fanIn = 1
            for w in OpSemantics.weights(of: node.op, inputShapes: shapes, outputShape: node.shape) where w.dtype == .f32 {
                let name = prefix + "." + w.name
                let count = w.shape.reduce(1, *)
                if w.name.hasSuffix("weight") && w.shape.count >= 2 { fanIn = w.shape.dropFirst().reduce(1, *) }
                var values: [Float]
                if isNorm || w.isBuffer {
                    values = [Float](repeating: (w.name == "weight" || w.name == "running_var") ? 1 : 0, count: count)
                } else {
                    var rng = SplitMix64(seed: seed ^ fnv1a(name))
                    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
                    values = (0..<count).map { _ in (rng.nextUnit() * 2 - 1) * bound }
                }
                tensors[name] = ConstantTensor(shape: w.shape, values: values)
            }
        }
        return WeightSet(tensors: tensors)
    }

    /// Checks names and shapes against the graph: missing or mis-shaped tensors are errors, extra ones warnings.
    public func check(against graph: Graph) -> (errors: [String], warnings: [String]) {
        var errors: [String] = []
        let expected = graph.weights
        for w in expected where !w.isOptional {
            guard let t = tensors[w.name] else {
                errors.append("missing weight '\(w.name)' \(OpSemantics.describe(w.shape))")
                continue
            }
            if t.shape != w.shape {
                errors.append("weight '\(w.name)' has shape \(OpSemantics.describe(t.shape)), the graph expects \(OpSemantics.describe(w.shape))")
            }
        }
        let names = Set(expected.map(\.name))
        let extra = tensors.keys.filter { !names.contains($0) }.sorted()
        var warnings: [String] = []
        if !extra.isEmpty {
            warnings.append("\(extra.count) tensor(s) in the weight file are not used by the graph: " + extra.prefix(5).joined(separator: ", ")
                            + (extra.count > 5 ? ", ..." : ""))
        }
        if errors.count > 10 { errors = Array(errors.prefix(10)) + ["... and \(errors.count - 10) more weight errors"] }
        if !errors.isEmpty && !tensors.isEmpty && tensors.keys.allSatisfy({ !names.contains($0) }) {
            errors.insert("none of the file's \(tensors.count) tensors is used by this graph: it looks like weights for another graph "
                          + "(the file has '\(tensors.keys.sorted().first ?? "")', the graph expects names like '\(expected.first?.name ?? "")')", at: 0)
        }
        return (errors, warnings)
    }
}

/// FNV-1a, a string hash that is the same in every process (Swift's `hashValue` is randomly seeded).
public func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}

/// SplitMix64: small, fast, and the same on every platform.
public struct SplitMix64 {
    var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits.
    public mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Standard normal (Box-Muller).
    public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
