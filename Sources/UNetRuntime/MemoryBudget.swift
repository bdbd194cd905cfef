/// How much memory one model may claim: the activation arena and the weights.
///
/// Checked before anything is allocated, for graph files (from the declared weight shapes and the
/// memory plan) and for plan files (from the manifest), so a hostile or mistaken file is refused
/// with a message instead of exhausting memory. The defaults fit every UNet in the README at
/// 512x512; `--max-arena-mib` and `--max-weights-mib` raise them.
public struct MemoryBudget: Sendable, Equatable {
    public var arenaBytes: Int
    public var weightBytes: Int

    public init(arenaBytes: Int = 4 << 30, weightBytes: Int = 8 << 30) {
        self.arenaBytes = arenaBytes
        self.weightBytes = weightBytes
    }

    /// Throws when an arena of `arena` bytes or `weights` bytes of weights would exceed the budget.
    public func check(arena: Int?, weights: Int?, in what: String) throws(RuntimeError) {
        if let arena, arena > arenaBytes {
            throw RuntimeError("\(what) needs an activation arena of \(Self.mib(arena)), over the limit of \(Self.mib(arenaBytes)) (raise it with --max-arena-mib)")
        }
        if let weights, weights > weightBytes {
            throw RuntimeError("\(what) has \(Self.mib(weights)) of weights, over the limit of \(Self.mib(weightBytes)) (raise it with --max-weights-mib)")
        }
    }

    static func mib(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
