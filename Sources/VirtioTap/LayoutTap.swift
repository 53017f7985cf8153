import CVQSys
import Foundation
import VQRecord
import VirtioRing

// Attaching through a layout file (man/vqtap-layout.5, man/vqtap-capture.1): wait for the
// file, map guest memory read-only, poll every queue, follow the file when it is rewritten
// (a new generation: the driver reset the device and the rings start again at index 0),
// and stop cleanly, with the records so far delivered, when the device goes away (the
// layout's pid exits, the file disappears, guest memory is truncated).

/// How the poll loop waits when there is nothing new.
public enum PollMode: String, Sendable, CaseIterable {
    /// Never sleep: the lowest latency, a whole core.
    case busy
    /// Spin while traffic flows (20 ms after the last chain when chains come at least every
    /// 10 ms, 1 ms after one that comes now and then), then sleep longer and longer (50 us to
    /// 4 ms) while idle.
    case adaptive
}

/// Why a capture ended.
public enum TapOutcome: Sendable, Equatable {
    /// The caller asked (count reached, duration over, a signal).
    case stopped
    /// The device or its memory went away; the message says how.
    case deviceGone(String)
}

public struct LayoutTapOptions: Sendable {
    public var layoutPath: String
    /// Wait for the file (and for the device to be ready) instead of failing.
    public var wait: Bool
    /// How long `wait` waits; nil: forever.
    public var waitTimeoutNs: UInt64?
    public var snaplen: Int
    public var limits: ChainLimits
    public var pollMode: PollMode
    /// How often the layout file, the pid and the memory files are looked at.
    public var watchIntervalNs: UInt64
    /// The framer for a device as its layout describes it (cdb_size and sense_size may
    /// change with every generation).
    public var framer: @Sendable (DeviceLayout) -> any ChainFramer
    /// Time every turn of the polling loop (`stalls`): diagnostics, off by default because
    /// it costs three clock reads a turn.
    public var measuresStalls = false

    public init(layoutPath: String, wait: Bool = false, waitTimeoutNs: UInt64? = nil, snaplen: Int = 64,
                limits: ChainLimits = ChainLimits(), pollMode: PollMode = .adaptive, watchIntervalNs: UInt64 = 20_000_000,
                framer: @escaping @Sendable (DeviceLayout) -> any ChainFramer = { _ in OpaqueFramer() }) {
        self.layoutPath = layoutPath; self.wait = wait; self.waitTimeoutNs = waitTimeoutNs; self.snaplen = snaplen
        self.limits = limits; self.pollMode = pollMode; self.watchIntervalNs = watchIntervalNs; self.framer = framer
    }
}

/// What the loop does with each batch of records: returns false to stop.
public typealias RecordDelivery = (_ records: [CaptureRecord]) -> Bool

public final class LayoutTap {
    public let options: LayoutTapOptions
    public private(set) var poller: DevicePoller<MappedGuestMemory>?
    public private(set) var memory: MappedGuestMemory?
    public private(set) var layout: DeviceLayout?
    var earlierTornReasons = TornReasons()
    /// How long the polling loop went between two loads of the indices (diagnostics).
    public internal(set) var stalls = LoopStalls()
    /// Counters of earlier generations (a reset starts new queue pollers).
    var earlier: [UInt16: TapCounters] = [:]
    let clock = TapClock()
    var fileIdentity: FileIdentity?
    /// The delivery asked to stop during attach (a count reached by the snapshot).
    var deliveryStopped = false
    /// When the first attach happened (monotonic+offset ns), for --duration.
    public private(set) var firstAttachNs: UInt64?
    /// Where layouts come from when not from `options.layoutPath` (QEMU over QMP).
    public let provider: (any LayoutProvider)?

    /// How long the adaptive loop keeps spinning after the last new entry. Traffic that
    /// flows (an entry every 10 ms or more often, on average) keeps the tap spinning, so
    /// each chain is copied before its buffers can be reused: a tap that sleeps between
    /// chains copies them late, and a late copy of a returned chain is torn. A device that
    /// makes a request now and then costs 1 ms of spin each, enough to see its completion
    /// (20 ms cost 2% of a core at one request a second, measured).
    static let busyWhileFlowingNs: UInt64 = 20_000_000
    /// A poll that brought this many records or more found the device ahead of the tap: the
    /// next one starts no sooner than `batchingGapNs` after it started.
    static let fullPollRecords = 8
    static let batchingGapNs: UInt64 = 2_000
    static let busyAfterStrayNs: UInt64 = 1_000_000
    static let flowingGapNs: UInt64 = 10_000_000

    public init(options: LayoutTapOptions, provider: (any LayoutProvider)? = nil) {
        self.options = options
        self.provider = provider
    }

    // MARK: - Attach

    /// Loads the layout, waiting for it (and for `ready`) if asked. Throws a one-line error.
    func loadReadyLayout(deadline: UInt64?, shouldStop: () -> Bool) throws(TapError) -> DeviceLayout? {
        if let provider { return try providerReadyLayout(provider, deadline: deadline, shouldStop: shouldStop) }
        var lastProblem = "\(options.layoutPath): no such file"
        while true {
            if FileManager.default.fileExists(atPath: options.layoutPath) {
                do {
                    let l = try DeviceLayout.load(path: options.layoutPath)
                    if l.status == .ready {
                        if let pid = l.pid, !Self.processExists(pid) {
                            lastProblem = "\(options.layoutPath): the device's process \(pid) is not running"
                        } else {
                            return l
                        }
                    } else {
                        lastProblem = "\(options.layoutPath): the device is resetting (status \"resetting\")"
                    }
                } catch {
                    lastProblem = "\(error)"
                }
            }
            guard options.wait else { throw TapError(lastProblem) }
            if let deadline, clock.now() >= deadline { throw TapError("gave up waiting: \(lastProblem)") }
            if shouldStop() { return nil }
            usleep(10_000)
        }
    }

    /// Maps guest memory and starts the pollers. `state` says why (attached, re-attached).
    func start(_ layout: DeviceLayout, state: DeviceStateMarker.State, fresh: Bool, into out: inout [CaptureRecord]) throws(TapError) {
        let memory: MappedGuestMemory
        if let old = self.memory, let oldLayout = self.layout, oldLayout.regions == layout.regions, old.isIntact {
            memory = old
        } else {
            memory = try MappedGuestMemory(layout: layout)
        }
        if let old = poller {
            for (q, c) in old.queueCounters { earlier[q, default: TapCounters()] += c }
            earlierTornReasons = earlierTornReasons + old.tornReasons
        }
        var p = try DevicePoller(memory: memory, layout: layout, framer: options.framer(layout), snaplen: options.snaplen,
                                 limits: options.limits)
        if let old = poller { p.continueTransactionIDs(after: old) }
        try p.attach(state, fresh: fresh, clock: clock, into: &out)
        self.memory = memory
        self.layout = layout
        self.poller = p
        fileIdentity = FileIdentity(path: options.layoutPath)
        if firstAttachNs == nil { firstAttachNs = clock.now() }
    }

    /// Maps the regions of `moved` in place of the current ones; the pollers go on with
    /// their rings and indices, reading through the new map.
    func remap(_ moved: DeviceLayout) throws(TapError) {
        guard var current = layout, let old = memory, current.regions != moved.regions else { return }
        let memory = try MappedGuestMemory(regions: moved.regions, reusing: old.files)
        poller?.replaceMemory(memory, regions: moved.regions)
        self.memory = memory
        current.regions = moved.regions
        layout = current
    }

    /// Attaches once (waiting if the options say so) and delivers the attach markers and the
    /// pre-attach snapshot. Returns false if stopped while waiting.
    public func attach(shouldStop: () -> Bool = { false }, deliver: RecordDelivery) throws(TapError) -> Bool {
        let deadline = options.waitTimeoutNs.map { clock.now() &+ $0 }
        guard let layout = try loadReadyLayout(deadline: deadline, shouldStop: shouldStop) else { return false }
        var out: [CaptureRecord] = []
        try start(layout, state: .attached, fresh: false, into: &out)
        if !deliver(out) { deliveryStopped = true }
        return true
    }

    // MARK: - Run

    /// The poll buffer after a poll whose records were handed over (the receiver keeps that
    /// buffer): a new one sized for about as many records. Keeping the old capacity would
    /// allocate 1024 records' worth for every poll, and a receiver that keeps batches a while
    /// (top's feed: 131,072 records) would hold 100 KiB for a poll of two records.
    @inline(__always)
    static func nextBuffer(after handedOver: Int) -> [CaptureRecord] {
        var next: [CaptureRecord] = []
        next.reserveCapacity(max(16, handedOver))
        return next
    }

    /// Polls until `deliver` returns false, `shouldStop` turns true, `durationNs` (counted
    /// from the first attach) is over, or the device goes away. Call after `attach`.
    public func run(durationNs: UInt64? = nil, shouldStop: () -> Bool, deliver: RecordDelivery) throws(TapError) -> TapOutcome {
        guard poller != nil else { throw TapError("not attached") }
        if deliveryStopped { return finish(deliver: deliver) }
        var records: [CaptureRecord] = []
        records.reserveCapacity(1024)
        var lastActiveNs = clock.now()
        var sleepNs: UInt64 = 0
        // The mean gap between active polls, smoothed (1/8 weight per new gap).
        var meanGapNs = Self.flowingGapNs * 2
        var nextWatch = clock.now() &+ options.watchIntervalNs
        let end = durationNs.map { (firstAttachNs ?? clock.now()) &+ $0 }
        // Kept here and stored once at the end: a property of this class, updated every
        // turn, would cost an exclusivity check each time.
        let measuring = options.measuresStalls
        var loopStalls = stalls
        defer { if measuring { stalls = loopStalls } }
        var previousStartNs: UInt64 = 0
        var lastPollStart: UInt64 = 0
        var lastPollWasFull = false
        while true {
            guard poller != nil, let memory else { throw TapError("not attached") }
            // Records left over were handed over: the buffer is the receiver's now.
            if !records.isEmpty { records = Self.nextBuffer(after: records.count) }
            let startNs = measuring ? clock.now() : 0
            if measuring {
                if previousStartNs != 0 && sleepNs == 0 { loopStalls.note(startNs &- previousStartNs) }
                previousStartNs = startNs
            }
            if lastPollWasFull {
                // The device outpaces the polls: wait (on this core's own memory) for a
                // larger batch. Every poll takes the index and ring lines the driver and
                // device are writing, and each costs them a cache miss to take back; fewer,
                // larger batches leave them more of their time (the simulator at --rate 0
                // kept a median 71% of its rate with the tap over six runs, 87% over eight
                // with this wait).
                while clock.now() &- lastPollStart < Self.batchingGapNs {}
            }
            lastPollStart = clock.now()
            // In place: a copy of the poller would copy every array it then mutates.
            let active = try poller?.poll(clock: clock, into: &records) ?? false
            lastPollWasFull = records.count >= Self.fullPollRecords
            if memory.memoryWentAway {
                // What this batch read may be zeros: it is thrown away, not delivered.
                return gone("guest memory went away (a memory file was truncated)", deliver: deliver)
            }
            let polledNs = measuring ? clock.now() : 0
            if measuring { loopStalls.notePhase(.poll, polledNs &- startNs) }
            if !records.isEmpty && !deliver(records) { return finish(deliver: deliver) }
            if shouldStop() { return finish(deliver: deliver) }

            let now = clock.now()
            if measuring { loopStalls.notePhase(.deliver, now &- polledNs) }
            if active {
                let gap = now &- lastActiveNs
                meanGapNs = meanGapNs &- meanGapNs / 8 &+ min(gap, 1_000_000_000) / 8
                lastActiveNs = now
                sleepNs = 0
            } else if options.pollMode == .adaptive
                        && now &- lastActiveNs > (meanGapNs < Self.flowingGapNs ? Self.busyWhileFlowingNs : Self.busyAfterStrayNs) {
                // Idle: sleep, doubling from 50 us to 4 ms.
                sleepNs = sleepNs == 0 ? 50_000 : min(sleepNs * 2, 4_000_000)
                var ts = timespec(tv_sec: 0, tv_nsec: Int(sleepNs))
                nanosleep(&ts, nil)
            } else if !active && options.pollMode == .adaptive {
                // Spinning: a core shared with other threads (top's view, the printer) is
                // theirs between polls that found nothing; alone on its core this returns
                // at once.
                sched_yield()
            }
            if let end, now >= end { return finish(deliver: deliver) }
            if now >= nextWatch {
                nextWatch = now &+ options.watchIntervalNs
                if let outcome = try watch(shouldStop: shouldStop, deliver: deliver) { return outcome }
                if measuring { loopStalls.notePhase(.watch, clock.now() &- now) }
            }
        }
    }

    /// Looks at the device: its process, the layout file, the memory files.
    func watch(shouldStop: () -> Bool, deliver: RecordDelivery) throws(TapError) -> TapOutcome? {
        guard let layout else { return nil }
        if let provider { return try watchProvider(provider, shouldStop: shouldStop, deliver: deliver) }
        if let pid = layout.pid, !Self.processExists(pid) {
            finalPoll(deliver: deliver)
            return gone("the device's process \(pid) exited", deliver: deliver)
        }
        if let memory, !memory.isIntact {
            return gone("guest memory went away (a memory file was truncated)", deliver: deliver)
        }
        let identity = FileIdentity(path: options.layoutPath)
        guard let identity else {
            finalPoll(deliver: deliver)
            return gone("the layout file \(options.layoutPath) was removed", deliver: deliver)
        }
        if identity == fileIdentity { return nil }
        guard let next = try? DeviceLayout.load(path: options.layoutPath) else { return nil }
        fileIdentity = identity
        if next.generation == layout.generation && next.status == .ready && next.queues == layout.queues && next.regions == layout.regions {
            self.layout = next
            return nil
        }
        // The driver reset the device: its chains in flight will never complete.
        if !deliver(closingRecords(.reset, generation: next.generation)) { return finish(deliver: deliver) }
        var ready = next
        while ready.status != .ready {
            if shouldStop() { return finish(deliver: deliver) }
            if let pid = ready.pid, !Self.processExists(pid) { return gone("the device's process \(pid) exited", deliver: deliver) }
            usleep(5_000)
            guard FileManager.default.fileExists(atPath: options.layoutPath) else {
                return gone("the layout file \(options.layoutPath) was removed", deliver: deliver)
            }
            if let l = try? DeviceLayout.load(path: options.layoutPath) { ready = l }
        }
        var started: [CaptureRecord] = []
        try start(ready, state: .reattached, fresh: true, into: &started)
        if !deliver(started) { return finish(deliver: deliver) }
        return nil
    }

    /// The device's last chains, published before it went: memory that is still whole
    /// (the process exited, its files remain mapped) is polled once more.
    func finalPoll(deliver: RecordDelivery) {
        guard poller != nil, let memory, memory.isIntact else { return }
        var out: [CaptureRecord] = []
        _ = try? poller?.poll(clock: clock, into: &out)
        if !memory.memoryWentAway && !out.isEmpty { _ = deliver(out) }
    }

    func finish(deliver: RecordDelivery) -> TapOutcome {
        if poller != nil { _ = deliver(closingRecords(.detached)) }
        return .stopped
    }

    func gone(_ why: String, deliver: RecordDelivery) -> TapOutcome {
        if poller != nil { _ = deliver(closingRecords(.gone)) }
        return .deviceGone(why)
    }

    /// What ends the current rings: the records the pollers still hold for a verdict, then
    /// the `state` markers (stamped with the generation that follows, for a reset).
    func closingRecords(_ state: DeviceStateMarker.State, generation: UInt64? = nil) -> [CaptureRecord] {
        var out: [CaptureRecord] = []
        poller?.releaseAllHeld(into: &out)
        guard let p = poller else { return out }
        var markers = p.stateMarkers(state, timestampNs: clock.now())
        if let generation {
            for k in markers.indices {
                if case var .deviceState(m) = markers[k].body {
                    m.generation = generation
                    markers[k].body = .deviceState(m)
                }
            }
        }
        out.append(contentsOf: markers)
        return out
    }

    // MARK: - Counters

    /// Counters per queue (all generations), in queue order.
    public var queueCounters: [(queue: UInt16, counters: TapCounters)] {
        var all = earlier
        for (q, c) in poller?.queueCounters ?? [] { all[q, default: TapCounters()] += c }
        return all.keys.sorted().map { ($0, all[$0] ?? TapCounters()) }
    }

    /// Why records were counted torn, all generations (diagnostics).
    public var tornReasons: TornReasons { earlierTornReasons + (poller?.tornReasons ?? TornReasons()) }

    public var totalCounters: TapCounters { queueCounters.reduce(TapCounters()) { $0 + $1.counters } }

    /// The name of queue `index` in the layout (`request0`), or `q<index>`.
    public func queueName(_ index: UInt16) -> String {
        layout?.queues.first { $0.index == index }?.name ?? "q\(index)"
    }

    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

/// Enough of a file's stat to notice that it was replaced or rewritten.
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedNs: Int64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        modifiedNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
}
