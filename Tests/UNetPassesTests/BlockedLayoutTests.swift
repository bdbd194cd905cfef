import Foundation
import XCTest
import UNetCompiler
@testable import UNetIR
@testable import UNetPasses
@testable import UNetPlan
@testable import UNetRuntime

/// The channel-blocked layout: which steps the pass puts in it, that reorders sit only at a
/// region's edges, and that its kernels reproduce the plain layout's outputs (bit for bit where
/// they sum in the same order, to rounding where they do not) at any thread count, from graphs
/// and from plans.
final class BlockedLayoutTests: XCTestCase {
    /// Graphs whose blocked kernels sum every output in the plain kernels' order.
    static let graphs = ["graphs/test/blocked_layout.json", "graphs/bench/mobile_unet.json", "graphs/mobile_unet.json"]
    /// Graphs with small-map 3x3 convolutions (blocked im2col sums tap-major, the plain GEMM
    /// channel-major), GroupNorm statistics and attention: blocked and plain agree to rounding.
    static let roundingGraphs = ["graphs/test/blocked_unet.json", "graphs/unet_classic.json", "graphs/selective_skip_unet.json",
                                 "graphs/ddpm_unet.json", "graphs/inpainting_diffusion_unet.json"]

    func compiled(_ graph: String, blocked: Bool) throws -> Compiler.Result { try BlockedPlanSupport.compiled(graph, blocked: blocked) }

    /// Every step reads its operands in its own layout (a reorder reads the other one, a stem its
    /// plain image, a head its blocked input; epilogue operands always in the step's), elided
    /// concats share their operands' layout, and graph outputs are plain.
    func assertLayoutsAgree(_ g: OptimizedGraph, _ name: String) {
        for (i, s) in g.steps.enumerated() where s.live {
            if case .input = s.op { XCTAssertEqual(s.layout, .plain); continue }
            let plainInput = s.layout == .blocked16 && BlockedLayoutSelection.readsPlainInput(s.op, input: g.steps[s.inputs[0]].shape)
            let isReorder = if case .reorder = s.op { true } else { false }
            let blockedInput = !isReorder && s.layout == .plain
                && BlockedLayoutSelection.operatorInputLayout(of: s, firstInput: g.steps[s.inputs[0]]) == .blocked16
            for (slot, v) in s.inputs.enumerated() {
                if slot >= s.operatorArity && BlockedLayoutSelection.isChannelOperand(s, slot: slot) {
                    XCTAssertEqual(g.steps[v].layout, .plain, "\(name): \(s.name) reads its per-channel operand \(g.steps[v].name) in blocks")
                } else if slot >= s.operatorArity {
                    XCTAssertEqual(g.steps[v].layout, s.layout, "\(name): \(s.name) reads its epilogue operand \(g.steps[v].name) in the other layout")
                } else if plainInput {
                    XCTAssertEqual(g.steps[v].layout, .plain, "\(name): \(s.name) reads its image plain")
                } else if blockedInput {
                    XCTAssertEqual(g.steps[v].layout, .blocked16, "\(name): \(s.name) reads its blocked input")
                    XCTAssertTrue(BlockedLayoutSelection.readsBlockedInput(s.op, input: g.steps[v].shape, output: s.shape), "\(name): \(s.name)")
                } else if case .reorder(let target) = s.op {
                    XCTAssertEqual(s.layout, target, "\(name): \(s.name)")
                    XCTAssertNotEqual(g.steps[v].layout, target, "\(name): \(s.name) reorders a value already in its layout")
                } else {
                    XCTAssertEqual(g.steps[v].layout, s.layout, "\(name): \(s.name) reads \(g.steps[v].name) in the other layout")
                }
            }
            if s.layout == .blocked16, let x = s.operatorInputs.first {
                XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(s.op, input: g.steps[x].shape, output: s.shape, algorithm: s.algorithm,
                                                                          inputs: s.operatorArity), "\(name): \(s.name)")
            }
            if g.elidedConcats.contains(i) { XCTAssertTrue(s.inputs.allSatisfy { g.steps[$0].layout == s.layout }, "\(name): \(s.name)") }
        }
        for (output, step) in g.outputs { XCTAssertEqual(g.steps[step].layout, .plain, "\(name): output \(output)") }
    }

    func testMobileUNetRunsBlockedWithoutAReorder() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let g = try compiled("graphs/bench/mobile_unet.json", blocked: true).graph
        let reorders = g.steps.filter { if $0.live, case .reorder = $0.op { true } else { false } }.map(\.name)
        // The stem writes blocks from the 3-channel image; the 2-channel head reads blocks and writes the plain logits.
        XCTAssertEqual(reorders, [])
        let plain = g.steps.filter { s in
            guard s.live, s.layout == .plain else { return false }
            if case .input = s.op { return false }
            return true
        }.map(\.name)
        XCTAssertEqual(plain, ["head"])
        assertLayoutsAgree(g, "mobile")
    }

    /// The steps that run plain (neither graph inputs nor reorders), and the reorder steps.
    func plainStepsAndReorders(_ g: OptimizedGraph) -> (plain: [String], reorders: [String]) {
        let plain = g.steps.filter { s in
            guard s.live, s.layout == .plain else { return false }
            switch s.op {
            case .input, .reorder: return false
            default: return true
            }
        }.map(\.name)
        return (plain, g.steps.filter { if $0.live, case .reorder = $0.op { true } else { false } }.map(\.name))
    }

    func testClassicUNetsRunBlockedFromStemToHead() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        // Winograd 3x3 convolutions, 2x2 transposed ones, pooling and skip concatenations all blocked:
        // the stem reads the image, the head writes the plain output.
        for graph in ["graphs/test/blocked_unet.json", "graphs/bench/classic_unet.json"] {
            let g = try compiled(graph, blocked: true).graph
            let (plain, reorders) = plainStepsAndReorders(g)
            XCTAssertEqual(reorders, [], graph)
            XCTAssertEqual(plain, ["head"], graph)
            XCTAssertTrue(g.steps.contains { $0.live && $0.layout == .blocked16 && $0.algorithm == .winograd4x4 }, graph)
            XCTAssertTrue(g.steps.contains { if $0.live, $0.layout == .blocked16, case .convTranspose2d = $0.op { true } else { false } }, graph)
            assertLayoutsAgree(g, graph)
        }
        // On maps too small for Winograd (the 8x8 bottleneck of the 128x128 examples) the 3x3
        // convolutions run blocked by im2col.
        for graph in ["graphs/unet_classic.json", "graphs/selective_skip_unet.json"] {
            let g = try compiled(graph, blocked: true).graph
            let (plain, reorders) = plainStepsAndReorders(g)
            XCTAssertEqual(plain, ["head"], graph)
            XCTAssertEqual(reorders, [], graph)
            let bottleneck = g.steps.filter { $0.live && $0.name.hasPrefix("connector.conv") }
            XCTAssertEqual(bottleneck.map(\.layout), [.blocked16, .blocked16], graph)
            XCTAssertEqual(bottleneck.map(\.algorithm), [.gemm, .gemm], graph)
        }
    }

    func testBlockedPlanStoresItsFiltersInBlocks() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try compiled("graphs/test/blocked_unet.json", blocked: true)
        try BlockedPlanSupport.roundTrip(result) { loaded in
            var manifest = loaded.manifest
            guard let e2 = manifest.steps.firstIndex(where: { $0.name == "e2" }), let filters = manifest.steps[e2].weights.first ?? nil else {
                return XCTFail("no step e2 with filters")
            }
            // Transformed once, when the plan is written: 36 positions of 48 x 16 filters.
            XCTAssertEqual(filters.layout, .winogradBlocked)
            XCTAssertEqual(filters.storedCount, 36 * 48 * 16)
            XCTAssertNil(manifest.validate())
            // The same step made plain would read those filters as GEMM panels.
            manifest.steps[e2].layout = nil
            XCTAssertNotNil(manifest.validate())
            // The other blocked convolutions' filters are stored in blocks too, so loading maps them.
            let others = manifest.steps.indices.filter { i in
                guard manifest.steps[i].live, manifest.steps[i].layout == .blocked16, case .conv2d = manifest.steps[i].op else { return false }
                return manifest.steps[i].algorithm == .gemm
            }
            XCTAssertFalse(others.isEmpty)
            for i in others {
                guard let w = manifest.steps[i].weights.first ?? nil else { return XCTFail("\(manifest.steps[i].name) has no filters") }
                XCTAssertEqual(w.layout, .blocked, manifest.steps[i].name)
                XCTAssertEqual(w.storedCount, w.shape.reduce(1, *), manifest.steps[i].name)
                // Made plain, the step would read them as GEMM panels.
                var plain = loaded.manifest
                plain.steps[i].layout = nil
                XCTAssertTrue(plain.validate()?.contains("stored in a layout or size its kernel does not read") ?? false,
                              "\(manifest.steps[i].name): \(plain.validate() ?? "accepted")")
            }
            XCTAssertNil(WeightLayout.blocked.storedCount(shape: [40, 16, 1, 1], groups: 1, panelRows: 6))
            // Blocked filters for a channel count that does not fill the blocks.
            XCTAssertNil(WeightLayout.winogradBlocked.storedCount(shape: [40, 16, 3, 3], groups: 1, panelRows: 6))
            XCTAssertNil(WeightLayout.winogradBlocked.storedCount(shape: [48, 16, 1, 1], groups: 1, panelRows: 6))
            XCTAssertEqual(WeightLayout.winogradBlocked.storedCount(shape: [48, 16, 3, 3], groups: 1, panelRows: 6), 36 * 48 * 16)
        }
    }

    func testEveryExampleGraphsLayoutsAgree() throws {
        let dirs = ["graphs", "graphs/test", "graphs/bench"]
        for dir in dirs {
            let files = try FileManager.default.contentsOfDirectory(atPath: PassTestSupport.root.appendingPathComponent(dir).path)
            for file in files.sorted() where file.hasSuffix(".json") {
                let g = try compiled(dir + "/" + file, blocked: true).graph
                assertLayoutsAgree(g, file)
            }
        }
    }

    func testBlockedOutputsEqualThePlainOnesAtAnyThreadCount() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        for graph in Self.graphs {
            let plain = try compiled(graph, blocked: false), blocked = try compiled(graph, blocked: true)
            XCTAssertGreaterThan(blocked.graph.steps.filter { $0.live && $0.layout == .blocked16 }.count, 4, graph)
            XCTAssertFalse(plain.graph.steps.contains { $0.layout == .blocked16 }, graph)
            try BlockedPlanSupport.assertBitIdentical(blocked, to: plain, graph)
        }
        for graph in Self.roundingGraphs {
            let plain = try compiled(graph, blocked: false), blocked = try compiled(graph, blocked: true)
            XCTAssertGreaterThan(blocked.graph.steps.filter { $0.live && $0.layout == .blocked16 }.count, 4, graph)
            try BlockedPlanSupport.assertAgrees(blocked, with: plain, tolerance: 1e-5, graph)
        }
    }

    func testDiffusionUNetRunsBlockedWithGroupNormAttentionAndTimeEmbedding() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        // GroupNorm (statistics from the producing convolution), the time embedding's per-channel
        // add, self-attention, strided downsampling (pad + 3x3 stride 2) and nearest upsampling all
        // blocked: one reorder, before the 3x3 head to 3 channels.
        let g = try BlockedPlanSupport.compiledBlockedDDPM().graph
        let (plain, reorders) = plainStepsAndReorders(g)
        XCTAssertEqual(reorders, ["conv_norm_out.to_plain"])
        XCTAssertTrue(plain.allSatisfy { $0 == "conv_out" || $0.hasPrefix("time_") || $0.contains("time_emb_proj") || $0.contains("temb") },
                      "\(plain)")
        func blocked(_ match: (Step) -> Bool) -> Bool { g.steps.contains { $0.live && $0.layout == .blocked16 && match($0) } }
        XCTAssertTrue(blocked { if case .groupNorm = $0.op { $0.epilogue.contains(.unary(.silu)) } else { false } })
        XCTAssertTrue(blocked { if case .attention = $0.op { $0.epilogue.contains(.statistics) } else { false } })
        XCTAssertTrue(blocked { $0.epilogue.contains { if case .addChannel = $0 { true } else { false } } })
        XCTAssertTrue(blocked { if case .conv2d(let c) = $0.op { c.stride == (2, 2) } else { false } })
        XCTAssertTrue(blocked { if case .pad = $0.op { true } else { false } })
        assertLayoutsAgree(g, "ddpm")
    }

    func testBlockedPlanRunsLikeTheGraphAndIsCheckedWhenLoaded() throws {
        try XCTSkipUnless(BlockedLayoutKernel.available, "the blocked kernels need AVX2 or AVX-512")
        let result = try compiled("graphs/test/blocked_layout.json", blocked: true)
        try BlockedPlanSupport.roundTrip(result) { loaded in
            XCTAssertEqual(loaded.program.graph.steps.map(\.layout), result.graph.steps.map(\.layout))

            // A blocked step whose shapes the blocked kernels do not take (here a dilated 3x3 convolution).
            var manifest = loaded.manifest
            guard let dw = manifest.steps.firstIndex(where: { $0.name == "b" }) else { return XCTFail("no step b") }
            manifest.steps[dw].op = .conv2d(Conv2D(out: 48, kernel: (3, 3), stride: (1, 1), pad: (2, 2), dilation: (2, 2), groups: 1, bias: true))
            XCTAssertTrue(manifest.validate()?.contains("blocked-layout kernel") ?? false, manifest.validate() ?? "accepted")
            // An upsampling made plain: it would read its blocked input as planes.
            var plainReader = loaded.manifest
            guard let u = plainReader.steps.firstIndex(where: { $0.name == "u" }) else { return XCTFail("no step u") }
            plainReader.steps[u].layout = nil
            XCTAssertTrue(plainReader.validate()?.contains("layout its kernel does not read") ?? false, plainReader.validate() ?? "accepted")
            // A reorder into blocks of a channel count that does not fill them.
            var uneven = loaded.manifest
            guard let r = uneven.steps.firstIndex(where: { if case .reorder(.blocked16) = $0.op { true } else { false } }) else { return XCTFail("no reorder") }
            uneven.steps[r].shape[1] = 20
            XCTAssertNotNil(uneven.validate())
        }
    }

    func testShapesTheBlockedKernelsTake() {
        let pointwise = Op.conv2d(Conv2D(out: 32, kernel: (1, 1), stride: (1, 1), pad: (0, 0), dilation: (1, 1), groups: 1, bias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(pointwise, input: [1, 16, 5, 7], output: [1, 32, 5, 7]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(pointwise, input: [1, 24, 5, 7], output: [1, 32, 5, 7]), "channels not in blocks")
        // Empty dimensions (a hostile plan): the kernels divide their work by them.
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(pointwise, input: [0, 16, 5, 7], output: [0, 32, 5, 7]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(pointwise, input: [1, 0, 5, 7], output: [1, 32, 5, 7]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(pointwise, input: [1, 16, 0, 7], output: [1, 32, 0, 7]))
        let stem = Op.conv2d(Conv2D(out: 32, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(stem, input: [1, 3, 9, 9], output: [1, 32, 9, 9]))
        XCTAssertTrue(BlockedLayoutSelection.readsPlainInput(stem, input: [1, 3, 9, 9]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(stem, input: [1, 9, 9, 9], output: [1, 32, 9, 9]), "more than 8 plain channels")
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(stem, input: [1, 32, 9, 9], output: [1, 32, 9, 9]), "a small map by im2col")
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(stem, input: [1, 32, 32, 32], output: [1, 32, 32, 32]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(stem, input: [1, 32, 40, 40], output: [1, 32, 40, 40]),
                       "a blocked 3x3 on a map too large for its im2col")
        let strided = Op.conv2d(Conv2D(out: 32, kernel: (3, 3), stride: (2, 2), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(strided, input: [1, 32, 8, 8], output: [1, 32, 4, 4]), "a strided 3x3, small")
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(strided, input: [1, 32, 128, 128], output: [1, 32, 64, 64]), "a strided 3x3, large")
        let dilated = Op.conv2d(Conv2D(out: 32, kernel: (3, 3), stride: (1, 1), pad: (2, 2), dilation: (2, 2), groups: 1, bias: true))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(dilated, input: [1, 32, 8, 8], output: [1, 32, 8, 8]), "a dilated 3x3")
        let norm = Op.groupNorm(groups: 32, eps: 1e-5, affine: true)
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(norm, input: [1, 384, 8, 8], output: [1, 384, 8, 8]), "groups across blocks")
        let attention = Op.attention(Attention(heads: 1, headDim: nil, qkvBias: true, outBias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(attention, input: [1, 64, 8, 8], output: [1, 64, 8, 8]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(attention, input: [1, 64, 8, 8], output: [1, 64, 8, 8], inputs: 2), "cross-attention")
        let winograd = Op.conv2d(Conv2D(out: 32, kernel: (3, 3), stride: (1, 1), pad: (1, 1), dilation: (1, 1), groups: 1, bias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(winograd, input: [1, 16, 8, 16], output: [1, 32, 8, 16], algorithm: .winograd4x4))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(winograd, input: [1, 16, 8, 16], output: [1, 32, 8, 16]), "by im2col, a small map")
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(winograd, input: [1, 16, 64, 64], output: [1, 32, 64, 64]), "by im2col, a large map")
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(winograd, input: [1, 24, 8, 16], output: [1, 32, 8, 16], algorithm: .winograd4x4))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(winograd, input: [1, 16, 8, 12], output: [1, 32, 8, 12], algorithm: .winograd4x4),
                       "a width the Winograd kernels do not tile")
        let up = Op.convTranspose2d(ConvTranspose2D(out: 32, kernel: (2, 2), stride: (2, 2), pad: (0, 0), outputPadding: (0, 0), dilation: (1, 1),
                                                    groups: 1, bias: true))
        XCTAssertTrue(BlockedLayoutSelection.blockedKernelApplies(up, input: [1, 16, 5, 7], output: [1, 32, 10, 14]))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(up, input: [1, 16, 5, 7], output: [1, 24, 10, 14]), "output channels not in blocks")
        let overlapping = Op.convTranspose2d(ConvTranspose2D(out: 32, kernel: (4, 4), stride: (2, 2), pad: (1, 1), outputPadding: (0, 0),
                                                             dilation: (1, 1), groups: 1, bias: true))
        XCTAssertFalse(BlockedLayoutSelection.blockedKernelApplies(overlapping, input: [1, 16, 5, 7], output: [1, 32, 10, 14]), "overlapping taps")
    }

    /// Tools/test runs this under `UNETC_ISA=portable`.
    func testWithoutTheKernelsTheDefaultIsPlainAndBlockedPlansAreRefused() throws {
        try XCTSkipIf(BlockedLayoutKernel.available, "this machine runs the blocked kernels")
        XCTAssertFalse(CompileOptions().blockedLayout)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unetc-blocked-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.unetc").path
        try PlanFile.write(try compiled("graphs/test/blocked_layout.json", blocked: true), to: path)
        XCTAssertThrowsError(try PlanLoader.load(path)) { error in
            XCTAssertTrue("\(error)".contains("channel-blocked layout"), "\(error)")
        }
    }

    func testThePassIsOffWithoutTheKernels() throws {
        let g = try compiled("graphs/bench/mobile_unet.json", blocked: false).graph
        XCTAssertFalse(g.steps.contains { if case .reorder = $0.op { true } else { false } })
    }
}
