import ArgumentParser
import UNetRuntime

/// `--max-arena-mib` and `--max-weights-mib`: the memory budget of commands that load a model.
struct MemoryLimitOptions: ParsableArguments {
    @Option(name: .customLong("max-arena-mib"), help: "Refuse models whose activation arena exceeds this many MiB.")
    var maxArenaMiB: Int = MemoryBudget().arenaBytes >> 20

    @Option(name: .customLong("max-weights-mib"), help: "Refuse models whose weights exceed this many MiB.")
    var maxWeightsMiB: Int = MemoryBudget().weightBytes >> 20

    func validate() throws {
        guard (1...(1 << 30)).contains(maxArenaMiB), (1...(1 << 30)).contains(maxWeightsMiB) else {
            throw ValidationError("--max-arena-mib and --max-weights-mib must be between 1 and 2^30")
        }
    }

    var budget: MemoryBudget { MemoryBudget(arenaBytes: maxArenaMiB << 20, weightBytes: maxWeightsMiB << 20) }
}
