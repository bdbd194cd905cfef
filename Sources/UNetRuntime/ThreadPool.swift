import Foundation

/// A persistent pool of worker threads that runs the tiles of one step at a time.
///
/// Tiles are handed out in any order, but every tile writes a disjoint part of the output and
/// computes it in a fixed order, so results are bit-identical for any thread count.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let state = State()
    /// One scratch area per thread (the caller is 0), reused by every tile that thread runs.
    let scratch: [Scratch]

    /// Shared with the workers, which outlive the pool object by the moment it takes them to see the shutdown.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var job: ((Int, Int) -> Void)?
        var tileCount = 0
        var nextTile = 0
        var finished = 0
        var generation = 0
        var shuttingDown = false

        func runTiles(worker: Int) {
            while true {
                condition.lock()
                guard let body = job, nextTile < tileCount else {
                    condition.unlock()
                    return
                }
                let tile = nextTile
                nextTile += 1
                condition.unlock()
                body(tile, worker)
                condition.lock()
                finished += 1
                if finished == tileCount { condition.broadcast() }
                condition.unlock()
            }
        }

        func workerLoop(worker: Int) {
            var seen = 0
            while true {
                condition.lock()
                while generation == seen && !shuttingDown { condition.wait() }
                seen = generation
                let stop = shuttingDown
                condition.unlock()
                if stop { return }
                runTiles(worker: worker)
            }
        }
    }

    /// `threads` counts the calling thread: a pool of 2 starts one worker.
    public init(threads: Int) {
        self.threads = max(1, threads)
        scratch = (0..<self.threads).map { _ in Scratch() }
        for worker in 1..<self.threads {
            let state = self.state
            let thread = Thread { state.workerLoop(worker: worker) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        state.condition.lock()
        state.shuttingDown = true
        state.generation += 1
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// Runs `body(0..<count)`, spread over the pool; returns when every tile is done.
    public func parallelFor(_ count: Int, _ body: @escaping (Int) -> Void) {
        parallelFor(count, tiles: { (tile: Int, _: Int) in body(tile) })
    }

    /// Runs `body(tile, scratch)` for every tile; `scratch` belongs to the running thread for the tile's duration.
    func parallelFor(_ count: Int, withScratch body: @escaping (Int, Scratch) -> Void) {
        let areas = scratch
        parallelFor(count, tiles: { (tile: Int, worker: Int) in body(tile, areas[worker]) })
    }

    /// `body(tile, worker)` with the index of the thread running it (0 is the caller).
    func parallelFor(_ count: Int, tiles body: @escaping (Int, Int) -> Void) {
        if count <= 0 { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        let s = state
        s.condition.lock()
        s.job = body
        s.tileCount = count
        s.nextTile = 0
        s.finished = 0
        s.generation += 1
        s.condition.broadcast()
        s.condition.unlock()
        s.runTiles(worker: 0)
        s.condition.lock()
        while s.finished < s.tileCount { s.condition.wait() }
        s.job = nil
        s.condition.unlock()
    }
}

/// Per-thread scratch memory in a few numbered regions that grow on demand and are never shrunk,
/// so tiles do not allocate.
final class Scratch: @unchecked Sendable {
    private var regions: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    func region(_ index: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while regions.count <= index { regions.append((UnsafeMutablePointer<Float>.allocate(capacity: 16), 16)) }
        if regions[index].capacity < count {
            regions[index].pointer.deallocate()
            let capacity = max(count, regions[index].capacity * 2)
            regions[index] = (UnsafeMutablePointer<Float>.allocate(capacity: capacity), capacity)
        }
        return regions[index].pointer
    }

    deinit { for r in regions { r.pointer.deallocate() } }
}
