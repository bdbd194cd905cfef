import ArgumentParser
import Foundation
import UNetCompiler
import UNetIR
import UNetPasses
import UNetPlan
import UNetRuntime
import UNetSpec

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a graph or a compiled plan on the CPU runtime: inputs and outputs are .npy files.")

    @Argument(help: "A graph file (.json), compiled on the fly, or a plan file from `unetc compile`.")
    var graph: String

    @Flag(name: [.customLong("O0", withSingleDash: true), .customLong("O0")], help: "Compile without optimization passes (graph files only).")
    var noOptimization = false

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

    @Flag(help: "Print a per-op time table (with --repeat, each step's median over the runs).")
    var profile = false

    @Option(name: .customLong("profile-steps"), help: "Write every step's time to FILE, tab-separated in run order: step, op, median ms over the runs, GFLOP (implies --profile's timing).")
    var profileSteps: String?

    @Option(name: .customLong("dump-attention"), help: "Write attention maps to DIR: per head and head-averaged softmax of each attention node, and each attention gate's map.")
    var dumpAttention: String?

    @Option(name: .customLong("repeat"), help: "Run this many times after one warm-up run and report the median time (benchmarking).")
    var repetitions: Int = 1

    @OptionGroup var limits: MemoryLimitOptions

    func run() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        let session: ModelSession
        do {
            session = try ModelSession(path: graph, weightsPath: weights, seed: seed, threads: threads,
                                       options: CompileOptions(optimize: !noOptimization, budget: limits.budget))
        } catch {
            reportError(error)
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
            var runs: [[Executor.ProfileEntry]] = []
            for i in 0..<repetitions {
                var run: [Executor.ProfileEntry] = []
                let start = Date()
                results = try session.run(given, profile: profile || profileSteps != nil ? { run.append($0) } : nil,
                                          attention: dumpAttention != nil && i == 0 ? { maps.append(($0, $1)) } : nil)
                times.append(Date().timeIntervalSince(start))
                runs.append(run)
            }
            // Each step's median over the runs: one run's times swing with the machine's other load.
            entries = runs.last ?? []
            for k in entries.indices {
                let seconds = runs.compactMap { k < $0.count ? $0[k].seconds : nil }.sorted()
                entries[k].seconds = seconds[seconds.count / 2]
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
                    if map.shape.count == 4 && g.steps.first(where: { $0.name == name }).map({ if case .attention = $0.op { true } else { false } }) == true {
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
                     Double(session.flops) / 1e9, Double(session.flops) / 1e9 / max(seconds, 1e-9)))
        print(String(format: "load: %.1f ms (%@)", session.loadSeconds * 1000, PlanFile.isPlan(graph) ? "plan mapped, weights prepared" : "graph compiled"))
        if profile { print(OutputSummary.profileTable(entries)) }
        if let path = profileSteps {
            do { try AtomicFile.write(Data(OutputSummary.stepTimes(entries).utf8), to: path) } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
        }
    }
}
