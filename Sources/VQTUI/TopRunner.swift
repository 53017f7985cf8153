import Foundation
import VQAnalysis
import VQRecord

// The loop of `vqtap top`: a producer thread (the live tap or a file replay) pushes records
// into a feed; the loop drains it into the analyzer, reads keys every 50 ms and redraws
// from a fresh snapshot once per `--delay` (htop's timed loop). Pausing freezes the
// snapshot (and a replay); the analysis goes on.

/// Records handed from a producer thread to the loop, with back-pressure for replays.
public final class RecordFeed: @unchecked Sendable {
    private let lock = NSCondition()
    private var buffer: [CaptureRecord] = []
    private var finished = false
    private var failure: String?
    private var stop = false
    private var pausedFlag = false
    public let capacity: Int

    public init(capacity: Int = 1 << 18) { self.capacity = capacity }

    /// Adds records; waits while the feed is full or paused when `wait` is set (a replay).
    /// Returns false once the consumer wants no more.
    @discardableResult
    public func push(_ records: [CaptureRecord], wait: Bool = true) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        while wait && !stop && (buffer.count >= capacity || pausedFlag) { lock.wait() }
        if stop { return false }
        buffer.append(contentsOf: records)
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

    public func drain() -> (records: [CaptureRecord], finished: Bool, error: String?) {
        lock.lock()
        defer { lock.unlock() }
        let out = buffer
        buffer.removeAll(keepingCapacity: true)
        lock.broadcast()
        return (out, finished, failure)
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

public struct TopRunner {
    public var source: String
    public var delayNs: UInt64 = 1_000_000_000
    public var durationNs: UInt64?
    /// Live sources: the clock records are stamped with (stuck ages and eventq checks
    /// follow it when no record comes). nil for replays: the data's own time.
    public var clock: (@Sendable () -> UInt64)?
    public var monochrome = false

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

    private func consume(_ feed: RecordFeed, _ analyzer: inout Analyzer) -> (finished: Bool, error: String?) {
        let (records, finished, error) = feed.drain()
        for r in records { analyzer.consume(r) }
        if let clock { analyzer.tick(at: clock()) }
        return (finished, error)
    }

    private func snapshot(_ a: Analyzer, finished: Bool) -> TopSnapshot {
        TopSnapshot(analyzer: a, source: source, nowNs: clock.map { max($0(), a.matcher.lastNs) }, finished: finished)
    }

    /// The interactive view. Returns the producer's error, if it stopped with one.
    public func runInteractive(feed: RecordFeed, analyzer: inout Analyzer) -> String? {
        let terminal = CursesTerminal(monochrome: monochrome)
        defer {
            terminal.restore()
            feed.requestStop()
        }
        var state = ViewState()
        let start = Self.monotonicNs()
        var nextDraw: UInt64 = 0
        var current: TopSnapshot?
        var dirty = true
        var error: String?
        while TerminalSignals.received == 0 {
            let (finished, e) = consume(feed, &analyzer)
            error = e
            let now = Self.monotonicNs()
            if let durationNs, now - start >= durationNs { break }
            if now >= nextDraw || current == nil {
                if !state.paused || current == nil { current = snapshot(analyzer, finished: finished) }
                nextDraw = now + delayNs
                dirty = true
            }
            if dirty, let current {
                let (w, h) = terminal.size
                terminal.draw(TopView.render(current, state, width: w, height: h))
                dirty = false
            }
            guard let key = terminal.readKey(timeoutMs: 50) else { continue }
            switch state.handle(key) {
            case .quit: return error
            case .reset:
                analyzer.reset()
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
    /// and once more at the end.
    public func runText(feed: RecordFeed, analyzer: inout Analyzer, width: Int = 100, write: (String) -> Void) -> String? {
        defer { feed.requestStop() }
        let start = Self.monotonicNs()
        var nextPrint = start + delayNs
        var error: String?
        while TerminalSignals.received == 0 {
            let (finished, e) = consume(feed, &analyzer)
            error = e
            let now = Self.monotonicNs()
            let timeUp = durationNs.map { now - start >= $0 } ?? false
            if now >= nextPrint || finished || timeUp {
                write(Self.overviewText(snapshot(analyzer, finished: finished), width: width))
                nextPrint = now + delayNs
            }
            if finished || timeUp { break }
            usleep(20_000)
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
