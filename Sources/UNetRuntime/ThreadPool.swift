import Foundation

/// A persistent pool of worker threads that runs the tiles of one step at a time.
///
/// Tiles are handed out in any order, but every tile writes a disjoint part of the output and
/// computes it in a fixed order, so results are bit-identical for any thread count.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let condition = NSCondition()
    private var job: ((Int) -> Void)?
    private var tileCount = 0
    private var nextTile = 0
    private var finished = 0
    private var generation = 0
    private var shuttingDown = false

    /// `threads` counts the calling thread: a pool of 2 starts one worker.
    public init(threads: Int) {
        self.threads = max(1, threads)
        for _ in 1..<self.threads {
            let thread = Thread { [unowned self] in self.workerLoop() }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        condition.lock()
        shuttingDown = true
        generation += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body(0..<count)`, spread over the pool; returns when every tile is done.
    public func parallelFor(_ count: Int, _ body: @escaping (Int) -> Void) {
        if count <= 0 { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        condition.lock()
        job = body
        tileCount = count
        nextTile = 0
        finished = 0
        generation += 1
        condition.broadcast()
        condition.unlock()
        runTiles()
        condition.lock()
        while finished < tileCount { condition.wait() }
        job = nil
        condition.unlock()
    }

    private func runTiles() {
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

    private func workerLoop() {
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
