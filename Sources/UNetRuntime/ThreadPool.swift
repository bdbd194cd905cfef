import Foundation

import Synchronization

/// A persistent pool of worker threads that runs the tiles of one step at a time.
///
/// Tiles are handed out in any order, but every tile writes a disjoint part of the output and
/// computes it in a fixed order, so results are bit-identical for any thread count.
///
/// A UNet runs a few hundred steps back to back, many of them a millisecond or less, so handing
/// work over must cost microseconds: tiles are claimed with one atomic compare-and-swap, idle
/// workers spin for the next step (up to 2 ms) before they sleep, and the caller spins for the last
/// tiles instead of sleeping on a condition (a futex wake-up on a virtual machine can take
/// longer than a small step).
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let state = State()
    /// One scratch area per thread (the caller is 0), reused by every tile that thread runs.
    let scratch: [Scratch]

    /// Shared with the workers, which outlive the pool object by the moment it takes them to see the shutdown.
    private final class State: @unchecked Sendable {
        /// The job's generation (high 32 bits) and its next unclaimed tile (low 32 bits): a worker
        /// still looking at a finished job cannot claim a tile of the next one.
        let claim = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        let shuttingDown = Atomic<Bool>(false)
        /// Workers asleep on `condition`; the caller wakes them only when there are some.
        let sleepers = Atomic<Int>(0)
        let condition = NSCondition()
        /// The job and the generation it belongs to, under `condition`'s lock (taken once per job
        /// by each thread, never per tile).
        var job: ((Int, Int) -> Void)?
        var jobGeneration = 0
        var tileCount = 0

        /// How long an idle worker spins before it sleeps. A run's serial stretches (small steps
        /// the caller runs alone, the time embedding's linears) last longer than the 20 000 spins
        /// (about 20 µs) this was: the DDPM UNet's worker then slept and was woken about 300 times
        /// a run (strace: 7 276 futex calls in 21 runs, 361 with 2 ms), and at 2 threads its
        /// medians fell into two groups, 53-55 and 63-68 ms, in one bench.
        static let spinNanoseconds: UInt64 = 2_000_000

        /// Claims and runs tiles of generation `generation` until none is left.
        func runTiles(generation: Int, worker: Int) {
            condition.lock()
            let current = jobGeneration == generation ? job : nil
            let count = tileCount
            condition.unlock()
            guard let body = current else { return }
            var word = claim.load(ordering: .acquiring)
            while word >> 32 == generation, word & 0xFFFF_FFFF < count {
                let (exchanged, current) = claim.compareExchange(expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
                guard exchanged else { word = current; continue }
                body(word & 0xFFFF_FFFF, worker)
                finished.wrappingAdd(1, ordering: .releasing)
                word = claim.load(ordering: .acquiring)
            }
        }

        func workerLoop(worker: Int) {
            var seen = 0
            while true {
                var spins = 0
                var spinning = true
                let start = DispatchTime.now().uptimeNanoseconds
                var generation = claim.load(ordering: .acquiring) >> 32
                while generation == seen && !shuttingDown.load(ordering: .acquiring) {
                    if spinning {
                        spins += 1
                        // The clock every 1024 spins: a few microseconds apart.
                        if spins & 1023 == 0 { spinning = DispatchTime.now().uptimeNanoseconds - start < Self.spinNanoseconds }
                    } else {
                        condition.lock()
                        sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                        while claim.load(ordering: .sequentiallyConsistent) >> 32 == seen && !shuttingDown.load(ordering: .sequentiallyConsistent) {
                            condition.wait()
                        }
                        sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                        condition.unlock()
                    }
                    generation = claim.load(ordering: .acquiring) >> 32
                }
                if shuttingDown.load(ordering: .acquiring) { return }
                seen = generation
                runTiles(generation: generation, worker: worker)
            }
        }

        /// Publishes a job and wakes sleeping workers.
        func publish(_ body: @escaping (Int, Int) -> Void, count: Int) -> Int {
            // 31 bits of generation, so the claim word never turns negative (it wraps after 2^31 jobs).
            let generation = ((claim.load(ordering: .relaxed) >> 32) + 1) & 0x7FFF_FFFF
            condition.lock()
            job = body
            jobGeneration = generation
            tileCount = count
            condition.unlock()
            finished.store(0, ordering: .relaxed)
            claim.store(generation << 32, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            return generation
        }

        func clear() {
            condition.lock()
            job = nil
            condition.unlock()
        }

        func shutdown() {
            shuttingDown.store(true, ordering: .sequentiallyConsistent)
            condition.lock()
            condition.broadcast()
            condition.unlock()
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

    deinit { state.shutdown() }

    /// Wakes sleeping workers with an empty job, so they are spinning, not asleep, when the next
    /// steps' tiles come (a run's first parallel steps otherwise wait for a futex wake-up).
    public func wake() {
        guard threads > 1 else { return }
        _ = state.publish({ _, _ in }, count: 0)
    }

    /// Runs `body(0..<count)`, spread over the pool; returns when every tile is done.
    public func parallelFor(_ count: Int, _ body: @escaping (Int) -> Void) {
        parallelFor(count, tiles: { (tile: Int, _: Int) in body(tile) })
    }

    /// Floats moved below which a memory-bound step (a normalization, a resampling) runs on the
    /// calling thread alone, the hand-off costing more than the split saves. Run alone at two
    /// threads, a step reads half its input from the other core's cache: the DDPM UNet's GroupNorms
    /// of 8x8 maps of 256 channels (64K floats moved, 0.013-0.017 ms at one thread) took 2-8 µs
    /// longer at two than at one with 2^17 here, and as long as at one thread split. At 4x4 (16K
    /// floats) the split still costs more than it saves.
    static let serialElements = 1 << 15

    /// Tasks a memory-bound step's tiles are grouped into, per thread.
    static let tasksPerThread = 8

    /// `parallelFor` for a memory-bound step over `elements` floats: on the calling thread when
    /// small, else its tiles (often hundreds of channel planes) in runs of consecutive ones. Claimed
    /// one by one, each tile moved the claim word between the cores: a DDPM pad of 256 16x16 planes
    /// took 0.05 ms on two threads against 0.02 ms on one.
    func parallelFor(_ count: Int, elements: Int, _ body: @escaping (Int) -> Void) {
        if elements < Self.serialElements {
            for i in 0..<count { body(i) }
            return
        }
        let tasks = min(count, Self.tasksPerThread * threads)
        let perTask = (count + max(tasks, 1) - 1) / max(tasks, 1)
        if perTask <= 1 {
            parallelFor(count, body)
            return
        }
        parallelFor((count + perTask - 1) / perTask) { task in
            for i in (task * perTask)..<min(count, (task + 1) * perTask) { body(i) }
        }
    }

    /// Runs `body(tile, scratch)` for every tile; `scratch` belongs to the running thread for the tile's duration.
    func parallelFor(_ count: Int, withScratch body: @escaping (Int, Scratch) -> Void) {
        let areas = scratch
        parallelFor(count, tiles: { (tile: Int, worker: Int) in body(tile, areas[worker]) })
    }

    /// `body(tile, worker)` with the index of the thread running it (0 is the caller).
    func parallelFor(_ count: Int, tiles body: @escaping (Int, Int) -> Void) {
        if count <= 0 { return }
        // The claim word keeps tile indices in 32 bits; no step has anywhere near that many tiles.
        if threads == 1 || count == 1 || count >= 1 << 32 {
            for i in 0..<count { body(i, 0) }
            return
        }
        let s = state
        let generation = s.publish(body, count: count)
        s.runTiles(generation: generation, worker: 0)
        var spins = 0
        while s.finished.load(ordering: .acquiring) < count {
            spins += 1
            // A worker descheduled in the middle of a tile: give it the core.
            if spins % 4096 == 0 { sched_yield() }
        }
        s.clear()
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
