import Foundation
import XCTest
@testable import UNetIR
@testable import UNetRuntime

/// The vector SiLU (the AVX-512 or AVX2 build's exponential, whichever the CPU or UNETC_ISA picks) against `x * sigmoid(x)` from libm, over the whole float range that matters.
final class ActivationKernelTests: XCTestCase {
    func testSiLUMatchesLibm() {
        var values: [Float] = stride(from: -104, through: 104, by: 0.0137).map { Float($0) }
        values += [0, -0, 1e-30, -1e-30, 88.7, -88.7, 1000, -1000, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        // An odd count, so the last partial vector is exercised.
        if values.count % 16 == 0 { values.append(0.5) }
        var row = values
        row.withUnsafeMutableBufferPointer { EpilogueKernel.unary(.silu, $0.baseAddress!, 0..<values.count) }
        var worst: Double = 0
        for (x, y) in zip(values, row) {
            let reference = Double(x) / (1 + Foundation.exp(-Double(x)))
            let error = abs(Double(y) - reference) / max(abs(reference), 1e-30)
            // Below 1e-30 in magnitude the result only has to be as tiny as the reference.
            if abs(reference) > 1e-30 { worst = max(worst, error) } else { XCTAssertLessThan(abs(y), 1e-30, "silu(\(x)) = \(y)") }
            XCTAssertFalse(y.isNaN, "silu(\(x)) is NaN")
        }
        XCTAssertLessThan(worst, 1e-6, "worst relative error \(worst)")
    }

    func testReLUAndReLU6KeepNaNAndClampEverythingElse() {
        let values: [Float] = [-.infinity, -7, -0.5, -0, 0, 0.25, 5.99, 6, 6.01, 1e30, .infinity, .nan] + (0..<21).map { Float($0) * 0.7 - 4 }
        for (op, upper) in [(UnaryOp.relu, Float.infinity), (.relu6, 6)] {
            // Offsets 0 and 3: full vectors and a misaligned tail.
            for offset in [0, 3] {
                var row = values
                row.withUnsafeMutableBufferPointer { EpilogueKernel.unary(op, $0.baseAddress!, offset..<values.count) }
                for (i, (x, y)) in zip(values, row).enumerated() {
                    if i < offset { XCTAssertEqual(y.bitPattern, x.bitPattern); continue }
                    if x.isNaN { XCTAssertTrue(y.isNaN, "\(op)(nan)"); continue }
                    XCTAssertEqual(y, min(max(x, 0), upper), "\(op)(\(x))")
                }
            }
        }
    }
}
