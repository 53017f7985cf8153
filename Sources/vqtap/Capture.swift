import ArgumentParser
import CVQSys
import Foundation
import PcapNG
import Synchronization
import VQRecord
import VirtioRing
import VirtioSCSI
import VirtioTap

// `vqtap capture`: attach to a running device and print every chain it exchanges
// (man/vqtap-capture.1). The record stream is the single path: what is printed here is
// what `-w` writes.

/// How to find and map the device, plus the snap length: shared by `capture` and `inflight`
/// (`top` takes the device options alone, as one of its sources).
struct AttachOptions: ParsableArguments {
    @OptionGroup var device: DeviceAttachOptions

    @Option(name: .customShort("s"), help: ArgumentHelp("Payload bytes kept per direction beyond the headers; 0 keeps everything.", valueName: "snaplen"))
    var snaplen = 64

    func validate() throws {
        try device.validateSource()
        try device.checkValues()
        if snaplen < 0 { throw ValidationError("-s: the snap length must be 0 or more") }
    }

    var layout: String? { device.layout }

    func tapOptions(pollMode: PollMode) -> LayoutTapOptions {
        device.tapOptions(pollMode: pollMode, snaplen: snaplen)
    }

    func makeTap(pollMode: PollMode) throws -> LayoutTap {
        try device.makeTap(pollMode: pollMode, snaplen: snaplen)
    }
}

/// The device a tap attaches to: a layout file or a QEMU's QMP socket, how long to wait for
/// it, and the config values the layout may not give. No `validate()`: `top` has other
/// sources, so each command says whether a device is required (`validateSource`).
struct DeviceAttachOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The device's layout file (vqtap-layout(5)).", valueName: "file"))
    var layout: String?

    @OptionGroup var qemu: QMPAttachOptions

    @Flag(name: .long, help: "Wait for the layout file and for the device to be ready instead of failing.")
    var wait = false

    @Option(name: .customLong("wait-timeout"), help: ArgumentHelp("How long --wait waits (e.g. 10s, 500ms); default forever.", valueName: "duration"))
    var waitTimeout: String?

    @Option(name: .customLong("cdb-size"), help: "The CDB size of requests, if the layout does not say (default 32).")
    var cdbSize: Int?

    @Option(name: .customLong("sense-size"), help: "The sense size of responses, if the layout does not say (default 96).")
    var senseSize: Int?

    /// Whether a device was named at all.
    var isGiven: Bool { layout != nil || qemu.qmp != nil }

    func checkValues() throws {
        if let waitTimeout, DurationText.nanoseconds(waitTimeout) == nil {
            throw ValidationError("--wait-timeout: '\(waitTimeout)' is not a duration (e.g. 10s, 500ms)")
        }
        if let cdbSize, cdbSize < 0 || cdbSize > 256 { throw ValidationError("--cdb-size: must be 0 to 256") }
        if let senseSize, senseSize < 0 || senseSize > 256 { throw ValidationError("--sense-size: must be 0 to 256") }
    }

    func tapOptions(pollMode: PollMode, snaplen: Int) -> LayoutTapOptions {
        let cdbOverride = cdbSize, senseOverride = senseSize
        var options = LayoutTapOptions(
            layoutPath: layout ?? qemu.qmp ?? "", wait: wait, waitTimeoutNs: waitTimeout.flatMap(DurationText.nanoseconds),
            snaplen: snaplen, pollMode: pollMode,
            framer: { layout in
                // cdb_size and sense_size: the user's word, then the layout's, then the defaults.
                let cdb = cdbOverride ?? Int(clamping: layout.config["cdb_size"] ?? 32)
                let sense = senseOverride ?? Int(clamping: layout.config["sense_size"] ?? 96)
                return VirtioSCSIFramer(VirtioSCSIChainContext(cdbSize: cdb, senseSize: sense,
                                                               t10PI: layout.features & (1 << 3) != 0))
            })
        // The loop's stalls are printed with the torn reasons (man vqtap-capture(1), ENVIRONMENT).
        options.measuresStalls = ProcessInfo.processInfo.environment["VQTAP_TORN_REASONS"] != nil
        return options
    }
}


extension PollMode: ExpressibleByArgument {}

/// Durations with units (DESIGN.md: `500us`, `20ms`, `5s`, `2m`; a bare number is seconds).
enum DurationText {
    static func nanoseconds(_ text: String) -> UInt64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(text)
        var scale = 1e9
        for (suffix, s) in units where text.hasSuffix(suffix) {
            let candidate = text.dropLast(suffix.count)
            if Double(candidate) != nil { number = candidate; scale = s; break }
        }
        guard let v = Double(number), v >= 0, v.isFinite, v * scale < 1.8e19 else { return nil }
        return UInt64(v * scale)
    }
}

/// SIGINT and SIGTERM ask the capture to stop (it then prints its counters and exits).
enum StopSignal {
    static let requested = Atomic<Bool>(false)

    static func install() {
        signal(SIGINT) { _ in StopSignal.requested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in StopSignal.requested.store(true, ordering: .relaxed) }
        // A parent may hand us these blocked (Foundation's Process does): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}

/// Buffered standard output: lines are gathered and written in large pieces, at the latest
/// `maxDelayNs` after the first unwritten one.
struct LineWriter {
    var buffer: [UInt8] = []
    var firstPendingNs: UInt64 = 0
    let maxDelayNs: UInt64 = 50_000_000

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func append(_ line: String) {
        if buffer.isEmpty { firstPendingNs = vq_monotonic_ns() }
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0a)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flushIfDue() {
        if !buffer.isEmpty && vq_monotonic_ns() &- firstPendingNs >= maxDelayNs { flush() }
    }

    mutating func flush() {
        var offset = 0
        buffer.withUnsafeBytes { raw in
            while offset < raw.count, let base = raw.baseAddress {
                let n = Glibc.write(1, base + offset, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue }; break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture the chains of a running virtio device and print them.",
        discussion: """
            Maps the device's guest memory read-only and polls its rings. On exit the \
            counters (captured, torn, orphan, dropped, malformed) go to stderr, one line per \
            queue and a total. Exit status 3 when the device or its memory went away. \
            See vqtap-capture(1).
            """)

    @OptionGroup var attach: AttachOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var write: WriteOptions

    @Option(name: .customShort("c"), help: "Stop after this many available and used records.")
    var count: Int?

    @Option(name: .long, help: ArgumentHelp("Stop after this long, counted from the first attach (e.g. 10s).", valueName: "duration"))
    var duration: String?

    @Flag(name: .customShort("q"), help: "Print no records, only the counters on exit.")
    var quiet = false

    @Option(name: .long, help: "busy (spin always) or adaptive (sleep while idle).")
    var poll: PollMode = .adaptive

    @Option(name: .long, help: "Pin the polling thread to this CPU (the tap's other threads keep off it).")
    var cpu: Int?

    func validate() throws {
        if let count, count <= 0 { throw ValidationError("-c: the count must be 1 or more") }
        if let duration, DurationText.nanoseconds(duration) == nil {
            throw ValidationError("--duration: '\(duration)' is not a duration (e.g. 10s, 500ms)")
        }
        if let cpu, cpu < 0 { throw ValidationError("--cpu: must be 0 or more") }
    }

    func run() throws {
        StopSignal.install()
        // The poller gets its CPU to itself: threads made from here on (the QMP watcher, the
        // printer) run elsewhere, or they preempt it and it misses chains.
        if let cpu { _ = vq_leave_cpu(Int32(cpu)) }
        let tap = try attach.makeTap(pollMode: poll)
        let limit = count ?? Int.max
        let durationNs = duration.flatMap(DurationText.nanoseconds)
        let result: PollResult
        // -w: the records go to pcapng files; like tcpdump, printing only with --print.
        var sink = try write.makeSink(command: "capture")
        if sink != nil, let path = attach.layout, let layout = try? DeviceLayout.load(path: path) {
            sink?.describe(deviceInstance: 0, DeviceInfo(name: layout.device.name, path: layout.device.path ?? "", features: layout.features))
        }
        if quiet && sink == nil {
            // Nothing to print: poll on this thread.
            var chainRecords = 0
            result = Self.poll(tap, cpu: cpu, durationNs: durationNs) { records in
                for r in records where r.kind == .available || r.kind == .used {
                    chainRecords += 1
                    if chainRecords >= limit { return false }
                }
                return true
            }
        } else {
            result = printWhilePolling(tap, limit: limit, durationNs: durationNs, sink: &sink,
                                       printing: !quiet && (sink == nil || write.print))
        }
        // Interface statistics close the file, after a signal too.
        var closeFailure: VQTapFailure?
        do { try sink?.close() } catch { closeFailure = VQTapFailure("capture: -w \(error)") }
        if tap.poller != nil { Self.printCounters(tap) }
        if let failure = result.failure ?? closeFailure { throw failure }
        if case let .deviceGone(why) = result.outcome {
            throw VQTapFailure("capture: the device went away: \(why)", status: .deviceGone)
        }
    }

    /// Polls on a thread of its own (pinned with --cpu) and prints here: decoding and
    /// printing cost far more than copying, and a poller that stops to print misses chains.
    func printWhilePolling(_ tap: LayoutTap, limit: Int, durationNs: UInt64?, sink: inout (any CaptureSink)?,
                           printing: Bool = true) -> PollResult {
        let handoff = RecordHandoff()
        let box = PollResultBox()
        let shared = UncheckedBox(tap)
        let cpu = self.cpu
        let thread = Thread {
            box.result = Self.poll(shared.value, cpu: cpu, durationNs: durationNs,
                                   stop: { handoff.isConsumerDone }) { handoff.push($0) }
            handoff.close()
        }
        thread.stackSize = 8 << 20
        thread.start()
        var presenter = RecordPresenter(verbosity: output.verbosity, format: output.format)
        var writer = LineWriter()
        var chainRecords = 0
        var done = false
        var sinkFailure: VQTapFailure?
        var lastSinkFlushNs = vq_monotonic_ns()
        while let batches = handoff.take(timeout: RecordHandoff.interval) {
            for batch in batches where !done {
                for r in batch {
                    // Like tcpdump -c: exactly `count` records, nothing after them.
                    if chainRecords >= limit {
                        done = true
                        handoff.stopConsuming()
                        break
                    }
                    if r.kind == .available || r.kind == .used { chainRecords += 1 }
                    var r = r
                    // What the file can hold is what is printed, so `read` prints it the same.
                    if sink != nil && r.encodedLength > CaptureRecord.maxFileRecordLength { r.fit(to: CaptureRecord.maxFileRecordLength) }
                    if sink != nil {
                        do { try sink?.write(r) } catch {
                            sinkFailure = VQTapFailure("capture: -w \(error)")
                            done = true
                            handoff.stopConsuming()
                            break
                        }
                    }
                    if printing, let text = presenter.render(r) { writer.append(text) }
                }
            }
            // A kill loses at most the last 50 ms of records.
            if sink != nil, sinkFailure == nil, vq_monotonic_ns() &- lastSinkFlushNs >= 50_000_000 {
                do { try sink?.flush() } catch {
                    sinkFailure = VQTapFailure("capture: -w \(error)")
                    done = true
                    handoff.stopConsuming()
                }
                lastSinkFlushNs = vq_monotonic_ns()
            }
            if !done && chainRecords >= limit {
                done = true
                handoff.stopConsuming()
            }
            writer.flushIfDue()
        }
        writer.flush()
        var result = box.result
        if let sinkFailure, result.failure == nil { result.failure = sinkFailure }
        return result
    }

    /// Attaches and polls until the delivery, a signal, the duration or the device ends it.
    static func poll(_ tap: LayoutTap, cpu: Int?, durationNs: UInt64?, stop: @escaping () -> Bool = { false },
                     deliver: RecordDelivery) -> PollResult {
        if let cpu {
            let e = vq_pin_thread_to_cpu(Int32(cpu))
            if e != 0 { return PollResult(failure: VQTapFailure("--cpu \(cpu): \(String(cString: strerror(e)))")) }
        }
        do {
            let shouldStop = { StopSignal.isRequested || stop() }
            guard try tap.attach(shouldStop: shouldStop, deliver: deliver) else { return PollResult() }
            return PollResult(outcome: try tap.run(durationNs: durationNs, shouldStop: shouldStop, deliver: deliver))
        } catch {
            return PollResult(failure: VQTapFailure("capture: \(error)"))
        }
    }

    /// One line per queue and a total, on stderr.
    static func printCounters(_ tap: LayoutTap) {
        var lines: [String] = []
        for (q, c) in tap.queueCounters { lines.append("q\(q) \(tap.queueName(q)): \(c.text)") }
        lines.append("total: \(tap.totalCounters.text)")
        if ProcessInfo.processInfo.environment["VQTAP_TORN_REASONS"] != nil {
            lines.append("torn reasons: \(tap.tornReasons.text)")
            lines.append("loop stalls: \(tap.stalls.text)")
        }
        StandardError.write(lines.joined(separator: "\n"))
    }
}

/// How a poll ended.
struct PollResult {
    var outcome: TapOutcome = .stopped
    var failure: VQTapFailure?
}

/// The polling thread's result, read by the printing thread after the handoff closed
/// (the handoff's lock orders the two).
final class PollResultBox: @unchecked Sendable {
    var result = PollResult()
}

/// Hands a value to the polling thread, which alone uses it until it ends.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Batches of records from the polling thread to the printing thread. Bounded: when the
/// printer falls a million records behind, the poller waits, and what goes by meanwhile
/// is counted by the ring indices like any other loss.
final class RecordHandoff: @unchecked Sendable {
    static let capacity = 1 << 20
    /// The printer is woken only when this many records wait, otherwise it looks every
    /// `RecordHandoff.interval`: a wake-up per poll would preempt, thousands of times a
    /// second, whatever shares its CPU (the simulator or QEMU's vCPU, with `--cpu`).
    static let wakeThreshold = 8192
    static let interval: TimeInterval = 0.01
    private let condition = NSCondition()
    private var batches: [[CaptureRecord]] = []
    private var queued = 0
    private var closed = false
    private var consumerDone = false

    /// Queues a batch; false once the printer wants no more.
    func push(_ records: [CaptureRecord]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queued >= Self.capacity && !consumerDone { condition.wait() }
        if consumerDone { return false }
        batches.append(records)
        queued += records.count
        if queued >= Self.wakeThreshold { condition.signal() }
        return true
    }

    /// The poller is done: `take` returns nil once the queue is empty.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Whether the printer is done.
    var isConsumerDone: Bool { done.load(ordering: .relaxed) }
    private let done = Atomic<Bool>(false)

    /// The printer is done (count reached): further pushes are refused.
    func stopConsuming() {
        condition.lock()
        consumerDone = true
        done.store(true, ordering: .relaxed)
        batches.removeAll()
        queued = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Every queued batch, waiting up to `timeout` for one; [] on timeout, nil when closed and drained.
    func take(timeout: TimeInterval) -> [[CaptureRecord]]? {
        condition.lock()
        defer { condition.unlock() }
        if batches.isEmpty && !closed { _ = condition.wait(until: Date(timeIntervalSinceNow: timeout)) }
        if batches.isEmpty { return closed ? nil : [] }
        let taken = batches
        batches = []
        queued = 0
        condition.broadcast()
        return taken
    }
}
