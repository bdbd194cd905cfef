import UNetIR

/// Where every intermediate value lives in the one arena, from liveness and best-fit placement.
public struct MemoryPlan: Sendable, Codable, Equatable {
    /// Per step: arena offset of its output in bytes, or nil for graph inputs (caller-owned) and
    /// steps fused into their consumer (no output of their own).
    public var offsets: [Int?]
    /// Steps whose output is already in place (elided concats, reshapes/identities aliasing their operand): nothing to run.
    public var inPlace: Set<Int>
    public var arenaBytes: Int
    /// Sum of all intermediate tensors' bytes: what a plan without reuse would need.
    public var unplannedBytes: Int

    public static let alignment = 64

    static func bytes(_ shape: Shape) -> Int {
        let raw = (OpSemantics.elementCount(shape) ?? 0) * 4
        return (raw + alignment - 1) / alignment * alignment
    }

    /// Plans `graph`: aliases first (views, elided concats), then lifetimes, then greedy-by-size best-fit offsets.
    public static func plan(_ graph: OptimizedGraph) -> MemoryPlan {
        let n = graph.steps.count
        // root[v] = (buffer owner, byte offset inside it).
        var root = (0..<n).map { ($0, 0) }
        var inPlace = Set<Int>()
        var external = Set<Int>()
        for (i, s) in graph.steps.enumerated() where s.live {
            if case .input = s.op { external.insert(i) }
        }
        for (i, s) in graph.steps.enumerated() where s.live {
            if graph.elidedConcats.contains(i) {
                var offset = 0
                for v in s.inputs {
                    root[v] = (i, offset)
                    offset += (OpSemantics.elementCount(graph.steps[v].shape) ?? 0) * 4
                }
                inPlace.insert(i)
            }
        }
        // Views alias their operand (resolved in order, so chains of views collapse), unless the operand is caller-owned.
        func resolve(_ v: Int) -> (Int, Int) {
            var (r, o) = root[v]
            while r != root[r].0 || root[r].1 != 0 {
                let (r2, o2) = root[r]
                if r2 == r { break }
                o += o2
                r = r2
            }
            return (r, o)
        }
        for (i, s) in graph.steps.enumerated() where s.live && ConcatElimination.isView(s.op) && s.epilogue.isEmpty {
            let source = s.inputs[0]
            let (r, o) = resolve(source)
            if external.contains(r) { continue }
            root[i] = (r, o)
            inPlace.insert(i)
        }

        // Lifetimes of buffer owners: from the first write of any member to the last read of any member.
        var start = [Int](repeating: Int.max, count: n)
        var end = [Int](repeating: -1, count: n)
        let finalStep = n
        for (i, s) in graph.steps.enumerated() where s.live {
            let (r, _) = resolve(i)
            start[r] = min(start[r], i)
            end[r] = max(end[r], i)
            // A fused depthwise step is computed by its reader: its inputs are read there.
            for v in s.inputs + s.inputs.filter({ graph.steps[$0].fusedIntoConsumer }).flatMap({ graph.steps[$0].inputs }) {
                let (rv, _) = resolve(v)
                end[rv] = max(end[rv], i)
            }
        }
        for (_, v) in graph.outputs {
            let (r, _) = resolve(v)
            end[r] = finalStep
        }
        var owners: [(id: Int, bytes: Int)] = []
        var unplanned = 0
        for (i, s) in graph.steps.enumerated() where s.live && !external.contains(i) && !s.fusedIntoConsumer && resolve(i).0 == i {
            let size = bytes(s.shape)
            owners.append((i, size))
            unplanned += size
        }
        // Greedy by size: biggest first, each at the lowest offset that overlaps no placed buffer alive at the same time.
        owners.sort { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.id < $1.id }
        var placed: [(offset: Int, bytes: Int, start: Int, end: Int)] = []
        var ownerOffset = [Int: Int]()
        var arena = 0
        for (id, size) in owners {
            let conflicts = placed.filter { !($0.end < start[id] || end[id] < $0.start) }.sorted { $0.offset < $1.offset }
            var best: Int?
            var bestGap = Int.max
            var cursor = 0
            for c in conflicts {
                if c.offset - cursor >= size, c.offset - cursor < bestGap {
                    best = cursor
                    bestGap = c.offset - cursor
                }
                cursor = max(cursor, c.offset + c.bytes)
            }
            let offset = best ?? cursor
            placed.append((offset, size, start[id], end[id]))
            ownerOffset[id] = offset
            arena = max(arena, offset + size)
        }
        var offsets = [Int?](repeating: nil, count: n)
        for (i, s) in graph.steps.enumerated() where s.live && !external.contains(i) && !s.fusedIntoConsumer {
            let (r, o) = resolve(i)
            if let base = ownerOffset[r] { offsets[i] = base + o }
        }
        return MemoryPlan(offsets: offsets, inPlace: inPlace, arenaBytes: arena, unplannedBytes: unplanned)
    }
}
