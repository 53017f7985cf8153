import ArgumentParser
import CVQSys
import Foundation
import Synchronization
import VQRecord
import VirtioRing
import VirtioSCSI
import VirtioTap

// `vqtap capture`: attach to a running device and print every chain it exchanges
// (man/vqtap-capture.1). The record stream is the single path: what is printed here is
// what `-w` writes.

/// How to find and map the device: shared by `capture` and `inflight`.
struct AttachOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The device's layout file (vqtap-layout(5)).", valueName: "file"))
    var layout: String?

    @OptionGroup var qemu: QMPAttachOptions

    @Flag(name: .long, help: "Wait for the layout file and for the device to be ready instead of failing.")
    var wait = false

    @Option(name: .customLong("wait-timeout"), help: ArgumentHelp("How long --wait waits (e.g. 10s, 500ms); default forever.", valueName: "duration"))
    var waitTimeout: String?

    @Option(name: .customShort("s"), help: ArgumentHelp("Payload bytes kept per direction beyond the headers; 0 keeps everything.", valueName: "snaplen"))
    var snaplen = 64

    @Option(name: .customLong("cdb-size"), help: "The CDB size of requests, if the layout does not say (default 32).")
    var cdbSize: Int?

    @Option(name: .customLong("sense-size"), help: "The sense size of responses, if the layout does not say (default 96).")
    var senseSize: Int?

    func validate() throws {
        try validateSource()
        if snaplen < 0 { throw ValidationError("-s: the snap length must be 0 or more") }
        if let waitTimeout, DurationText.nanoseconds(waitTimeout) == nil {
            throw ValidationError("--wait-timeout: '\(waitTimeout)' is not a duration (e.g. 10s, 500ms)")
        }
        if let cdbSize, cdbSize < 0 || cdbSize > 256 { throw ValidationError("--cdb-size: must be 0 to 256") }
        if let senseSize, senseSize < 0 || senseSize > 256 { throw ValidationError("--sense-size: must be 0 to 256") }
    }

    func tapOptions(pollMode: PollMode) -> LayoutTapOptions {
        let cdbOverride = cdbSize, senseOverride = senseSize
        return LayoutTapOptions(
            layoutPath: layout ?? qemu.qmp ?? "", wait: wait, waitTimeoutNs: waitTimeout.flatMap(DurationText.nanoseconds),
            snaplen: snaplen, pollMode: pollMode,
            framer: { layout in
                // cdb_size and sense_size: the user's word, then the layout's, then the defaults.
                let cdb = cdbOverride ?? Int(clamping: layout.config["cdb_size"] ?? 32)
                let sense = senseOverride ?? Int(clamping: layout.config["sense_size"] ?? 96)
                return VirtioSCSIFramer(VirtioSCSIChainContext(cdbSize: cdb, senseSize: sense,
                                                               t10PI: layout.features & (1 << 3) != 0))
            })
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

    @Option(name: .customShort("c"), help: "Stop after this many available and used records.")
    var count: Int?

    @Option(name: .long, help: ArgumentHelp("Stop after this long, counted from the first attach (e.g. 10s).", valueName: "duration"))
    var duration: String?

    @Flag(name: .customShort("q"), help: "Print no records, only the counters on exit.")
    var quiet = false

    @Option(name: .long, help: "busy (spin always) or adaptive (sleep while idle).")
    var poll: PollMode = .adaptive

    @Option(name: .long, help: "Pin the polling thread to this CPU.")
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
        let tap = try attach.makeTap(pollMode: poll)
        // Rendering happens on a thread of its own: the poll loop only copies chains.
        let writer = RecordWriterThread(presenter: RecordPresenter(verbosity: output.verbosity, format: output.format))
        // Pinned after the writer started: only the poll loop gets the CPU (threads inherit it).
        if let cpu {
            let e = vq_pin_thread_to_cpu(Int32(cpu))
            if e != 0 { writer.close(); throw VQTapFailure("--cpu \(cpu): \(String(cString: strerror(e)))") }
        }
        var chainRecords = 0
        let limit = count ?? Int.max
        let quiet = self.quiet
        let deliver: RecordDelivery = { records in
            var end = records.count
            for (k, r) in records.enumerated() {
                // Like tcpdump -c: exactly `count` records, nothing after them.
                if chainRecords >= limit { end = k; break }
                if r.kind == .available || r.kind == .used { chainRecords += 1 }
            }
            if !quiet { writer.append(end == records.count ? records : Array(records[..<end])) }
            return chainRecords < limit
        }
        let outcome: TapOutcome
        do {
            guard try tap.attach(shouldStop: { StopSignal.isRequested }, deliver: deliver) else {
                writer.close()
                return
            }
            outcome = try tap.run(durationNs: duration.flatMap(DurationText.nanoseconds),
                                  shouldStop: { StopSignal.isRequested }, deliver: deliver)
        } catch {
            writer.close()
            if tap.poller != nil { Self.printCounters(tap) }
            throw VQTapFailure("capture: \(error)")
        }
        writer.close()
        Self.printCounters(tap)
        if case let .deviceGone(why) = outcome {
            throw VQTapFailure("capture: the device went away: \(why)", status: .deviceGone)
        }
    }

    /// One line per queue and a total, on stderr.
    static func printCounters(_ tap: LayoutTap) {
        var lines: [String] = []
        for (q, c) in tap.queueCounters { lines.append("q\(q) \(tap.queueName(q)): \(c.text)") }
        lines.append("total: \(tap.totalCounters.text)")
        StandardError.write(lines.joined(separator: "\n"))
    }
}
