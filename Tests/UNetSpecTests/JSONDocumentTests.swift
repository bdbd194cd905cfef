import XCTest
@testable import UNetSpec

final class JSONDocumentTests: XCTestCase {
    func parse(_ text: String) -> Result<JSONNode, DiagnosticList> {
        JSONDocument.parse(Array(text.utf8), file: "t.json")
    }

    func firstError(_ text: String) -> Diagnostic? {
        if case .failure(let list) = parse(text) { return list.items.first }
        return nil
    }

    func testSyntaxErrorHasLineAndColumn() throws {
        let d = try XCTUnwrap(firstError("{\n  \"a\": 1,\n  \"b\": ]\n}"))
        XCTAssertEqual(d.location, SourceLocation(line: 3, column: 8))
        XCTAssertTrue(d.description.hasPrefix("t.json:3:8: error: malformed JSON"), d.description)
    }

    func testTrailingCommaIsRejected() {
        XCTAssertNotNil(firstError("{\"a\": [1, 2,]}"))
    }

    func testIncompleteDocument() throws {
        let d = try XCTUnwrap(firstError("{\"a\": [1, 2"))
        XCTAssertTrue(d.message.contains("unexpected end of file"), d.message)
    }

    func testEmptyAndBinaryAndInvalidUTF8() throws {
        XCTAssertTrue(try XCTUnwrap(firstError("  \n ")).message.contains("empty file"))
        let nul = JSONDocument.parse([0x7B, 0x00, 0x7D], file: "b")
        guard case .failure(let l1) = nul else { return XCTFail("NUL accepted") }
        XCTAssertTrue(l1.items[0].message.contains("binary"))
        let latin1 = JSONDocument.parse(Array("{\"a\": \"".utf8) + [0xE9] + Array("\"}".utf8), file: "c")
        guard case .failure(let l2) = latin1 else { return XCTFail("invalid UTF-8 accepted") }
        XCTAssertEqual(l2.items[0].location, SourceLocation(line: 1, column: 8))
    }

    func testNestingLimit() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertTrue(try XCTUnwrap(firstError(deep)).message.contains("nesting deeper"))
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        if case .failure(let l) = parse(ok) { XCTFail("60 levels rejected: \(l)") }
    }

    func testDuplicateKeysAreErrorsWithBothPositions() throws {
        let d = try XCTUnwrap(firstError("{\n \"a\": 1,\n \"a\": 2\n}"))
        XCTAssertTrue(d.message.contains("duplicate key 'a' (first defined at 2:2)"), d.message)
        XCTAssertEqual(d.location, SourceLocation(line: 3, column: 2))
    }

    func testNumbersOutOfRange() throws {
        XCTAssertTrue(try XCTUnwrap(firstError("{\"a\": 1e999999}")).message.contains("out of range"))
        XCTAssertTrue(try XCTUnwrap(firstError("{\"a\": 99999999999999999999}")).message.contains("out of range"))
    }

    func testValuesCarryPathsAndPositionsInKeyOrder() throws {
        let root = try parse("{\"z\": 1,\n \"a\": [true, {\"k\": \"v\"}], \"odd key\": 2.5}").get()
        XCTAssertEqual(root.members?.map(\.key), ["z", "a", "odd key"])
        let k = try XCTUnwrap(root["a"]?.elements?[1]["k"])
        XCTAssertEqual(k.path, "$.a[1].k")
        XCTAssertEqual(k.stringValue, "v")
        XCTAssertEqual(k.location, SourceLocation(line: 2, column: 20))
        XCTAssertEqual(root["odd key"]?.path, "$[\"odd key\"]")
        guard case .double(2.5)? = root["odd key"]?.value else { return XCTFail("number") }
        guard case .int(1)? = root["z"]?.value else { return XCTFail("int") }
    }

    func testUnicodeColumnsCountScalars() throws {
        let root = try parse("{\"é\": \"ü\", \"b\": 1}").get()
        XCTAssertEqual(root["b"]?.location, SourceLocation(line: 1, column: 17))
    }
}
