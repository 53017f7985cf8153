import Foundation
import VQAnalysis
import VQRecord
import CVQSys

// The loop of `vqtap top`: a producer thread (the live tap or a file replay) pushes records
// into a feed; the loop analyses them in slices of at most `frameBudgetNs`, reads keys
// between slices and redraws from a fresh snapshot once per `--delay` (htop's timed loop).
// A live producer never waits: when the view falls behind by a full feed, further records
// are skipped and counted, so memory stays bounded and keys keep answering. Pausing
// freezes the snapshot (and a replay); the analysis goes on.

/// Records handed from a producer thread to the loop, with back-pressure for replays.
public final class RecordFeed: @unchecked Sendable {
    private let lock = NSCondition()
    /// The producers' batches as they came (no record is copied on the way); those before
    /// `head` and the first `offset` records of `batches[head]` are consumed.
    private var batches: [[CaptureRecord]] = []
    private var head = 0
    private var offset = 0
    private var queued = 0
    private var finished = false
    private var failure: String?
    private var stop = false
    private var pausedFlag = false
    private var skippedRecords: UInt64 = 0
    /// Records queued at most; a producer that does not wait loses what comes beyond.
    public let capacity: Int

    /// 131,072 records: 130 ms of a device at 500,000 chains/s, what a core shared by the view,
    /// its snapshot thread and the tap can take away at once (65,536 skipped a burst in one run of four).
    public init(capacity: Int = 1 << 17) { self.capacity = max(1, capacity) }

    /// Adds records. With `wait` (a replay) it waits while the feed is full or paused;
    /// without (a live tap, which cannot slow the device down) a full feed skips the batch
    /// and counts it. Returns false once the consumer wants no more.
    @discardableResult
    public func push(_ records: [CaptureRecord], wait: Bool = true) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        while wait && !stop && (queued >= capacity || pausedFlag) { lock.wait() }
        if stop { return false }
        if !wait && queued >= capacity {
            skippedRecords += UInt64(records.count)
            return true
        }
        if !records.isEmpty {
            batches.append(records)
            queued += records.count
        }
        return true
    }

    /// The producer is done (`error`: why it stopped early).
    public func finish(error: String? = nil) {
        lock.lock()
        finished = true
        failure = error
        lock.broadcast()
        lock.unlock()
    }

    /// Up to `limit` of the oldest queued records, as slices of the producers' batches.
    /// `finished` once the producer is done and nothing is left; `more` when records remain.
    public func takeSlices(upTo limit: Int) -> (slices: [ArraySlice<CaptureRecord>], finished: Bool, error: String?, more: Bool) {
        lock.lock()
        defer { lock.unlock() }
        var slices: [ArraySlice<CaptureRecord>] = []
        var wanted = max(0, limit)
        while wanted > 0 && head < batches.count {
            let batch = batches[head]
            let n = min(wanted, batch.count - offset)
            slices.append(batch[offset..<offset + n])
            wanted -= n
            queued -= n
            offset += n
            if offset == batch.count {
                batches[head] = []
                head += 1
                offset = 0
            }
        }
        if head == batches.count {
            batches.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 {
            // What is left is at most `capacity` records: moving it is bounded, and a
            // producer that stays ahead (a live tap's small batches) does not grow the list.
            batches.removeFirst(head)
            head = 0
        }
        lock.broadcast()
        return (slices, finished && queued == 0, failure, queued > 0)
    }

    /// Up to `limit` of the oldest queued records (see `takeSlices`).
    public func take(upTo limit: Int) -> (records: [CaptureRecord], finished: Bool, error: String?, more: Bool) {
        let t = takeSlices(upTo: limit)
        return (t.slices.flatMap { $0 }, t.finished, t.error, t.more)
    }

    /// Every queued record.
    public func drain() -> (records: [CaptureRecord], finished: Bool, error: String?) {
        let t = take(upTo: Int.max)
        return (t.records, t.finished, t.error)
    }

    /// Records a live producer could not queue because the view was behind.
    public var skipped: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return skippedRecords
    }

    /// Waits (at most `timeoutNs`) for the producer to finish, so that the process does
    /// not exit under a thread still running.
    @discardableResult
    public func waitUntilFinished(timeoutNs: UInt64) -> Bool {
        let deadline = Date(timeIntervalSinceNow: Double(timeoutNs) / 1e9)
        lock.lock()
        defer { lock.unlock() }
        while !finished {
            if !lock.wait(until: deadline) { return finished }
        }
        return true
    }

    public var stopRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stop
    }

    public func requestStop() {
        lock.lock()
        stop = true
        lock.broadcast()
        lock.unlock()
    }

    public var paused: Bool {
        get { lock.lock(); defer { lock.unlock() }; return pausedFlag }
        set { lock.lock(); pausedFlag = newValue; lock.broadcast(); lock.unlock() }
    }
}

/// What a run of the loop did: for `top --bench` and the benchmark.
public struct TopRunStats: Sendable, Equatable {
    /// Records analysed, and skipped by the feed because the view was behind.
    public var records: UInt64 = 0
    public var skipped: UInt64 = 0
    /// Snapshots drawn or printed, and what they cost (snapshot + render).
    public var frames: UInt64 = 0
    public var frameNsTotal: UInt64 = 0
    public var frameNsMax: UInt64 = 0
    /// The longest stretch between two looks at the keyboard (or at signals in text mode):
    /// a bound on how late a key is handled.
    public var maxKeyGapNs: UInt64 = 0
    public var elapsedNs: UInt64 = 0

    public init() {}

    public var frameNsMean: UInt64 { frames == 0 ? 0 : frameNsTotal / frames }
}

public struct TopRunner {
    public var source: String
    public var delayNs: UInt64 = 1_000_000_000
    public var durationNs: UInt64?
    /// Where `durationNs` counts from (monotonic ns); nil: the start of the loop.
    public var startNs: UInt64?
    /// Live sources: the clock records are stamped with (stuck ages and eventq checks
    /// follow it when no record comes). nil for replays: the data's own time.
    public var clock: (@Sendable () -> UInt64)?
    public var monochrome = false
    /// Analysis time per turn of the loop before it looks at the keys again.
    public var frameBudgetNs: UInt64 = 30_000_000
    /// Records taken from the feed at a time (the budget is checked between slices).
    public var sliceRecords = 2048
    public private(set) var stats = TopRunStats()

    public init(source: String) { self.source = source }

    public static func realtimeNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Analyses queued records for at most the frame budget. `more`: records are still
    /// queued (the loop should not sleep).
    private mutating func consume(_ feed: RecordFeed, _ analyzer: inout Analyzer) -> (finished: Bool, error: String?, more: Bool) {
        let start = Self.monotonicNs()
        var result: (finished: Bool, error: String?, more: Bool)
        repeat {
            let t = feed.takeSlices(upTo: sliceRecords)
            for slice in t.slices {
                // Read in place: `for r in slice` copies each record (a retain and a release
                // of its segment lists).
                slice.withUnsafeBufferPointer { records in
                    for i in records.indices { analyzer.consume(records[i]) }
                }
                stats.records += UInt64(slice.count)
            }
            result = (t.finished, t.error, t.more)
        } while result.more && Self.monotonicNs() - start < frameBudgetNs
        if let clock { analyzer.tick(at: clock()) }
        stats.skipped = feed.skipped
        return result
    }

    private func snapshot(_ a: Analyzer, finished: Bool) -> TopSnapshot {
        Self.snapshot(a, source: source, clock: clock, finished: finished, skipped: stats.skipped)
    }

    private static func snapshot(_ a: Analyzer, source: String, clock: (@Sendable () -> UInt64)?, finished: Bool, skipped: UInt64) -> TopSnapshot {
        var s = TopSnapshot(analyzer: a, source: source, nowNs: clock.map { max($0(), a.matcher.lastNs) }, finished: finished)
        s.viewSkipped = skipped
        return s
    }

    /// Starts a snapshot of the analysis as it is now on the worker's thread (a copy of the
    /// analyzer: its storage is shared until the loop next changes it).
    private func startSnapshot(_ worker: SnapshotWorker, _ a: Analyzer, finished: Bool) {
        let copy = AnalyzerCopy(a)
        let source = self.source, clock = self.clock, skipped = stats.skipped
        worker.start { Self.snapshot(copy.analyzer, source: source, clock: clock, finished: finished, skipped: skipped) }
    }

    /// Records are allocated by the tap's thread and freed by this one; glibc then spreads
    /// them over several arenas and keeps what was freed (RSS grew by 4 MB/s at 200,000
    /// chains/s with nothing kept). Once per refresh, the free pages go back to the system.
    static func returnFreedMemory() {
        _ = vq_return_freed_memory()
    }

    private mutating func countFrame(_ ns: UInt64) {
        stats.frames += 1
        stats.frameNsTotal += ns
        stats.frameNsMax = max(stats.frameNsMax, ns)
    }

    /// The interactive view. Returns the producer's error, if it stopped with one.
    public mutating func runInteractive(feed: RecordFeed, analyzer: inout Analyzer) -> String? {
        let terminal = CursesTerminal(monochrome: monochrome)
        defer {
            terminal.restore()
            feed.requestStop()
        }
        var state = ViewState()
        let loopStart = Self.monotonicNs()
        let start = startNs ?? loopStart
        defer { stats.elapsedNs = Self.monotonicNs() - loopStart }
        let worker = SnapshotWorker()
        defer { worker.close() }
        var nextDraw: UInt64 = 0
        var current: TopSnapshot?
        var dirty = true
        var error: String?
        var lastKeyLook = loopStart
        while TerminalSignals.received == 0 {
            let (finished, e, more) = consume(feed, &analyzer)
            error = e
            let now = Self.monotonicNs()
            if let durationNs, now >= start, now - start >= durationNs { break }
            if current == nil {
                // The first screen at once (the analysis is still small).
                let t0 = Self.monotonicNs()
                current = snapshot(analyzer, finished: finished)
                countFrame(Self.monotonicNs() - t0)
                nextDraw = now + delayNs
            } else if now >= nextDraw && !state.paused && !worker.isBusy {
                // Built meanwhile on the worker: the loop goes on analysing and reading keys.
                startSnapshot(worker, analyzer, finished: finished)
                Self.returnFreedMemory()
                nextDraw = now + delayNs
            }
            if let (fresh, ns) = worker.take() {
                if !state.paused { current = fresh; dirty = true }
                countFrame(ns)
            }
            if dirty, let current {
                let (w, h) = terminal.size
                terminal.draw(TopView.render(current, state, width: w, height: h))
                dirty = false
            }
            // A key pressed since the last look waits at most this long.
            stats.maxKeyGapNs = max(stats.maxKeyGapNs, Self.monotonicNs() - lastKeyLook)
            // Behind: only a glance at the keyboard; idle: wait for a key a while.
            let key = terminal.readKey(timeoutMs: more ? 0 : 50)
            lastKeyLook = Self.monotonicNs()
            guard let key else { continue }
            switch state.handle(key) {
            case .quit: return error
            case .reset:
                analyzer.reset()
                _ = worker.wait()
                current = snapshot(analyzer, finished: finished)
                dirty = true
            case .redraw:
                feed.paused = state.paused
                dirty = true
            case .none: break
            }
        }
        return error
    }

    /// Without a terminal: the overview as text once per interval (a pipe, a log, CI),
    /// and once more at the end. Snapshots are built on a worker as in the terminal view.
    public mutating func runText(feed: RecordFeed, analyzer: inout Analyzer, width: Int = 100, write: (String) -> Void) -> String? {
        defer { feed.requestStop() }
        let loopStart = Self.monotonicNs()
        let start = startNs ?? loopStart
        defer { stats.elapsedNs = Self.monotonicNs() - loopStart }
        let worker = SnapshotWorker()
        defer { worker.close() }
        var nextPrint = loopStart + delayNs
        var error: String?
        var lastLook = loopStart
        while TerminalSignals.received == 0 {
            let (finished, e, more) = consume(feed, &analyzer)
            error = e
            let now = Self.monotonicNs()
            let timeUp = durationNs.map { now >= start && now - start >= $0 } ?? false
            if finished || timeUp {
                // The last screen: the whole run, built here.
                if let (fresh, ns) = worker.wait() {
                    write(Self.overviewText(fresh, width: width))
                    countFrame(ns)
                }
                let t0 = Self.monotonicNs()
                write(Self.overviewText(snapshot(analyzer, finished: finished), width: width))
                countFrame(Self.monotonicNs() - t0)
                break
            }
            if now >= nextPrint && !worker.isBusy {
                startSnapshot(worker, analyzer, finished: finished)
                Self.returnFreedMemory()
                nextPrint = now + delayNs
            }
            if let (fresh, ns) = worker.take() {
                write(Self.overviewText(fresh, width: width))
                countFrame(ns)
            }
            stats.maxKeyGapNs = max(stats.maxKeyGapNs, Self.monotonicNs() - lastLook)
            if !more { usleep(worker.isBusy ? 2_000 : 20_000) }
            lastLook = Self.monotonicNs()
        }
        return error
    }

    /// The overview screen as plain text, without its key line.
    public static func overviewText(_ s: TopSnapshot, width: Int = 100) -> String {
        let b = TopView.render(s, ViewState(), width: width, height: 40)
        var lines = b.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast()  // the key line
        lines.remove(at: 1)  // the tabs
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// An analyzer handed to the snapshot worker. A copy: the loop's next change copies what it
/// changes, so the worker reads a consistent state while the loop goes on.
private final class AnalyzerCopy: @unchecked Sendable {
    let analyzer: Analyzer
    init(_ analyzer: Analyzer) { self.analyzer = analyzer }
}

/// Builds one snapshot at a time on a thread of its own, so that a snapshot of a large
/// analysis (tens of ms) never keeps the loop from the keyboard. One thread for the whole
/// run (a thread per snapshot would spread its allocations over new malloc arenas).
final class SnapshotWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var job: (@Sendable () -> TopSnapshot)?
    private var busy = false
    private var closed = false
    private var result: (TopSnapshot, UInt64)?

    init() {
        let thread = Thread { [self] in serve() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func serve() {
        condition.lock()
        while true {
            while job == nil && !closed { condition.wait() }
            guard let make = job else { break }
            job = nil
            condition.unlock()
            let t0 = TopRunner.monotonicNs()
            let snapshot = make()
            let ns = TopRunner.monotonicNs() - t0
            condition.lock()
            result = (snapshot, ns)
            busy = false
            condition.broadcast()
        }
        condition.unlock()
    }

    /// The thread ends after the snapshot it is building, if any (the loops close their
    /// worker when they return).
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    var isBusy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return busy
    }

    /// Starts `make` unless a snapshot is being built.
    func start(_ make: @escaping @Sendable () -> TopSnapshot) {
        condition.lock()
        defer { condition.unlock() }
        guard !busy && !closed else { return }
        busy = true
        result = nil
        job = make
        condition.broadcast()
    }

    /// The finished snapshot and what it took to build, once.
    func take() -> (TopSnapshot, UInt64)? {
        condition.lock()
        defer { condition.unlock() }
        let r = result
        result = nil
        return r
    }

    /// Waits for the snapshot being built, if any, and takes it.
    func wait() -> (TopSnapshot, UInt64)? {
        condition.lock()
        while busy { condition.wait() }
        condition.unlock()
        return take()
    }
}
