import Foundation

/// A persistent pool of worker threads that runs the tiles of one step at a time.
///
/// Tiles are handed out in any order, but every tile writes a disjoint part of the output and
/// computes it in a fixed order, so results are bit-identical for any thread count.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let state = State()

    /// Shared with the workers, which outlive the pool object by the moment it takes them to see the shutdown.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var job: ((Int) -> Void)?
        var tileCount = 0
        var nextTile = 0
        var finished = 0
        var generation = 0
        var shuttingDown = false

        func runTiles() {
            while true {
                condition.lock()
                guard let body = job, nextTile < tileCount else {
                    condition.unlock()
                    return
                }
                let tile = nextTile
                nextTile += 1
                condition.unlock()
                body(tile)
                condition.lock()
                finished += 1
                if finished == tileCount { condition.broadcast() }
                condition.unlock()
            }
        }

        func workerLoop() {
            var seen = 0
            while true {
                condition.lock()
                while generation == seen && !shuttingDown { condition.wait() }
                seen = generation
                let stop = shuttingDown
                condition.unlock()
                if stop { return }
                runTiles()
            }
        }
    }

    /// `threads` counts the calling thread: a pool of 2 starts one worker.
    public init(threads: Int) {
        self.threads = max(1, threads)
        for _ in 1..<self.threads {
            let state = self.state
            let thread = Thread { state.workerLoop() }
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
        if count <= 0 { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
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
        s.runTiles()
        s.condition.lock()
        while s.finished < s.tileCount { s.condition.wait() }
        s.job = nil
        s.condition.unlock()
    }
}
