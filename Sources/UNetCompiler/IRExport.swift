import Foundation
import UNetIR

/// The lowered graph as JSON (`unetc ir`), for tools outside Swift: the ONNX oracle reads it.
///
/// Format (version 1): `{"format": "unetc-ir", "version": 1, "name", "inputs": [{name, shape, role}],
/// "outputs": [{name, value}], "nodes": [{name, op, inputs: [value names], shape, attrs: {...},
/// weights: [{name, local, shape, dtype}]}]}`. Attribute names follow graphs/README.md.
public enum IRExport {
    public static func json(_ graph: Graph) -> String {
        var nodes: [[String: Any]] = []
        for node in graph.nodes {
            if case .input = node.op { continue }
            let shapes = node.inputs.map { graph.nodes[$0].shape }
            let weights = node.weightPrefix.map { prefix in
                OpSemantics.weights(of: node.op, inputShapes: shapes, outputShape: node.shape).map {
                    ["name": prefix + "." + $0.name, "local": $0.name, "shape": $0.shape, "dtype": $0.dtype.rawValue] as [String: Any]
                }
            } ?? []
            nodes.append([
                "name": node.name, "op": node.op.name, "inputs": node.inputs.map { graph.nodes[$0].name },
                "shape": node.shape, "attrs": attributes(node.op), "weights": weights,
            ])
        }
        let root: [String: Any] = [
            "format": "unetc-ir", "version": 1, "name": graph.name,
            "inputs": graph.inputs.map { ["name": $0.name, "shape": graph.nodes[$0.node].shape, "role": $0.role ?? NSNull()] as [String: Any] },
            "outputs": graph.outputs.map { ["name": $0.name, "value": graph.nodes[$0.node].name] },
            "nodes": nodes,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func pair(_ p: (Int, Int)) -> [Int] { [p.0, p.1] }

    /// Attributes with every default made explicit, so readers need no knowledge of defaults.
    static func attributes(_ op: Op) -> [String: Any] {
        switch op {
        case .input(let name): return ["name": name]
        case .conv2d(let c):
            return ["out": c.out, "kernel": pair(c.kernel), "stride": pair(c.stride), "pad": pair(c.pad),
                    "dilation": pair(c.dilation), "groups": c.groups, "bias": c.bias]
        case .convTranspose2d(let c):
            return ["out": c.out, "kernel": pair(c.kernel), "stride": pair(c.stride), "pad": pair(c.pad),
                    "output_padding": pair(c.outputPadding), "dilation": pair(c.dilation), "groups": c.groups, "bias": c.bias]
        case .linear(let out, let bias): return ["out": out, "bias": bias]
        case .matmul(let t): return ["transpose_b": t]
        case .batchNorm(let eps): return ["eps": eps]
        case .groupNorm(let g, let eps, let affine): return ["groups": g, "eps": eps, "affine": affine]
        case .layerNorm(let eps, let affine), .instanceNorm(let eps, let affine): return ["eps": eps, "affine": affine]
        case .unary(let u):
            switch u {
            case .leakyRelu(let slope): return ["slope": slope]
            case .gelu(let tanh): return ["approximate": tanh ? "tanh" : "none"]
            case .clamp(let lo, let hi): return ["min": lo ?? NSNull(), "max": hi ?? NSNull()]
            case .scale(let f, let o): return ["factor": f, "offset": o]
            case .identity, .relu, .relu6, .silu, .sigmoid, .tanh: return [:]
            }
        case .softmax(let axis): return ["axis": axis]
        case .binary, .film, .labToRGB, .toTokens, .fromTokens: return [:]
        case .concat(let axis): return ["axis": axis]
        case .slice(let axis, let start, let length): return ["axis": axis, "start": start, "length": length]
        case .reshape(let shape): return ["shape": shape]
        case .transpose(let perm): return ["perm": perm]
        case .pool2d(let p):
            return ["kernel": pair(p.kernel), "stride": pair(p.stride), "pad": pair(p.pad), "ceil_mode": p.ceilMode]
        case .globalPool: return [:]
        case .upsample(let u):
            var a: [String: Any] = ["mode": u.mode.rawValue, "align_corners": u.alignCorners]
            switch u.target {
            case .scale(let h, let w): a["scale"] = [h, w]
            case .size(let h, let w): a["size"] = [h, w]
            }
            return a
        case .pixelShuffle(let f): return ["factor": f]
        case .channelShuffle(let g): return ["groups": g]
        case .pad(let p): return ["pads": [p.left, p.right, p.top, p.bottom], "mode": p.mode.rawValue, "value": p.value]
        case .crop(let c): return ["size": [c.height, c.width], "offset": c.top.map { [$0, c.left ?? 0] } ?? NSNull()]
        case .timestepEmbedding(let t):
            return ["dim": t.dim, "max_period": t.maxPeriod, "flip_sin_to_cos": t.flipSinToCos, "freq_shift": t.freqShift]
        case .attention(let a):
            return ["heads": a.heads, "head_dim": a.headDim ?? NSNull(), "qkv_bias": a.qkvBias, "out_bias": a.outBias]
        case .geglu(let out): return ["out": out]
        case .reorder(let layout): return ["to": layout.rawValue]
        }
    }
}
