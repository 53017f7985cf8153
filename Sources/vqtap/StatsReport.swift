import Foundation
import VQAnalysis
import VQOutput
import VQRecord
import VirtioSCSI
import VQWire

/// The report of `vqtap stats` in its three formats, built from a finished analysis.
struct StatsReport {
    let analyzer: Analyzer
    let source: String
    let records: Int
    let listLimit: Int
    /// The tables to print (the analysis may keep more, such as the device total).
    let groupings: [Grouping]

    var deviceNames: [UInt16: String] { analyzer.matcher.devices.mapValues(\.name) }
    var startNs: UInt64 { analyzer.matcher.firstNs ?? 0 }
    var endNs: UInt64 { analyzer.matcher.lastNs }

    func relative(_ ns: UInt64) -> String { Figures.fixed(Double(ns >= startNs ? ns - startNs : 0) / 1e9, 6) }

    static func latencyCells(_ l: LatencySummary) -> [String] {
        guard l.count > 0 else { return Array(repeating: "-", count: 7) }
        return [l.min, l.mean, l.p50, l.p90, l.p99, l.p999, l.max].map(Figures.format)
    }

    // MARK: Text

    /// Aligned columns: the first left-aligned, the rest right-aligned.
    static func table(_ header: [String], _ rows: [[String]], left: Set<Int> = [0], indent: String = "") -> [String] {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, c) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                parts.append(left.contains(i) ? c + pad : pad + c)
            }
            var s = indent + parts.joined(separator: "  ")
            while s.last == " " { s.removeLast() }
            return s
        }
        return [line(header)] + rows.map(line)
    }

    func groupTable(_ g: Grouping) -> [String] {
        let rows = analyzer.statistics.rows(g, at: endNs)
        let header = [g.dimensions.map { $0.rawValue.uppercased() }.joined(separator: " "), "COUNT", "IOPS", "READ/s", "WRITE/s", "ERR",
                      "AVGF", "MAXF", "MIN", "AVG", "P50", "P90", "P99", "P99.9", "MAX"]
        let body = rows.map { r -> [String] in
            [r.label(deviceNames: deviceNames), String(r.count), Figures.fixed(r.iops, 1),
             Figures.bytes(UInt64(r.readBytesPerSecond)), Figures.bytes(UInt64(r.writeBytesPerSecond)), String(r.errors),
             g.tracksDepth ? Figures.fixed(r.inFlightMean, 2) : "-", g.tracksDepth ? String(r.inFlightMax) : "-"] + Self.latencyCells(r.latency)
        }
        return Self.table(header, body)
    }

    func more<T>(_ log: BoundedLog<T>, shown: Int) -> [String] {
        let rest = log.total - UInt64(shown)
        return rest > 0 ? ["  ... and \(rest) more"] : []
    }

    func text() -> String {
        var out: [String] = []
        let h = analyzer.matcher.health
        let span = endNs >= startNs ? endNs - startNs : 0
        out.append("vqtap stats: \(source)")
        out.append("Records \(records) over \(Figures.format(span)): chains \(h.chains), dropped \(h.dropped) (\(Figures.fixed(h.percent(h.dropped), 2))%), torn \(h.torn), orphans \(h.orphans), malformed \(h.malformed), undecodable \(h.undecodable)")
        for (instance, info) in analyzer.matcher.devices.sorted(by: { $0.key < $1.key }) {
            var line = "Device \(info.name): queues \(info.queueCount) x \(info.queueSize), cdb_size \(info.cdbSize), sense_size \(info.senseSize), features \(Hex.short(info.features))"
            if let eq = analyzer.matcher.eventq[instance] {
                line += "; eventq \(eq.events) events, \(eq.eventsMissed) missed, \(eq.outstanding) buffers at the end (max \(eq.maxOutstanding)), \(Figures.format(eq.emptyTotal(at: endNs))) without buffers"
            }
            out.append(line)
        }
        out.append("Commands \(analyzer.transactionCount), errors \(analyzer.errorCount), TMFs \(analyzer.tmfs.total), events \(analyzer.events.total), in flight at the end \(analyzer.matcher.inFlightCount), slower than \(Figures.format(analyzer.options.stuckThresholdNs)) \(analyzer.slowCompletions)")
        for g in groupings {
            out.append("")
            out.append("By \(g.name) (rates over the capture; AVGF/MAXF: commands in flight, mean and max)")
            out += groupTable(g).map { "  " + $0 }
        }
        let (summary, buckets) = analyzer.statistics.combinedHistogram()
        if summary.count > 0 {
            out.append("")
            out.append("Latency histogram (\(summary.count) commands)")
            let most = buckets.map(\.count).max() ?? 1
            let rows = buckets.map { b -> [String] in
                [Figures.format(b.lowNs) + " -> " + Figures.format(b.highNs), String(b.count),
                 "|" + String(repeating: "#", count: b.count == 0 ? 0 : max(1, Int(Double(b.count) / Double(most) * 40))).padding(40) + "|"]
            }
            out += Self.table(["LATENCY", "COUNT", "DISTRIBUTION"], rows).map { "  " + $0 }
        }
        let errors = analyzer.errors.elements.prefix(listLimit)
        out.append("")
        out.append("Errors (\(analyzer.errors.total))")
        out += Self.table(["TIME", "QUEUE", "LUN", "TAG", "OPCODE", "LATENCY", "OUTCOME"], errors.map { t in
            [relative(t.endNs), VirtioSCSIQueueRole(queue: t.queue).name, t.lun?.description ?? "?", t.tag.map(Hex.u64) ?? "?", t.opcodeName,
             t.latencyNs.map(Figures.format) ?? "-", t.outcome.detail]
        }, left: [1, 2, 3, 4, 6]).map { "  " + $0 }.dropFirst(errors.isEmpty ? 1 : 0)
        out += more(analyzer.errors, shown: errors.count)
        let tmfs = analyzer.tmfs.elements.prefix(listLimit)
        out.append("")
        out.append("TMFs (\(analyzer.tmfs.total))")
        out += tmfs.map { "  \(relative($0.startNs))  #\($0.serial) \($0.summary)" }
        out += more(analyzer.tmfs, shown: tmfs.count)
        let events = analyzer.events.elements.prefix(listLimit)
        out.append("")
        out.append("Events (\(analyzer.events.total))")
        out += events.map { "  \(relative($0.timeNs))  \($0.summary)" }
        out += more(analyzer.events, shown: events.count)
        let stuck = analyzer.stuck()
        out.append("")
        out.append("Stuck: in flight longer than \(Figures.format(analyzer.options.stuckThresholdNs)) at the end (\(stuck.count))")
        out += stuck.prefix(listLimit).map {
            "  \(relative($0.startNs))  \(VirtioSCSIQueueRole(queue: $0.queue).name) head \($0.head) \($0.lun?.description ?? "?") tag \(Hex.u64($0.tag)) \($0.opcodeName) age \(Figures.format($0.age(at: endNs)))"
        }
        let findings = analyzer.findings.elements.prefix(listLimit)
        out.append("")
        out.append("Findings (\(analyzer.findings.total))")
        for kind in Finding.Kind.allCases {
            out.append("  \(kind.rawValue.padding(20)) \(analyzer.findingCounts[kind] ?? 0)  \(kind.text)")
        }
        out += findings.map { "  \(relative($0.timeNs))  \($0.summary)" }
        out += more(analyzer.findings, shown: findings.count)
        out.append("  Not checked: " + Finding.notChecked)
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: JSON lines

    static func number(_ v: UInt64) -> JSONValue { .number(String(v)) }
    static func number(_ v: Double) -> JSONValue { .number(Figures.fixed(v, 3)) }

    static func latencyJSON(_ l: LatencySummary) -> JSONValue {
        .object([("count", number(l.count)), ("min_ns", number(l.min)), ("mean_ns", number(l.mean)), ("p50_ns", number(l.p50)),
                 ("p90_ns", number(l.p90)), ("p99_ns", number(l.p99)), ("p999_ns", number(l.p999)), ("max_ns", number(l.max))])
    }

    func keyJSON(_ r: GroupRow) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        for d in r.grouping.dimensions {
            switch d {
            case .device: out.append(("device", .string(deviceNames[r.key.device] ?? "dev\(r.key.device)")))
            case .queue: out.append(("queue", .string(VirtioSCSIQueueRole(queue: r.key.queue).name)))
            case .lun:
                out.append(("lun", r.key.lun.map { .object([("target", Self.number(UInt64($0.target))), ("lun", Self.number(UInt64($0.lun)))]) } ?? .null))
            case .opcode:
                if let o = r.key.opcode {
                    out.append(("opcode", Self.number(UInt64(o.opcode))))
                    out.append(("opcode_name", .string(o.name)))
                } else {
                    out.append(("opcode", .null))
                }
            case .outcome: out.append(("outcome", .string(r.key.outcome.name)))
            }
        }
        return out
    }

    func json() -> String {
        var lines: [JSONValue] = []
        let h = analyzer.matcher.health
        lines.append(.object([
            ("type", .string("summary")), ("source", .string(source)), ("records", Self.number(UInt64(records))),
            ("start_time_ns", Self.number(startNs)), ("duration_ns", Self.number(endNs >= startNs ? endNs - startNs : 0)),
            ("commands", Self.number(analyzer.transactionCount)), ("errors", Self.number(analyzer.errorCount)),
            ("tmfs", Self.number(analyzer.tmfs.total)), ("events", Self.number(analyzer.events.total)),
            ("in_flight", Self.number(UInt64(analyzer.matcher.inFlightCount))), ("slow", Self.number(analyzer.slowCompletions)),
            ("capture", .object([("chains", Self.number(h.chains)), ("dropped", Self.number(h.dropped)), ("torn", Self.number(h.torn)),
                                 ("orphans", Self.number(h.orphans)), ("malformed", Self.number(h.malformed)),
                                 ("undecodable", Self.number(h.undecodable))])),
            ("not_checked", .array([.string(Finding.notChecked)])),
        ]))
        for g in groupings {
            for r in analyzer.statistics.rows(g, at: endNs) {
                lines.append(.object([("type", .string("group")), ("by", .string(g.name))] + keyJSON(r) + [
                    ("count", Self.number(r.count)), ("errors", Self.number(r.errors)), ("iops", Self.number(r.iops)),
                    ("read_bytes", Self.number(r.bytesIn)), ("written_bytes", Self.number(r.bytesOut)),
                    ("read_bytes_per_s", Self.number(r.readBytesPerSecond)), ("written_bytes_per_s", Self.number(r.writeBytesPerSecond)),
                    ("in_flight_mean", Self.number(r.inFlightMean)), ("in_flight_max", Self.number(UInt64(r.inFlightMax))),
                    ("latency", Self.latencyJSON(r.latency)),
                ]))
            }
        }
        let (_, buckets) = analyzer.statistics.combinedHistogram()
        lines.append(.object([("type", .string("histogram")), ("buckets", .array(buckets.map {
            .object([("low_ns", Self.number($0.lowNs)), ("high_ns", Self.number($0.highNs)), ("count", Self.number($0.count))])
        }))]))
        for t in analyzer.errors.elements.prefix(listLimit) {
            lines.append(.object([
                ("type", .string("error")), ("time_ns", Self.number(t.endNs)), ("queue", .string(VirtioSCSIQueueRole(queue: t.queue).name)),
                ("id", .string(Hex.u64(t.id))), ("tag", t.tag.map { .string(Hex.u64($0)) } ?? .null),
                ("lun", t.lun.map { .object([("target", Self.number(UInt64($0.target))), ("lun", Self.number(UInt64($0.lun)))]) } ?? .null),
                ("opcode_name", .string(t.opcodeName)), ("latency_ns", t.latencyNs.map { Self.number($0) } ?? .null),
                ("outcome", .string(t.outcome.name)), ("status", Self.number(UInt64(t.outcome.status))),
                ("sense_key", t.outcome.senseKey.map { Self.number(UInt64($0)) } ?? .null),
                ("asc", t.outcome.asc.map { Self.number(UInt64($0)) } ?? .null), ("ascq", t.outcome.ascq.map { Self.number(UInt64($0)) } ?? .null),
            ]))
        }
        for t in analyzer.tmfs.elements.prefix(listLimit) {
            lines.append(.object([
                ("type", .string("tmf")), ("time_ns", Self.number(t.startNs)), ("serial", Self.number(t.serial)),
                ("subtype", Self.number(UInt64(t.subtype.rawValue))), ("subtype_name", .string(t.subtype.name)),
                ("tag", .string(Hex.u64(t.tag))), ("named", .array(t.named.map { .string(Hex.u64($0)) })),
                ("aborted", Self.number(UInt64(t.aborted))), ("response_name", t.response.map { .string($0.name(in: .taskManagement)) } ?? .null),
                ("latency_ns", t.latencyNs.map { Self.number($0) } ?? .null),
            ]))
        }
        for e in analyzer.events.elements.prefix(listLimit) {
            lines.append(.object([("type", .string("event")), ("time_ns", Self.number(e.timeNs)), ("event_name", .string(e.event.type.name)),
                                  ("events_missed", .bool(e.event.eventsMissed)), ("summary", .string(e.summary))]))
        }
        for c in analyzer.stuck().prefix(listLimit) {
            lines.append(.object([("type", .string("stuck")), ("start_time_ns", Self.number(c.startNs)), ("age_ns", Self.number(c.age(at: endNs))),
                                  ("queue", .string(VirtioSCSIQueueRole(queue: c.queue).name)), ("tag", .string(Hex.u64(c.tag))),
                                  ("opcode_name", .string(c.opcodeName))]))
        }
        for kind in Finding.Kind.allCases {
            lines.append(.object([("type", .string("finding_count")), ("finding", .string(kind.rawValue)), ("count", Self.number(analyzer.findingCounts[kind] ?? 0))]))
        }
        for f in analyzer.findings.elements.prefix(listLimit) {
            lines.append(.object([("type", .string("finding")), ("time_ns", Self.number(f.timeNs)), ("finding", .string(f.kind.rawValue)),
                                  ("detail", .string(f.detail))]))
        }
        return lines.map(\.text).joined(separator: "\n") + "\n"
    }

    // MARK: CSV

    func csv() -> String {
        var out = ["by,key,count,errors,iops,read_bytes_per_s,written_bytes_per_s,in_flight_mean,in_flight_max,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns"]
        func quoted(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingAll("\"", "\"\"") + "\"" : s }
        for g in groupings {
            for r in analyzer.statistics.rows(g, at: endNs) {
                let l = r.latency
                out.append([quoted(g.name), quoted(r.label(deviceNames: deviceNames)), String(r.count), String(r.errors),
                            Figures.fixed(r.iops, 3), Figures.fixed(r.readBytesPerSecond, 1), Figures.fixed(r.writeBytesPerSecond, 1),
                            Figures.fixed(r.inFlightMean, 3), String(r.inFlightMax), String(l.min), String(l.mean), String(l.p50),
                            String(l.p90), String(l.p99), String(l.p999), String(l.max)].joined(separator: ","))
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }

    func replacingAll(_ a: Character, _ b: String) -> String {
        var s = ""
        for c in self { if c == a { s += b } else { s.append(c) } }
        return s
    }
}

/// The latency histogram and latency over time, as an SVG drawn by hand.
enum StatsPlot {
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func f(_ v: Double) -> String { Figures.fixed(v, 1) }

    static func svg(analyzer: Analyzer, series: LatencySeries, title: String) -> String {
        let width = 900.0, panel = 300.0, left = 80.0, right = 20.0
        var s = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(2 * panel + 120))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"20\" font-size=\"15\">vqtap stats: \(escape(title))</text>",
        ]
        // Histogram: one bar per power-of-two bucket.
        let (summary, buckets) = analyzer.statistics.combinedHistogram()
        let top1 = 40.0, plotW = width - left - right, plotH = panel - 60
        s.append("<text x=\"\(f(left))\" y=\"\(f(top1 - 5))\">Latency histogram: \(summary.count) commands, p50 \(Figures.format(summary.p50)), p99 \(Figures.format(summary.p99)), max \(Figures.format(summary.max))</text>")
        s.append("<rect x=\"\(f(left))\" y=\"\(f(top1))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888\"/>")
        // Counts on a log scale, so that the tail a disk is slow in stays visible.
        let most = Double(buckets.map(\.count).max() ?? 1)
        let top = log10(most + 1)
        let barW = buckets.isEmpty ? 0 : plotW / Double(buckets.count)
        for (i, b) in buckets.enumerated() {
            let h = top > 0 ? log10(Double(b.count) + 1) / top * plotH : 0
            let x = left + Double(i) * barW
            s.append("<rect x=\"\(f(x + 1))\" y=\"\(f(top1 + plotH - h))\" width=\"\(f(max(1, barW - 2)))\" height=\"\(f(h))\" fill=\"#4a90d9\"><title>\(Figures.format(b.lowNs)) - \(Figures.format(b.highNs)): \(b.count)</title></rect>")
            if buckets.count <= 24 || i % 2 == 0 {
                s.append("<text x=\"\(f(x + barW / 2))\" y=\"\(f(top1 + plotH + 14))\" text-anchor=\"middle\" font-size=\"9\">\(Figures.format(b.lowNs))</text>")
            }
        }
        s.append("<text x=\"\(f(left - 8))\" y=\"\(f(top1 + 10))\" text-anchor=\"end\">\(Int(most))</text>")
        s.append("<text x=\"\(f(left - 8))\" y=\"\(f(top1 + 24))\" text-anchor=\"end\" font-size=\"9\">(log)</text>")
        s.append("<text x=\"\(f(left - 8))\" y=\"\(f(top1 + plotH))\" text-anchor=\"end\">0</text>")
        // Latency over time: p50, p99 and max per interval, on a log scale.
        let top2 = top1 + panel + 30
        let points = series.points
        s.append("<text x=\"\(f(left))\" y=\"\(f(top2 - 5))\">Latency over time (per \(Figures.format(series.intervalNs))): <tspan fill=\"#2a7\">p50</tspan> <tspan fill=\"#d80\">p99</tspan> <tspan fill=\"#c33\">max</tspan></text>")
        s.append("<rect x=\"\(f(left))\" y=\"\(f(top2))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888\"/>")
        if let first = points.first, let last = points.last {
            let lo = log10(Double(max(1, points.map(\.p50).min() ?? 1))) - 0.2, hi = log10(Double(max(2, points.map(\.max).max() ?? 2))) + 0.1
            let span = max(0.5, hi - lo)
            let t0 = Double(first.startNs), t1 = max(t0 + 1, Double(last.startNs))
            func x(_ p: LatencySeries.Point) -> Double { left + (Double(p.startNs) - t0) / (t1 - t0) * plotW }
            func y(_ v: UInt64) -> Double { top2 + plotH - (log10(Double(max(1, v))) - lo) / span * plotH }
            for (keyPath, colour) in [(\LatencySeries.Point.max, "#c33"), (\LatencySeries.Point.p99, "#d80"), (\LatencySeries.Point.p50, "#2a7")] {
                let path = points.map { "\(f(x($0))),\(f(y($0[keyPath: keyPath])))" }.joined(separator: " ")
                s.append("<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(path)\"/>")
            }
            var decade = floor(lo)
            while decade <= ceil(hi) {
                let v = UInt64(pow10(decade))
                let yy = y(v)
                if yy >= top2 && yy <= top2 + plotH {
                    s.append("<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(yy))\" y2=\"\(f(yy))\" stroke=\"#ddd\"/>")
                    s.append("<text x=\"\(f(left - 8))\" y=\"\(f(yy + 4))\" text-anchor=\"end\">\(Figures.format(v))</text>")
                }
                decade += 1
            }
            s.append("<text x=\"\(f(left))\" y=\"\(f(top2 + plotH + 14))\">0s</text>")
            s.append("<text x=\"\(f(left + plotW))\" y=\"\(f(top2 + plotH + 14))\" text-anchor=\"end\">\(Figures.format(last.startNs - first.startNs))</text>")
        } else {
            s.append("<text x=\"\(f(left + 10))\" y=\"\(f(top2 + 20))\">no completed commands with a latency</text>")
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }

    static func pow10(_ d: Double) -> Double {
        var v = 1.0
        if d >= 0 { for _ in 0..<Int(d) { v *= 10 } }
        return v
    }
}
