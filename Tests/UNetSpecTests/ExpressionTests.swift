import XCTest
@testable import UNetSpec

final class ExpressionTests: XCTestCase {
    let params: [String: JSONNode] = [
        "out": JSONNode(value: .int(64), path: "$", location: nil),
        "in": JSONNode(value: .int(32), path: "$", location: nil),
        "mode": JSONNode(value: .string("bilinear"), path: "$", location: nil),
    ]

    func eval(_ s: String) -> ParamExpression.Value? {
        try? ParamExpression.evaluate(s, parameters: params).get()
    }

    func testArithmeticAndPrecedence() {
        XCTAssertEqual(eval("$out * 4"), .int(256))
        XCTAssertEqual(eval("($in + $out) / 2"), .int(48))
        XCTAssertEqual(eval("$in + $out * 2 - 1"), .int(159))
        XCTAssertEqual(eval("$out % 5"), .int(4))
        XCTAssertEqual(eval("-$in + 1"), .int(-31))
    }

    func testComparisonsAndLogic() {
        XCTAssertEqual(eval("$in != $out"), .bool(true))
        XCTAssertEqual(eval("$in <= 32 && $out >= 64"), .bool(true))
        XCTAssertEqual(eval("!($in == 32) || $out < 10"), .bool(false))
    }

    func testErrorsAreReportedNotTrapped() {
        for bad in ["$out / 0", "$out % 0", "$ot * 2", "$out *", "(1 + 2", "9223372036854775807 + 1", "$out + true", "$mode + 1", "1 $"] {
            if case .success(let v) = ParamExpression.evaluate(bad, parameters: params) { XCTFail("\(bad) gave \(v)") }
        }
        guard case .failure(let f) = ParamExpression.evaluate("$ot * 2", parameters: params) else { return XCTFail() }
        XCTAssertEqual(f.hint, "did you mean '$out'?")
    }

    func testWholeParameterSubstitutionKeepsType() throws {
        let node = JSONNode(value: .string("$mode"), path: "$.x", location: SourceLocation(line: 3, column: 4))
        let r = try ParamExpression.resolve(node, parameters: params).get()
        XCTAssertEqual(r.stringValue, "bilinear")
        XCTAssertEqual(r.path, "$.x")
        let list = JSONNode(value: .array([JSONNode(value: .string("$out"), path: "$[0]", location: nil),
                                           JSONNode(value: .string("$in*2"), path: "$[1]", location: nil)]), path: "$", location: nil)
        let resolved = try ParamExpression.resolve(list, parameters: params).get()
        guard case .int(64)? = resolved.elements?[0].value, case .int(64)? = resolved.elements?[1].value else {
            return XCTFail("\(resolved)")
        }
    }

    func testDeepNestingIsBounded() {
        let deep = String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200)
        guard case .failure = ParamExpression.evaluate(deep, parameters: params) else { return XCTFail("accepted") }
    }

    func testNearestName() {
        XCTAssertEqual(NearestName.find("conv2", in: ["conv2d", "linear"]), "conv2d")
        XCTAssertEqual(NearestName.find("bacth_norm", in: ["batch_norm", "group_norm"]), "batch_norm")
        XCTAssertNil(NearestName.find("zzzzzz", in: ["conv2d", "linear"]))
    }
}
