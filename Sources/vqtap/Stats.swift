import ArgumentParser
import Foundation
import VQAnalysis
import VQTUI
import VQOutput
import PcapNG
import VQRecord
import VirtioSCSI
import VQWire
#if canImport(Glibc)
import Glibc
#endif

/// `vqtap stats FILE`: the offline report of a capture (what a storage engineer pastes into
/// a bug): statistics grouped as asked, then errors, TMFs, events, stuck requests and
/// conformance findings.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report latency, rates, errors, TMFs, events and findings of a capture.",
        discussion: """
            Tables per device, queue, LUN, opcode and outcome (or the groups --by names); \
            -T json prints JSON lines, -T csv one CSV table. --plot writes the latency \
            histogram and latency over time as SVG. See vqtap-stats(1).
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, csv }

    @Option(name: .customShort("r"), help: ArgumentHelp("The capture file (pcapng).", valueName: "file"))
    var readFile: String?

    @Argument(help: ArgumentHelp("The capture file (same as -r; - reads standard input).", valueName: "file"))
    var file: String?

    @Option(name: .customShort("T"), help: ArgumentHelp("Output format: text, json (JSON lines) or csv.", valueName: "format"))
    var format: Format = .text

    @Option(help: ArgumentHelp("Group by these, comma-separated: device, queue, lun, opcode, outcome. Several --by give several tables.", valueName: "dimensions"))
    var by: [String] = []

    @Option(help: ArgumentHelp("Requests outstanding (or that took) longer than this are listed as stuck (slow).", valueName: "duration"))
    var stuck: String = "1s"

    @Option(help: ArgumentHelp("Write the latency histogram and latency over time as SVG.", valueName: "file.svg"))
    var plot: String?

    @Option(name: .customShort("c"), help: ArgumentHelp("Read at most this many records.", valueName: "count"))
    var count: Int?

    @Option(help: ArgumentHelp("Entries listed per list (errors, TMFs, events, findings, stuck).", valueName: "n"))
    var list: Int = 20

    @Flag(help: "Report on the built-in synthetic workload instead of a file (with --duration).")
    var synthetic = false

    @Option(help: ArgumentHelp("With --synthetic: how much traffic to generate.", valueName: "duration"))
    var duration: String = "10s"

    @Option(help: ArgumentHelp("With --synthetic: commands per second.", valueName: "n"))
    var iops: Double = 20_000

    @Flag(help: .hidden)
    var bench = false

    var path: String? { readFile ?? file }

    func groupings() throws -> [Grouping] {
        if by.isEmpty { return Grouping.standard }
        return try by.map { text in
            switch Dimension.parseList(text) {
            case let .success(d): return Grouping(d)
            case let .failure(f): throw ValidationError("--by: '\(f.word)' is not one of device, queue, lun, opcode, outcome")
            }
        }
    }

    func validate() throws {
        if readFile != nil && file != nil { throw ValidationError("give the capture file once: -r FILE or FILE") }
        if path == nil && !synthetic { throw ValidationError("nothing to read: give a capture file (-r FILE) or --synthetic") }
        if path != nil && synthetic { throw ValidationError("--synthetic and a capture file exclude each other") }
        guard Units.duration(stuck).map({ $0 > 0 }) ?? false else { throw ValidationError("--stuck takes a duration such as 500ms or 1s, not '\(stuck)'") }
        guard Units.duration(duration).map({ $0 > 0 }) ?? false else { throw ValidationError("--duration takes a duration such as 10s, not '\(duration)'") }
        if let count, count < 1 { throw ValidationError("-c must be at least 1") }
        guard list >= 0 else { throw ValidationError("--list cannot be negative") }
        guard iops > 0 && iops <= 10_000_000 else { throw ValidationError("--iops must be above 0 and at most 10000000") }
        _ = try groupings()
    }

    func run() throws {
        if bench { return try StatsBench.run(iops: iops, durationNs: Units.duration(duration) ?? 10_000_000_000) }
        var options = Analyzer.Options()
        let tables = try groupings()
        options.statistics.groupings = tables
        if !options.statistics.groupings.contains(.device) { options.statistics.groupings.append(.device) }
        options.stuckThresholdNs = Units.duration(stuck) ?? 1_000_000_000
        // A report covers the whole file: the window is irrelevant, keep it cheap.
        options.statistics.windowSlots = 1
        options.statistics.windowNs = 3_600_000_000_000
        options.statistics.window = false
        options.recentLimit = 0
        options.keepDetails = false
        var analyzer = Analyzer(options: options)
        var series = LatencySeries()
        var source: any RecordSource
        var sourceName: String
        var fileSize: UInt64 = 0
        if synthetic {
            source = SyntheticSource(iops: iops, durationNs: Units.duration(duration) ?? 10_000_000_000)
            sourceName = "synthetic \(Int(iops)) IOPS for \(duration)"
        } else {
            let p = path ?? ""
            fileSize = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? UInt64) ?? 0
            source = try CaptureFileSource.open(p, stdin: true)
            sourceName = p
        }
        var progress = Progress(totalBytes: fileSize)
        var records = 0
        var partial: String?
        let limit = count ?? .max
        let plotting = plot != nil
        do {
            if let file = source as? PcapFileReader {
                // A file is read ahead by libpcap on the other core. Records are decoded in
                // place: commands and completions never become CaptureRecords.
                let ahead = ReadAheadReader.suits(path: file.path) ? ReadAheadReader(file) : nil
                defer { ahead?.close() }
                let reader: any PacketReader = ahead ?? file
                while records < limit, try reader.nextPacket({ ns, raw throws(DecodeError) -> Bool in
                    if let view = RecordView(raw, timestampNs: ns) {
                        analyzer.consume(view)
                        if plotting, view.kind == .used, view.latencyNs > 0, view.queue != 1 {
                            series.add(endNs: view.timestampNs, latencyNs: view.latencyNs)
                        }
                    } else {
                        let r = try CaptureRecord(decoding: Array(raw), timestampNs: ns)
                        analyzer.consume(r)
                        if plotting, r.kind == .used, r.latencyNs > 0, VirtioSCSIQueueRole(queue: r.queue) != .event {
                            series.add(endNs: r.timestampNs, latencyNs: r.latencyNs)
                        }
                    }
                    return true
                }) != nil {
                    records += 1
                    if records & 0xffff == 0 { progress.update(records: records) }
                }
            } else {
                // Any other source (the synthetic workload), record by record.
                while records < limit, let r = try source.next() {
                    records += 1
                    analyzer.consume(r)
                    if plotting, r.kind == .used, r.latencyNs > 0, VirtioSCSIQueueRole(queue: r.queue) != .event {
                        series.add(endNs: r.timestampNs, latencyNs: r.latencyNs)
                    }
                    if records & 0xffff == 0 { progress.update(records: records) }
                }
            }
        } catch {
            partial = "\(error)"
        }
        progress.finish()
        analyzer.tick(at: analyzer.matcher.lastNs)
        series.flush()
        let report = StatsReport(analyzer: analyzer, source: sourceName, records: records, listLimit: list, groupings: tables)
        switch format {
        case .text: print(report.text(), terminator: "")
        case .json: print(report.json(), terminator: "")
        case .csv: print(report.csv(), terminator: "")
        }
        if let plot {
            let svg = StatsPlot.svg(analyzer: analyzer, series: series, title: sourceName)
            do { try svg.write(toFile: plot, atomically: true, encoding: .utf8) } catch {
                throw VQTapFailure("stats: cannot write \(plot): \(error.localizedDescription)")
            }
        }
        if let partial { throw VQTapFailure("stats: \(sourceName): \(partial) (the report covers the \(records) records before it)", status: .partlyRead) }
    }
}

/// The synthetic workload as a record source, as fast as it generates.
struct SyntheticSource: RecordSource {
    var workload: SyntheticWorkload
    var endNs: UInt64
    var clockNs: UInt64
    var pending: [CaptureRecord] = []
    var index = 0

    init(iops: Double, durationNs: UInt64, seed: UInt64 = 1) {
        var o = SyntheticWorkload.Options()
        o.iops = iops
        o.seed = seed
        o.tmfEvery = UInt64(max(1000, iops * 2))
        o.eventEvery = UInt64(max(1000, iops * 3))
        workload = SyntheticWorkload(options: o)
        clockNs = o.startNs
        endNs = o.startNs + durationNs
    }

    mutating func next() throws -> CaptureRecord? {
        while index >= pending.count {
            guard clockNs < endNs else { return nil }
            clockNs = min(endNs, clockNs + 100_000_000)
            pending = workload.records(until: clockNs)
            index = 0
        }
        defer { index += 1 }
        return pending[index]
    }
}

/// A progress bar on stderr for large files when stderr is a terminal.
struct Progress {
    let totalBytes: UInt64
    let enabled: Bool
    let start = TopRunnerClock.monotonicNs()

    init(totalBytes: UInt64) {
        self.totalBytes = totalBytes
        enabled = totalBytes > 64 << 20 && isatty(STDERR_FILENO) == 1
    }

    /// Records read so far; the bar is drawn from the share of elapsed time to an estimate
    /// by bytes when the reader cannot say its offset.
    mutating func update(records: Int) {
        guard enabled else { return }
        let seconds = Double(TopRunnerClock.monotonicNs() - start) / 1e9
        let rate = seconds > 0 ? Double(records) / seconds : 0
        let line = "\r\(records) records  \(Int(rate)) records/s  \(Figures.fixed(seconds, 1))s "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
    }
}

/// `stats --synthetic --bench` (benchmarks/stats): the analysis layer alone on an in-memory
/// record stream, and `top`'s model and drawing at one refresh per second of traffic.
enum StatsBench {
    static func maxRSSKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }

    static func run(iops: Double, durationNs: UInt64) throws {
        var source = SyntheticSource(iops: iops, durationNs: durationNs)
        var chunk: [CaptureRecord] = []
        chunk.reserveCapacity(1 << 16)
        var analyzer = Analyzer()
        var decoder = RecordDecoder()
        var decoded: [DecodedRecord] = []
        decoded.reserveCapacity(1 << 16)
        var records = 0
        var decodeNs: UInt64 = 0
        var analysisNs: UInt64 = 0
        var drawNs: UInt64 = 0
        var draws = 0
        var nextDrawNs: UInt64?
        let rssStart = maxRSSKiB()
        while true {
            chunk.removeAll(keepingCapacity: true)
            while chunk.count < 1 << 16, let r = try source.next() { chunk.append(r) }
            if chunk.isEmpty { break }
            // The analysis as `top` runs it (Analyzer.consume of each CaptureRecord: the fast
            // decode, matching, statistics, logs), and apart from it the decoding alone (the
            // same decode on a second decoder) to show its share.
            let t0 = TopRunnerClock.monotonicNs()
            for r in chunk { analyzer.consume(r) }
            let t1 = TopRunnerClock.monotonicNs()
            for r in chunk where decoder.decodeFast(r) == .full { decoded.append(decoder.decode(r)) }
            decoded.removeAll(keepingCapacity: true)
            let t2 = TopRunnerClock.monotonicNs()
            analysisNs += t1 - t0
            decodeNs += t2 - t1
            records += chunk.count
            // One refresh per second of traffic: snapshot, then draw the overview.
            let dataNow = analyzer.matcher.lastNs
            if nextDrawNs == nil { nextDrawNs = dataNow + 1_000_000_000 }
            while let next = nextDrawNs, dataNow >= next {
                let t1 = TopRunnerClock.monotonicNs()
                let snapshot = TopSnapshot(analyzer: analyzer, source: "bench")
                _ = TopView.render(snapshot, ViewState(), width: 132, height: 43)
                drawNs += TopRunnerClock.monotonicNs() - t1
                draws += 1
                nextDrawNs = next + 1_000_000_000
            }
        }
        // analysisNs is the whole of it (decode included); the analysis proper is the rest.
        let seconds = Double(analysisNs) / 1e9
        func rate(_ ns: UInt64) -> Int { Int(Double(records) / max(Double(ns) / 1e9, 1e-9)) }
        print("records \(records) commands \(analyzer.transactionCount) total_s \(Figures.fixed(seconds, 3)) records_per_s \(rate(analysisNs))"
              + " decode_records_per_s \(rate(decodeNs)) analysis_records_per_s \(rate(analysisNs > decodeNs ? analysisNs - decodeNs : 0))"
              + " draws \(draws) draw_ms_mean \(Figures.fixed(draws == 0 ? 0 : Double(drawNs) / Double(draws) / 1e6, 2))"
              + " maxrss_kib_start \(rssStart) maxrss_kib_end \(maxRSSKiB())")
    }
}
