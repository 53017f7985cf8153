import ArgumentParser
import Foundation
import PcapNG
import VQAnalysis
import VQRecord
import VQTUI
import VQWire
import VirtioTap
#if canImport(Glibc)
import Glibc
#endif

/// `vqtap top`: the live view (htop for a virtqueue).
struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Live view of a virtio-scsi device: rates, queue depth, latency, errors, TMFs.",
        discussion: """
            Screens: overview, per-LUN, per-opcode, latency histogram, log, recent requests \
            with a full decode. Keys: q quit, p pause, Tab/arrows screens, s sort, r reset, \
            / filter, ? help. When standard output is not a terminal, the overview is printed \
            as text once per --delay. See vqtap-top(1).
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var view: ViewOptions

    func validate() throws {
        try source.check()
        try view.check()
    }

    func run() throws {
        try TopSession(source: source, view: view).run()
    }
}

/// Where records come from: a live device (its layout file or a QEMU's QMP socket, with
/// capture's options), a capture file replayed, or the built-in synthetic workload.
struct SourceOptions: ParsableArguments {
    @OptionGroup(title: "Live device (as vqtap capture; by default waits up to 10s for it)")
    var live: DeviceAttachOptions

    @Option(name: .customShort("r"), help: ArgumentHelp("Replay a capture file (pcapng).", valueName: "file"))
    var readFile: String?

    @Argument(help: ArgumentHelp("A capture file to replay (same as -r).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("Replay speed: a factor (1 is as recorded, 10 ten times faster) or 'max'.", valueName: "factor"))
    var speed: String = "1"

    @Flag(help: "Use the built-in synthetic workload (no device, no file): several LUNs, mixed sizes, a long-tailed latency, errors, TMFs and events.")
    var synthetic = false

    @Option(help: ArgumentHelp("Commands per second of the synthetic workload.", valueName: "n"))
    var iops: Double = 5_000

    var path: String? { readFile ?? file }

    /// nil: as fast as possible.
    var speedFactor: Double? {
        speed == "max" ? nil : Double(speed)
    }

    func check() throws {
        if readFile != nil && file != nil { throw ValidationError("give the capture file once: -r FILE or FILE") }
        if speed != "max", (Double(speed) ?? 0) <= 0 { throw ValidationError("--speed takes a positive factor or 'max', not '\(speed)'") }
        try live.validateSource(required: false)
        try live.checkValues()
        let sources = [path != nil, live.layout != nil, live.qemu.qmp != nil, synthetic].filter { $0 }.count
        if sources == 0 { throw ValidationError("nothing to read: give --layout FILE, --qmp SOCKET, a capture file (-r FILE) or --synthetic") }
        if sources > 1 { throw ValidationError("give one source: --layout, --qmp, a capture file or --synthetic") }
        guard iops > 0 && iops <= 10_000_000 else { throw ValidationError("--iops must be above 0 and at most 10000000") }
    }

    /// Records arrive as they happen (the view's clock is the wall clock).
    var isLive: Bool { synthetic || live.isGiven }

    var description: String {
        if synthetic { return "synthetic \(Int(iops)) IOPS" }
        if let name = live.layout ?? live.qemu.qmp { return "live " + URL(fileURLWithPath: name).lastPathComponent }
        return "replay " + (path.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "")
    }

    /// Starts the producer thread; it stops when the feed asks it to. Live devices return
    /// what their thread leaves behind.
    /// `companion`: a process the device depends on (the demo's simulator). With it, a live
    /// source waits for the device for as long as the companion runs, not 10 s.
    @discardableResult
    func start(into feed: RecordFeed, companion: LiveCompanion? = nil) throws -> LiveProducerState? {
        if synthetic {
            let rate = iops
            Thread.detachNewThread { SyntheticProducer.run(iops: rate, feed: feed) }
            return nil
        }
        if live.isGiven {
            var device = live
            // A view is started to be watched: it waits a while for the device by default.
            if !device.wait && device.waitTimeout == nil {
                device.wait = true
                device.waitTimeout = companion == nil ? "10s" : nil
            }
            return LiveProducer.start(device, into: feed, companion: companion)
        }
        guard let path else { return nil }
        // The reader moves to the producer thread and is used only there.
        let box = ProducerBox(try CaptureFileSource.open(path))
        let factor = speedFactor
        Thread.detachNewThread { ReplayProducer.run(&box.value, speed: factor, feed: feed) }
        return nil
    }
}

/// Refresh, duration and thresholds, shared by `top` and `demo`.
struct ViewOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Time between refreshes.", valueName: "duration"))
    var delay: String = "1s"

    @Option(help: ArgumentHelp("Stop after this long, counted from the command's start.", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Requests outstanding longer than this are reported as stuck.", valueName: "duration"))
    var stuck: String = "1s"

    @Option(help: ArgumentHelp("The sliding window of rates and recent latency.", valueName: "duration"))
    var window: String = "10s"

    @Flag(name: .customLong("no-color"), help: "Monochrome (also when NO_COLOR is set).")
    var noColor = false

    @Flag(name: .customShort("b"), help: "Batch mode: print the overview as text even on a terminal.")
    var batch = false

    @Flag(help: "On exit, print on stderr what the view did: records analysed and skipped, frames and their cost, the longest wait a key could have had, max RSS, the analysis tables' sizes (and a live tap's counters).")
    var bench = false

    func check() throws {
        for (name, value) in [("--delay", delay), ("--stuck", stuck), ("--window", window)] + (duration.map { [("--duration", $0)] } ?? []) {
            guard let ns = Units.duration(value), ns > 0 else { throw ValidationError("\(name) takes a duration such as 500ms, 1s or 2m, not '\(value)'") }
        }
        if let ns = Units.duration(window), ns < 1_000_000 { throw ValidationError("--window must be at least 1ms") }
    }

    var delayNs: UInt64 { Units.duration(delay) ?? 1_000_000_000 }
    var durationNs: UInt64? { duration.flatMap(Units.duration) }

    var analyzerOptions: Analyzer.Options {
        var o = Analyzer.Options()
        o.stuckThresholdNs = Units.duration(stuck) ?? 1_000_000_000
        o.statistics.windowNs = max(10_000_000, Units.duration(window) ?? 10_000_000_000)
        o.statistics.windowSlots = 10
        o.keepErrors = false
        // The log screen shows the last 500: keeping more only grows memory.
        o.logLimit = 1000
        o.recentLimit = 500
        return o
    }
}

struct TopSession {
    var source: SourceOptions
    var view: ViewOptions
    /// The title bar's source, when not the source's own description.
    var title: String?
    /// Where --duration counts from (monotonic ns): the command's start.
    var startNs = TopRunner.monotonicNs()
    /// The process the live device runs in, when this command started it (demo).
    var companion: LiveCompanion?

    func run() throws {
        // Before anything starts: a SIGINT or SIGTERM from here on ends the run cleanly.
        TerminalSignals.install()
        let feed = RecordFeed()
        var analyzer = Analyzer(options: view.analyzerOptions)
        let live = try source.start(into: feed, companion: companion)
        var runner = TopRunner(source: title ?? source.description)
        runner.delayNs = view.delayNs
        runner.durationNs = view.durationNs
        runner.startNs = startNs
        runner.monochrome = view.noColor
        if source.isLive {
            // The tap's timestamps: the monotonic clock moved to the wall clock.
            let clock = TapClock()
            runner.clock = { clock.now() }
        }
        let error: String?
        if isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 && !view.batch {
            error = runner.runInteractive(feed: feed, analyzer: &analyzer)
        } else {
            // A reader that goes away (`| head`) ends the run as SIGTERM does, so that a
            // demo still stops its simulator and removes its files.
            signal(SIGPIPE, SIG_IGN)
            error = runner.runText(feed: feed, analyzer: &analyzer) { text in
                print(text)
                if fflush(nil) != 0 && errno == EPIPE { raise(SIGTERM) }
            }
        }
        feed.requestStop()
        let producerDone = feed.waitUntilFinished(timeoutNs: 2_000_000_000)
        if view.bench { Self.printBench(runner.stats, tap: producerDone ? live?.tap : nil, analyzer: analyzer) }
        if let failure = live?.attachFailure { throw VQTapFailure("top: \(failure.message)", status: failure.status) }
        if let error {
            throw VQTapFailure("top: \(error)", status: error.hasPrefix(LiveProducer.deviceGone) ? .deviceGone : .partlyRead)
        }
    }

    /// `--bench`: one line of `name value` pairs on stderr (benchmarks/top reads it), and
    /// the tap's counters like capture's.
    static func printBench(_ s: TopRunStats, tap: LayoutTap?, analyzer a: Analyzer) {
        let seconds = max(1e-9, Double(s.elapsedNs) / 1e9)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        var line = "top: records \(s.records) records_per_s \(Int(Double(s.records) / seconds)) skipped \(s.skipped)"
        line += " frames \(s.frames) frame_ms_mean \(String(format: "%.1f", Double(s.frameNsMean) / 1e6))"
        line += " frame_ms_max \(String(format: "%.1f", Double(s.frameNsMax) / 1e6))"
        line += " key_gap_ms_max \(String(format: "%.1f", Double(s.maxKeyGapNs) / 1e6))"
        line += " seconds \(String(format: "%.2f", seconds)) maxrss_kib \(usage.ru_maxrss)"
        let t = a.matcher.tableSizes
        line += " groups \(a.statistics.groupCount) combinations \(a.statistics.combinationCount) in_flight \(a.matcher.inFlightCount)"
        line += " tags \(t.tags) kept_requests \(t.requests) pending_tmfs \(t.pendingTMFs) decoder_pending \(a.decoder.pendingCount)"
        StandardError.write(line)
        if let tap, tap.poller != nil { Capture.printCounters(tap) }
    }
}

enum Clock {
    static func realtimeNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

final class ProducerBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

enum TopRunnerClock {
    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Capture files: the pcapng reader (libpcap), records of link type USER0.
enum CaptureFileSource {
    /// `stdin`: "-" reads standard input (not for `top`, whose keys come from there).
    static func open(_ path: String, stdin: Bool = false) throws -> any RecordSource {
        guard (stdin && path == "-") || FileManager.default.isReadableFile(atPath: path) else {
            throw VQTapFailure("cannot read \(path): no such file or no permission")
        }
        do { return try PcapFileReader(path: path) } catch { throw VQTapFailure("cannot read \(path): \(error.description)") }
    }
}
