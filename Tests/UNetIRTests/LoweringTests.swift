import Foundation
import XCTest
import UNetCompiler
import UNetSpec
@testable import UNetIR

final class LoweringTests: XCTestCase {
    func lower(_ text: String) -> Result<Graph, DiagnosticList> {
        GraphLoader.load(bytes: Array(text.utf8), file: "t.json")
    }

    func graph(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Graph {
        switch lower(text) {
        case .success(let g): return g
        case .failure(let d):
            XCTFail(d.report(), file: file, line: line)
            throw d
        }
    }

    func errors(_ text: String) -> [Diagnostic] {
        if case .failure(let d) = lower(text) { return d.items }
        XCTFail("accepted")
        return []
    }

    func node(_ g: Graph, _ name: String) -> Node? { g.nodes.first { $0.name == name } }

    let convBlock = """
      "blocks": { "C": { "params": {"out": null, "k": 3}, "body": [
        { "name": "conv", "op": "conv2d", "out": "$out", "kernel": "$k", "pad": "$k / 2" }, { "op": "relu" } ] } }
    """

    func unet(decoders: String, encoders: String? = nil, size: Int = 16) -> String {
        """
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 3, \(size), \(size)] }, \(convBlock),
          "unet": { "input": "x",
            "encoders": \(encoders ?? #"[ { "block": "C", "out": 4, "down": "max_pool2d" }, { "block": "C", "out": 8, "down": "max_pool2d" } ]"#),
            "connector": { "block": "C", "out": 16 },
            "decoders": \(decoders),
            "head": [ { "name": "head", "op": "conv2d", "out": 2, "kernel": 1 } ] },
          "outputs": { "y": "head" } }
        """
    }

    func testSkipsPairLastInFirstOut() throws {
        let g = try graph(unet(decoders: """
          [ { "up": { "op": "upsample" }, "block": "C", "out": 8 }, { "up": { "op": "upsample" }, "block": "C", "out": 4 } ]
        """))
        let merge0 = try XCTUnwrap(node(g, "decoders.0.merge"))
        XCTAssertEqual(merge0.inputs.map { g.nodes[$0].name }, ["decoders.0.up", "encoders.1.relu_1"])
        XCTAssertEqual(merge0.shape, [1, 24, 8, 8])
        let merge1 = try XCTUnwrap(node(g, "decoders.1.merge"))
        XCTAssertEqual(merge1.inputs.map { g.nodes[$0].name }, ["decoders.1.up", "encoders.0.relu_1"])
        XCTAssertEqual(g.outputs.first.map { g.nodes[$0.node].shape }, [1, 2, 16, 16])
        XCTAssertEqual(Set(g.weights.map(\.name)), [
            "encoders.0.conv.weight", "encoders.0.conv.bias", "encoders.1.conv.weight", "encoders.1.conv.bias",
            "connector.conv.weight", "connector.conv.bias", "decoders.0.conv.weight", "decoders.0.conv.bias",
            "decoders.1.conv.weight", "decoders.1.conv.bias", "head.weight", "head.bias"])
    }

    func testNamedDroppedAndAddedSkips() throws {
        let g = try graph(unet(decoders: """
          [ { "up": { "op": "upsample" }, "skip": null, "block": "C", "out": 4 },
            { "up": { "op": "upsample" }, "merge": "add", "skip": "first", "block": "C", "out": 4 } ]
        """, encoders: #"[ { "block": "C", "out": 4, "down": "max_pool2d", "skip": "first" }, { "block": "C", "out": 8, "down": "max_pool2d" } ]"#))
        XCTAssertNil(node(g, "decoders.0.merge"))
        let add = try XCTUnwrap(node(g, "decoders.1.merge"))
        XCTAssertEqual(add.op, .binary(.add))
        XCTAssertEqual(add.inputs.map { g.nodes[$0].name }, ["decoders.1.up", "encoders.0.relu_1"])
    }

    func testDanglingAndMissingSkips() {
        let dangling = errors(unet(decoders: #"[ { "up": { "op": "upsample" }, "block": "C", "out": 8 } ]"#))
        XCTAssertTrue(dangling.contains { $0.message.contains("skip from encoders.0 [1, 4, 16, 16] is never consumed") }, "\(dangling)")
        let missing = errors(unet(decoders: """
          [ { "up": { "op": "upsample" }, "block": "C", "out": 8 }, { "up": { "op": "upsample" }, "block": "C", "out": 4 },
            { "up": { "op": "upsample" }, "block": "C", "out": 4 } ]
        """))
        XCTAssertTrue(missing.contains { $0.message.contains("decoders.2 needs a skip") }, "\(missing)")
    }

    func testIndivisibleSizeNamesLevelAndSuggestsSizes() throws {
        let d = errors(unet(decoders: """
          [ { "up": { "op": "upsample" }, "block": "C", "out": 8 }, { "up": { "op": "upsample" }, "block": "C", "out": 4 } ]
        """, size: 18))
        XCTAssertEqual(d.count, 1, "\(d)")
        let first = try XCTUnwrap(d.first)
        XCTAssertTrue(first.message.contains("encoders.1: spatial size 9x9 does not divide"), first.message)
        XCTAssertTrue(first.hint?.contains("use height 16 or 20") ?? false, first.hint ?? "")
    }

    func testWhenDefaultsDollarInAndConditioningInputs() throws {
        let g = try graph("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 8, 4, 4], "t": {"shape": [1], "role": "timestep"} },
          "blocks": { "Res": { "params": {"out": null, "groups": 2}, "inputs": ["x", "temb"], "body": [
              { "name": "norm", "op": "group_norm", "groups": "$groups" },
              { "name": "conv", "op": "conv2d", "out": "$out", "kernel": 3, "pad": 1 },
              { "name": "proj", "op": "linear", "in": "temb", "out": "$out" },
              { "name": "p4", "op": "reshape", "shape": [0, -1, 1, 1] },
              { "name": "h", "op": "add", "in": ["conv", "p4"] },
              { "name": "shortcut", "op": "conv2d", "in": "x", "out": "$out", "kernel": 1, "when": "$in != $out" },
              { "op": "add", "in": ["h", "shortcut"] } ] } },
          "nodes": [ { "op": "timestep_embedding", "in": "t", "dim": 8 }, { "name": "temb", "op": "linear", "out": 16 } ],
          "unet": { "input": "x", "connector": { "steps": [
              { "name": "a", "block": "Res", "out": 8 }, { "name": "b", "block": "Res", "out": 16 } ] } },
          "outputs": { "y": "unet" } }
        """)
        XCTAssertNil(node(g, "connector.a.shortcut"))
        XCTAssertNotNil(node(g, "connector.b.shortcut"))
        XCTAssertEqual(node(g, "connector.a.add_6")?.inputs.map { g.nodes[$0].name }, ["connector.a.h", "x"])
        XCTAssertEqual(node(g, "connector.a.proj")?.inputs.map { g.nodes[$0].name }, ["temb"])
        XCTAssertEqual(g.outputs.first.map { g.nodes[$0.node].shape }, [1, 16, 4, 4])
        XCTAssertTrue(g.weights.contains { $0.name == "connector.b.shortcut.weight" && $0.shape == [16, 8, 1, 1] })
        XCTAssertTrue(g.weights.contains { $0.name == "nodes.0.weight" } == false)
        XCTAssertTrue(g.weights.contains { $0.name == "temb.weight" && $0.shape == [16, 8] })
    }

    func testSplitOutputsAndForwardReferences() throws {
        let g = try graph("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 6, 2, 2] },
          "nodes": [ { "name": "y", "op": "mul", "in": ["s[0]", "s[1]"] },
                     { "name": "s", "op": "split", "in": "x", "sizes": [3, 3] } ],
          "outputs": { "y": "y", "rest": "s[1]" } }
        """)
        XCTAssertEqual(node(g, "y")?.shape, [1, 3, 2, 2])
        XCTAssertEqual(node(g, "s[1]")?.op, .slice(axis: 1, start: 3, length: 3))
    }

    func testCyclesAndRecursionAreNamed() {
        let cycle = errors("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 2] },
          "nodes": [ { "name": "a", "op": "add", "in": ["x", "c"] }, { "name": "b", "op": "relu", "in": "a" },
                     { "name": "c", "op": "relu", "in": "b" } ], "outputs": { "y": "c" } }
        """)
        XCTAssertTrue(cycle.first?.message.contains("cycle between steps: a -> b -> c -> a") ?? false, "\(cycle)")
        let recursion = errors("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 2] },
          "blocks": { "A": { "body": [ { "block": "B" } ] }, "B": { "body": [ { "block": "A" } ] } },
          "nodes": [ { "block": "A" } ], "outputs": { "y": "nodes.0" } }
        """)
        XCTAssertTrue(recursion.contains { $0.message.contains("recursive block: A -> B -> A") }, "\(recursion)")
    }

    func testExponentialExpansionStopsAtTheNodeLimit() {
        var blocks: [String] = [#""B0": { "body": [ { "op": "relu" } ] }"#]
        for i in 1...9 {
            blocks.append("\"B\(i)\": { \"body\": [" + Array(repeating: "{ \"block\": \"B\(i - 1)\" }", count: 10).joined(separator: ",") + "] }")
        }
        let start = Date()
        let d = errors("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 2] }, "blocks": { \(blocks.joined(separator: ",")) },
          "nodes": [ { "name": "y", "block": "B9" } ], "outputs": { "y": "y" } }
        """)
        XCTAssertTrue(d.contains { $0.message.contains("more than 100000 nodes") }, "\(d)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
    }

    func testAllIndependentErrorsAreReported() {
        let d = errors("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 3, 8, 8] },
          "nodes": [ { "name": "a", "op": "conv2", "out": 4, "kernel": 3 },
                     { "name": "b", "op": "conv2d", "in": "x", "out": 4, "kernal": 3 },
                     { "name": "c", "op": "relu", "in": "xx" } ],
          "outputs": { "y": "c" } }
        """)
        XCTAssertEqual(d.count, 4, "\(d)")
        XCTAssertTrue(d.contains { $0.message == "unknown op 'conv2'" && $0.hint == "did you mean 'conv2d'?" && $0.path == "$.nodes[0].op" })
        XCTAssertTrue(d.contains { $0.message == "unknown attribute 'kernal' for op 'conv2d'" && $0.hint == "did you mean 'kernel'?" })
        XCTAssertTrue(d.contains { $0.message == "missing required attribute 'kernel'" })
        XCTAssertTrue(d.contains { $0.message == "unknown value 'xx'" && $0.hint == "did you mean 'x'?" })
    }

    func testChannelMismatchNamesNodesAndShapes() throws {
        let d = errors("""
        { "unetc": 1, "name": "t", "inputs": { "x": [1, 3, 8, 8] },
          "nodes": [ { "name": "a", "op": "conv2d", "in": "x", "out": 4, "kernel": 1 }, { "name": "b", "op": "conv2d", "in": "x", "out": 5, "kernel": 1 },
                     { "name": "sum", "op": "add", "in": ["a", "b"] } ],
          "outputs": { "y": "sum" } }
        """)
        let first = try XCTUnwrap(d.first)
        XCTAssertEqual(first.node, "sum")
        XCTAssertTrue(first.message.contains("[1, 4, 8, 8] and [1, 5, 8, 8]"), first.message)
        XCTAssertTrue(first.message.contains("'a' [1, 4, 8, 8], 'b' [1, 5, 8, 8]"), first.message)
    }

    /// Found by fuzzing (a 2 KB graph): a typo in a block body expanded some 20 000 times gave 22 800
    /// errors, each with its own "did you mean" search (11 s under ASan). Now each is reported once.
    func testAnErrorRepeatedByBlockExpansionIsReportedOnce() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Corpus/fuzz/graph-error-in-a-block-expanded-20000-times.json")
        guard case .failure(let list) = GraphLoader.load(path: url.path) else { return XCTFail("the graph was accepted") }
        XCTAssertLessThan(list.items.count, 10, list.report())
        XCTAssertEqual(list.items.filter { $0.message.contains("unknown op 'matmuoutl'") }.count, 1, list.report())
    }
}
