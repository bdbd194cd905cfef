import XCTest
@testable import UNetIR

/// One case per operator: the inferred shape, and the rule each operator enforces.
final class ShapeInferenceTests: XCTestCase {
    func shape(_ op: Op, _ inputs: [Shape]) -> Shape? { try? OpSemantics.outputShape(of: op, inputs: inputs) }

    func message(_ op: Op, _ inputs: [Shape]) -> String? {
        do {
            _ = try OpSemantics.outputShape(of: op, inputs: inputs)
            return nil
        } catch {
            return error.message
        }
    }

    func conv(_ out: Int, k: Int, s: Int = 1, p: Int = 0, d: Int = 1, g: Int = 1) -> Op {
        .conv2d(Conv2D(out: out, kernel: (k, k), stride: (s, s), pad: (p, p), dilation: (d, d), groups: g, bias: true))
    }

    func testConvolutions() {
        XCTAssertEqual(shape(conv(8, k: 3, p: 1), [[1, 3, 17, 17]]), [1, 8, 17, 17])
        XCTAssertEqual(shape(conv(8, k: 3, s: 2, p: 1), [[1, 3, 17, 17]]), [1, 8, 9, 9])
        XCTAssertEqual(shape(conv(8, k: 3, s: 2), [[1, 3, 33, 32]]), [1, 8, 16, 15])
        XCTAssertEqual(shape(conv(8, k: 3, p: 2, d: 2), [[1, 3, 10, 10]]), [1, 8, 10, 10])
        XCTAssertEqual(shape(conv(24, k: 3, p: 1, g: 24), [[2, 24, 5, 5]]), [2, 24, 5, 5])
        XCTAssertEqual(shape(conv(4, k: 1), [[1, 3, 1, 1]]), [1, 4, 1, 1])
        XCTAssertNotNil(message(conv(8, k: 3, g: 3), [[1, 6, 8, 8]]))
        XCTAssertNotNil(message(conv(8, k: 5), [[1, 3, 3, 3]]))
        XCTAssertNotNil(message(conv(8, k: 3), [[1, 3, 8]]))
        let up = Op.convTranspose2d(ConvTranspose2D(out: 16, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0),
                                                    dilation: (1, 1), groups: 1, bias: true))
        XCTAssertEqual(shape(up, [[1, 32, 7, 9]]), [1, 16, 14, 18])
        let up3 = Op.convTranspose2d(ConvTranspose2D(out: 4, kernel: (3, 3), stride: (2, 2), pad: (1, 1), outputPadding: (1, 1),
                                                     dilation: (1, 1), groups: 1, bias: false))
        XCTAssertEqual(shape(up3, [[1, 4, 5, 5]]), [1, 4, 10, 10])
    }

    func testDenseAndNorms() {
        XCTAssertEqual(shape(.linear(out: 7, bias: true), [[2, 77, 768]]), [2, 77, 7])
        XCTAssertEqual(shape(.geglu(out: 10), [[1, 5, 4]]), [1, 5, 10])
        XCTAssertEqual(shape(.matmul(transposeB: false), [[2, 1, 3, 4], [5, 4, 6]]), [2, 5, 3, 6])
        XCTAssertEqual(shape(.matmul(transposeB: true), [[3, 4], [6, 4]]), [3, 6])
        XCTAssertNotNil(message(.matmul(transposeB: false), [[3, 4], [5, 6]]))
        XCTAssertEqual(shape(.batchNorm(eps: 1e-5), [[1, 3, 4, 4]]), [1, 3, 4, 4])
        XCTAssertEqual(shape(.groupNorm(groups: 32, eps: 1e-5, affine: true), [[1, 64, 4, 4]]), [1, 64, 4, 4])
        XCTAssertTrue(message(.groupNorm(groups: 32, eps: 1e-5, affine: true), [[1, 48, 4, 4]])?.contains("32 groups do not divide 48") ?? false)
        XCTAssertEqual(shape(.layerNorm(eps: 1e-5, affine: true), [[1, 9, 8]]), [1, 9, 8])
        XCTAssertEqual(shape(.instanceNorm(eps: 1e-5, affine: false), [[1, 2, 3, 3]]), [1, 2, 3, 3])
    }

    func testElementwiseAndBroadcast() {
        XCTAssertEqual(shape(.unary(.gelu(tanhApproximation: true)), [[2, 3]]), [2, 3])
        XCTAssertEqual(shape(.softmax(axis: -1), [[2, 3]]), [2, 3])
        XCTAssertNotNil(message(.softmax(axis: 2), [[2, 3]]))
        XCTAssertEqual(shape(.binary(.add), [[1, 64, 8, 8], [1, 64, 1, 1]]), [1, 64, 8, 8])
        XCTAssertEqual(shape(.binary(.mul), [[4, 1], [3]]), [4, 3])
        XCTAssertTrue(message(.binary(.add), [[1, 64, 8, 8], [1, 32, 8, 8]])?.contains("[1, 64, 8, 8] and [1, 32, 8, 8]") ?? false)
        XCTAssertEqual(shape(.film, [[1, 8, 4, 4], [1, 16]]), [1, 8, 4, 4])
        XCTAssertNotNil(message(.film, [[1, 8, 4, 4], [1, 8]]))
    }

    func testLayoutOps() {
        XCTAssertEqual(shape(.concat(axis: 1), [[1, 3, 4, 4], [1, 5, 4, 4]]), [1, 8, 4, 4])
        XCTAssertTrue(message(.concat(axis: 1), [[1, 3, 4, 4], [1, 5, 8, 8]])?.contains("[1, 3, 4, 4] and [1, 5, 8, 8]") ?? false)
        XCTAssertEqual(shape(.slice(axis: 1, start: 2, length: 3), [[1, 5, 2]]), [1, 3, 2])
        XCTAssertNotNil(message(.slice(axis: 1, start: 3, length: 3), [[1, 5, 2]]))
        XCTAssertEqual(shape(.reshape(shape: [0, -1, 1, 1]), [[2, 12]]), [2, 12, 1, 1])
        XCTAssertNotNil(message(.reshape(shape: [5, -1]), [[2, 12]]))
        XCTAssertNotNil(message(.reshape(shape: [-1, -1]), [[2, 12]]))
        XCTAssertEqual(shape(.transpose(perm: [0, 2, 1]), [[1, 4, 9]]), [1, 9, 4])
        XCTAssertNotNil(message(.transpose(perm: [0, 0, 1]), [[1, 4, 9]]))
        XCTAssertEqual(shape(.toTokens, [[1, 8, 4, 5]]), [1, 20, 8])
        XCTAssertEqual(shape(.fromTokens, [[1, 20, 6], [1, 8, 4, 5]]), [1, 6, 4, 5])
        XCTAssertNotNil(message(.fromTokens, [[1, 21, 6], [1, 8, 4, 5]]))
    }

    func testSpatialOps() {
        let pool = Op.pool2d(Pool2D(kind: .max, kernel: (2, 2), stride: (2, 2), pad: (0, 0), ceilMode: false))
        XCTAssertEqual(shape(pool, [[1, 3, 9, 8]]), [1, 3, 4, 4])
        let ceil = Op.pool2d(Pool2D(kind: .average, kernel: (2, 2), stride: (2, 2), pad: (0, 0), ceilMode: true))
        XCTAssertEqual(shape(ceil, [[1, 3, 9, 8]]), [1, 3, 5, 4])
        XCTAssertEqual(shape(.globalPool(.average), [[1, 3, 9, 8]]), [1, 3, 1, 1])
        XCTAssertEqual(shape(.upsample(Upsample(mode: .bilinear, target: .scale(4, 4), alignCorners: true)), [[1, 3, 5, 6]]), [1, 3, 20, 24])
        XCTAssertEqual(shape(.upsample(Upsample(mode: .nearest, target: .size(7, 9), alignCorners: false)), [[1, 3, 5, 6]]), [1, 3, 7, 9])
        XCTAssertEqual(shape(.pixelShuffle(factor: 4), [[1, 48, 8, 8]]), [1, 3, 32, 32])
        XCTAssertNotNil(message(.pixelShuffle(factor: 4), [[1, 40, 8, 8]]))
        XCTAssertEqual(shape(.channelShuffle(groups: 4), [[1, 8, 2, 2]]), [1, 8, 2, 2])
        XCTAssertNotNil(message(.channelShuffle(groups: 3), [[1, 8, 2, 2]]))
        XCTAssertEqual(shape(.pad(Pad(left: 0, right: 1, top: 2, bottom: 3, mode: .zero, value: 0)), [[1, 1, 4, 4]]), [1, 1, 9, 5])
        XCTAssertNotNil(message(.pad(Pad(left: 4, right: 0, top: 0, bottom: 0, mode: .reflect, value: 0)), [[1, 1, 4, 4]]))
        XCTAssertEqual(shape(.crop(Crop(height: 2, width: 3, top: nil, left: nil)), [[1, 1, 4, 4]]), [1, 1, 2, 3])
        XCTAssertNotNil(message(.crop(Crop(height: 2, width: 3, top: 3, left: 0)), [[1, 1, 4, 4]]))
        XCTAssertEqual(shape(.labToRGB, [[1, 3, 4, 4]]), [1, 3, 4, 4])
        XCTAssertNotNil(message(.labToRGB, [[1, 2, 4, 4]]))
    }

    func testEmbeddingAndAttention() {
        let t = Op.timestepEmbedding(TimestepEmbedding(dim: 128, maxPeriod: 10000, flipSinToCos: true, freqShift: 0))
        XCTAssertEqual(shape(t, [[2]]), [2, 128])
        XCTAssertNotNil(message(t, [[2, 3]]))
        let a = Op.attention(Attention(heads: 8, headDim: nil, qkvBias: false, outBias: true))
        XCTAssertEqual(shape(a, [[1, 64, 16, 16]]), [1, 64, 16, 16])
        XCTAssertEqual(shape(a, [[1, 256, 64], [1, 77, 768]]), [1, 256, 64])
        XCTAssertNotNil(message(a, [[1, 60, 4, 4]]))
        XCTAssertNotNil(message(a, [[1, 256, 64], [2, 77, 768]]))
        let w = OpSemantics.weights(of: a, inputShapes: [[1, 256, 64], [1, 77, 768]], outputShape: [1, 256, 64])
        XCTAssertEqual(w.map(\.name), ["to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias"])
        XCTAssertEqual(w.map(\.shape), [[64, 64], [64, 768], [64, 768], [64, 64], [64]])
        // q and out projections 2*256*64*64 each, k and v 2*77*768*64 each, two products 2*256*77*64 each.
        XCTAssertEqual(OpSemantics.flops(of: a, inputShapes: [[1, 256, 64], [1, 77, 768]], outputShape: [1, 256, 64]),
                       2 * (2 * 256 * 64 * 64 + 2 * 77 * 768 * 64 + 2 * 256 * 77 * 64))
    }

    func testLimitsAreCheckedBeforeAnythingIsBuilt() {
        XCTAssertNotNil(message(.upsample(Upsample(mode: .nearest, target: .scale(4096, 4096), alignCorners: false)), [[1, 64, 4096, 4096]]))
        XCTAssertNil(OpSemantics.elementCount([1 << 20, 1 << 20, 1 << 20]))
        XCTAssertNotNil(message(.binary(.add), [[1, 2], [1, 2], [3]]))
    }

    func testConvFLOPsAndWeights() {
        let op = conv(64, k: 3, p: 1, g: 2)
        XCTAssertEqual(OpSemantics.flops(of: op, inputShapes: [[1, 32, 8, 8]], outputShape: [1, 64, 8, 8]), 2 * 64 * 64 * 16 * 9)
        XCTAssertEqual(OpSemantics.weights(of: op, inputShapes: [[1, 32, 8, 8]], outputShape: [1, 64, 8, 8]).map(\.shape), [[64, 16, 3, 3], [64]])
    }
}
