import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetRuntime
import UNetSpec

@main
struct UNetc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unetc",
        abstract: "A compiler for UNet models described in JSON.",
        subcommands: [Validate.self, Run.self, DumpIR.self]
    )
}

/// Standard error, for diagnostics.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check graph files: every shape, parameter and FLOP, or located errors.")

    @Argument(help: "Graph files (.json).")
    var files: [String]

    @Flag(name: .shortAndLong, help: "Print a per-node table: name, op, output shape, params, FLOPs.")
    var verbose = false

    @Flag(name: .customLong("weights-manifest"), help: "Print every weight tensor the graph expects: state_dict name, shape, dtype.")
    var weightsManifest = false

    func run() throws {
        var failed = 0
        for file in files {
            switch GraphLoader.load(path: file) {
            case .failure(let diagnostics):
                failed += 1
                printError(diagnostics.report())
                printError("\(file): \(diagnostics.items.count) error\(diagnostics.items.count == 1 ? "" : "s")")
            case .success(let graph):
                print("\(file): ok (\(graph.name))")
                print(GraphSummary.summary(graph))
                if verbose { print(GraphSummary.nodeTable(graph)) }
                if weightsManifest { print(GraphSummary.weightManifest(graph)) }
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

struct DumpIR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ir", abstract: "Print the lowered graph as JSON (the format tools such as the ONNX oracle read).")

    @Argument(help: "A graph file (.json).")
    var file: String

    func run() throws {
        switch GraphLoader.load(path: file) {
        case .failure(let diagnostics):
            printError(diagnostics.report())
            throw ExitCode(1)
        case .success(let graph):
            print(IRExport.json(graph))
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a graph on the CPU runtime: inputs and outputs are .npy files.")

    @Argument(help: "A graph file (.json).")
    var graph: String

    @Option(help: "Weights (.safetensors) named by the graph's state_dict paths. Without it, a seeded initialisation.")
    var weights: String?

    @Option(help: "Seed for the initialisation of weights and of inputs not given.")
    var seed: UInt64 = 0

    @Option(name: .customLong("input"), help: "NAME=FILE.npy for a graph input (repeatable). Missing inputs get seeded random data.")
    var inputs: [String] = []

    @Option(name: .customLong("output"), help: "NAME=FILE.npy for one output, or a directory for all (repeatable).")
    var outputs: [String] = []

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print a per-op time table.")
    var profile = false

    @Option(name: .customLong("dump-attention"), help: "Write attention maps to DIR: per head and head-averaged softmax of each attention node, and each attention gate's map.")
    var dumpAttention: String?

    @Option(name: .customLong("repeat"), help: "Run this many times after one warm-up run and report the median time (benchmarking).")
    var repetitions: Int = 1

    func run() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        let session: ModelSession
        do {
            session = try ModelSession(graphPath: graph, weightsPath: weights, seed: seed, threads: threads)
        } catch let d as DiagnosticList {
            printError(d.report())
            throw ExitCode(1)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        for w in session.warnings { printError("warning: " + w) }
        let g = session.graph

        var given: [String: Tensor] = [:]
        for spec in inputs {
            guard let eq = spec.firstIndex(of: "="), !spec[..<eq].isEmpty else {
                throw ValidationError("--input expects NAME=FILE.npy, got '\(spec)'")
            }
            let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
            guard g.inputs.contains(where: { $0.name == name }) else {
                printError("error: the graph has no input '\(name)'; inputs: " + g.inputs.map(\.name).joined(separator: ", "))
                throw ExitCode(1)
            }
            do { given[name] = try NumpyFile.read(path) } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
        }
        for (name, _, _) in g.inputs where given[name] == nil {
            given[name] = session.defaultInput(name, seed: seed)
            printError("note: input '\(name)' not given; using seeded random data (--seed \(seed))")
        }

        var targets: [String: String] = [:]
        for spec in outputs {
            if let eq = spec.firstIndex(of: "=") {
                let name = String(spec[..<eq])
                guard g.outputs.contains(where: { $0.name == name }) else {
                    printError("error: the graph has no output '\(name)'; outputs: " + g.outputs.map(\.name).joined(separator: ", "))
                    throw ExitCode(1)
                }
                targets[name] = String(spec[spec.index(after: eq)...])
            } else {
                var isDirectory: ObjCBool = false
                if !FileManager.default.fileExists(atPath: spec, isDirectory: &isDirectory) {
                    try? FileManager.default.createDirectory(atPath: spec, withIntermediateDirectories: true)
                } else if !isDirectory.boolValue {
                    throw ValidationError("--output '\(spec)' is a file; use NAME=FILE.npy or a directory")
                }
                for (name, _) in g.outputs { targets[name] = (spec as NSString).appendingPathComponent(name + ".npy") }
            }
        }

        guard repetitions >= 1 && repetitions <= 10_000 else { throw ValidationError("--repeat must be between 1 and 10000") }
        if let dir = dumpAttention {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                printError("error: cannot create '\(dir)': \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
        var maps: [(String, Tensor)] = []
        var entries: [Executor.ProfileEntry] = []
        var results: [String: Tensor] = [:]
        var times: [Double] = []
        do {
            if repetitions > 1 { _ = try session.run(given) }
            for i in 0..<repetitions {
                entries.removeAll()
                let start = Date()
                results = try session.run(given, profile: profile ? { entries.append($0) } : nil,
                                          attention: dumpAttention != nil && i == 0 ? { maps.append(($0, $1)) } : nil)
                times.append(Date().timeIntervalSince(start))
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        let seconds = times.sorted()[times.count / 2]
        if let dir = dumpAttention {
            do {
                for (name, map) in maps {
                    let base = (dir as NSString).appendingPathComponent(name)
                    if map.shape.count == 4 && g.nodes.first(where: { $0.name == name }).map({ if case .attention = $0.op { true } else { false } }) == true {
                        try NumpyFile.write(map, to: base + ".heads.npy")
                        try NumpyFile.write(AttentionMaps.headAverage(map), to: base + ".mean.npy")
                    } else {
                        try NumpyFile.write(map, to: base + ".npy")
                    }
                }
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            printError("note: wrote \(maps.count) attention map(s) to \(dir)")
        }
        for (name, _) in g.outputs {
            guard let t = results[name] else { continue }
            print(OutputSummary.line(name: name, tensor: t))
            if let path = targets[name] {
                do { try NumpyFile.write(t, to: path) } catch {
                    printError("\(error)")
                    throw ExitCode(1)
                }
            }
        }
        print(String(format: "time: %.1f ms%@ (%d threads, %.2f GFLOP, %.1f GFLOP/s)", seconds * 1000,
                     repetitions > 1 ? String(format: " median of %d, min %.1f ms", repetitions, (times.min() ?? 0) * 1000) as NSString : "" as NSString, threads,
                     Double(g.totalFLOPs) / 1e9, Double(g.totalFLOPs) / 1e9 / max(seconds, 1e-9)))
        if profile { print(OutputSummary.profileTable(entries)) }
    }
}
