import VQAnalysis
import VQOutput
import VQRecord
import VirtioSCSI
import VQWire

// The screens of `vqtap top`, drawn from a snapshot into a screen buffer. Layout: a title
// line, the tabs, the screen's body, a key line. Everything fits 80x24; wider and taller
// terminals get more columns and rows.

public enum TopView {
    public static func render(_ s: TopSnapshot, _ v: ViewState, width: Int, height: Int) -> ScreenBuffer {
        var b = ScreenBuffer(width: width, height: height)
        guard width >= 20, height >= 5 else {
            b.put(0, 0, "vqtap top: window too small")
            return b
        }
        title(&b, s, v)
        tabs(&b, v)
        let body = 2..<(height - 1)
        switch v.screen {
        case .overview: overview(&b, s, body)
        case .luns: groupTable(&b, s, v, s.lunRows, "LUN", body)
        case .opcodes: groupTable(&b, s, v, s.opcodeRows, "OPCODE", body)
        case .latency: latency(&b, s, body)
        case .log: log(&b, s, v, body)
        case .requests: requests(&b, s, v, body)
        }
        keyLine(&b, v)
        if v.showHelp { help(&b) }
        return b
    }

    // MARK: Frame

    static func seconds(_ ns: UInt64) -> String { Figures.fixed(Double(ns) / 1e9, 3) + "s" }

    static func title(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ v: ViewState) {
        let names = s.devices.map(\.info.name).joined(separator: ",")
        var left = "vqtap top  " + (names.isEmpty ? "(no device yet)" : names) + "  " + s.source
        var right = "t=" + seconds(s.nowNs >= s.startNs ? s.nowNs - s.startNs : 0)
        if s.finished { right = "end  " + right }
        if v.paused { right = "PAUSED  " + right }
        let room = b.width - right.count - 1
        if left.count > room { left = String(left.prefix(max(0, room - 1))) + "~" }
        b.put(0, 0, left)
        b.put(0, b.width - right.count, right)
        b.paint(0, .title)
    }

    static func tabs(_ b: inout ScreenBuffer, _ v: ViewState) {
        var c = 0
        for screen in TopScreen.allCases {
            let label = " \(screen.rawValue + 1) \(screen.title) "
            b.put(1, c, label, screen == v.screen ? .tabSelected : .tab)
            c += label.count
        }
        if !v.filter.isEmpty { b.put(1, c + 1, "filter: " + v.filter, .warning) }
    }

    static func keyLine(_ b: inout ScreenBuffer, _ v: ViewState) {
        let r = b.height - 1
        if let text = v.editingFilter {
            b.put(r, 0, "Filter (LUN 0:1, opcode, outcome; Enter applies, Esc cancels): " + text + "_", .key)
            return
        }
        var keys = "q quit  p pause  Tab screen  s sort  r reset  / filter  ? help"
        if let sort = v.sortName(v.screen), v.screen != .log { keys += "   sort: " + sort }
        b.put(r, 0, keys, .key)
    }

    static func help(_ b: inout ScreenBuffer) {
        let lines = [
            "vqtap top keys",
            "",
            "q            quit",
            "p, space     pause the display",
            "Tab, arrows  next/previous screen (1-6 jump)",
            "Up/Down      select a request or log line",
            "PgUp/PgDn    move by ten lines",
            "s            sort by the next column",
            "r            reset the statistics",
            "/            filter by LUN, opcode or outcome",
            "Esc          clear the filter",
            "?            this help (any key closes it)",
        ]
        let w = min(b.width - 4, 52), h = min(b.height - 4, lines.count + 2)
        let top = max(1, (b.height - h) / 2), left = max(0, (b.width - w) / 2)
        for r in 0..<h {
            b.put(top + r, left, String(repeating: " ", count: w))
            b.paint(top + r, .selected, from: left, to: left + w)
        }
        for (i, line) in lines.prefix(h - 2).enumerated() {
            b.put(top + 1 + i, left + 2, line, .selected, limit: w - 4)
        }
    }

    // MARK: Overview

    static func latencyCells(_ l: LatencySummary) -> [String] {
        l.count == 0 ? ["-", "-", "-", "-"] : [Figures.format(l.p50), Figures.format(l.p99), Figures.format(l.p999), Figures.format(l.max)]
    }

    static func rate(_ v: Double) -> String {
        v >= 10 ? String(Int(v.rounded())) : Figures.fixed(v, 1)
    }

    static func bytesRate(_ v: Double) -> String { Figures.bytes(UInt64(max(0, v).rounded())) }

    static func percent(_ v: Double) -> String { Figures.fixed(v, 2) + "%" }

    static func overview(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ body: Range<Int>) {
        var r = body.lowerBound
        for (instance, info) in s.devices {
            guard r < body.upperBound else { break }
            var line = "Device \(info.name)"
            if let state = info.state { line += " (\(state.name))" }
            line += "  queues \(info.queueCount) x \(info.queueSize)  cdb \(info.cdbSize)  sense \(info.senseSize)"
            line += "  features " + Hex.short(info.features)
            if let eq = s.eventq[instance] {
                line += "  eventq \(eq.outstanding) buffers"
            }
            b.put(r, 0, line)
            r += 1
        }
        if s.devices.isEmpty {
            b.put(r, 0, "Waiting for a device...", .dim)
            r += 1
        }
        let h = s.health
        let healthStyle: CellStyle = h.dropped > 0 || h.torn > 0 || s.viewSkipped > 0 ? .warning : .normal
        var health = "Capture  chains \(h.chains)  dropped \(percent(h.percent(h.dropped)))  torn \(percent(h.percent(h.torn)))  orphans \(h.orphans)  malformed \(h.malformed)"
        // The view could not keep up: what it shows is a sample.
        if s.viewSkipped > 0 { health += "  view skipped \(s.viewSkipped) records" }
        b.put(r, 0, health, healthStyle)
        r += 1
        let totalIOPS = s.deviceRows.reduce(0) { $0 + $1.window.iops }
        let read = s.deviceRows.reduce(0) { $0 + $1.window.readBytesPerSecond }
        let written = s.deviceRows.reduce(0) { $0 + $1.window.writeBytesPerSecond }
        b.put(r, 0, "Last \(Figures.format(s.windowNs))  IOPS \(rate(totalIOPS))  read \(bytesRate(read))/s  write \(bytesRate(written))/s  in flight \(s.inFlight)")
        r += 1
        let findings = s.findingCounts.values.reduce(0, +)
        b.put(r, 0, "Totals   commands \(s.transactionCount)  errors \(s.errorCount)  TMFs \(s.tmfCount)  events \(s.eventCount)  findings \(findings)",
              s.errorCount > 0 || findings > 0 ? .warning : .normal)
        r += 2
        let cols = [Column("QUEUE", 9, right: false), Column("IOPS", 7), Column("READ/s", 7), Column("WRITE/s", 7), Column("INFL", 4),
                    Column("MAXF", 4), Column("P50", 7), Column("P99", 7), Column("P99.9", 7), Column("MAX", 7)]
        guard r < body.upperBound else { return }
        b.put(r, 0, row(cols, cols.map(\.title)), .header)
        b.paint(r, .header)
        r += 1
        for q in s.queueRows where r < body.upperBound - 2 {
            let label = q.label(deviceNames: s.deviceNames)
            let values = [label, rate(q.window.iops), bytesRate(q.window.readBytesPerSecond), bytesRate(q.window.writeBytesPerSecond),
                          String(q.inFlight), String(q.inFlightMax)] + latencyCells(q.window.latency)
            b.put(r, 0, row(cols, values))
            r += 1
        }
        r += 1
        guard r < body.upperBound else { return }
        let stuckText = s.stuck.isEmpty ? "none" : s.stuck.prefix(3).map { "\($0.opcodeName) \($0.lun?.description ?? "?") \(Figures.format($0.age(at: s.nowNs)))" }.joined(separator: ", ")
        b.put(r, 0, "Stuck (>\(Figures.format(s.stuckThresholdNs))): \(s.stuck.count)  \(stuckText)", s.stuck.isEmpty ? .normal : .error)
        r += 1
        guard r < body.upperBound else { return }
        let counts = Finding.Kind.allCases.compactMap { k -> String? in
            guard let n = s.findingCounts[k], n > 0 else { return nil }
            return "\(k.rawValue) \(n)"
        }
        b.put(r, 0, "Findings: " + (counts.isEmpty ? "none" : counts.joined(separator: "  ")), counts.isEmpty ? .normal : .warning)
        r += 1
        for (instance, eq) in s.eventq.sorted(by: { $0.key < $1.key }) where r < body.upperBound {
            let name = s.deviceNames[instance] ?? "dev\(instance)"
            b.put(r, 0, "Eventq \(name): \(eq.outstanding) buffers (max \(eq.maxOutstanding))  events \(eq.events)  missed \(eq.eventsMissed)  empty \(Figures.format(eq.emptyTotal(at: s.nowNs)))",
                  eq.eventsMissed > 0 || eq.outstanding == 0 ? .warning : .normal)
            r += 1
        }
        guard r + 1 < body.upperBound, !s.outcomeRows.isEmpty else { return }
        r += 1
        b.put(r, 0, "Outcomes", .header)
        r += 1
        for o in s.outcomeRows.sorted(by: { $0.count > $1.count }) where r < body.upperBound {
            let share = s.transactionCount == 0 ? 0 : Double(o.count) * 100 / Double(s.transactionCount)
            b.put(r, 0, Column("", 9).cell(String(o.count)) + " " + Column("", 7).cell(percent(share)) + "  " + o.key.outcome.name,
                  o.key.outcome.isGood ? .normal : .error)
            r += 1
        }
    }

    // MARK: Tables (LUN, opcode)

    static func sortedRows(_ rows: [GroupRow], _ v: ViewState, _ s: TopSnapshot) -> [GroupRow] {
        let filtered = rows.filter { v.matches([$0.label(deviceNames: s.deviceNames)]) }
        switch v.sort[v.screen] ?? 0 {
        case 1: return filtered.sorted { $0.count > $1.count }
        case 2: return filtered.sorted { $0.window.iops > $1.window.iops }
        case 3: return filtered.sorted { $0.latency.p99 > $1.latency.p99 }
        case 4: return filtered.sorted { $0.latency.max > $1.latency.max }
        case 5: return filtered.sorted { $0.errors > $1.errors }
        default: return filtered
        }
    }

    static func groupTable(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ v: ViewState, _ rows: [GroupRow], _ name: String, _ body: Range<Int>) {
        let wide = b.width >= 120
        let isLUN = name == "LUN"
        let labelWidth = isLUN ? 9 : (wide ? 24 : 16)  // "(unknown)", "255:16383"
        var cols = [Column(name, labelWidth, right: false), Column("COUNT", isLUN ? 8 : 7), Column("IOPS", 6), Column("ERR", isLUN ? 5 : 4)]
        if wide { cols += [Column("READ/s", 7), Column("WRITE/s", 7), Column("INFL", 4), Column("AVGF", 5), Column("MIN", 7)] }
        cols += [Column("AVG", 7), Column("P50", 7)]
        if wide || isLUN { cols += [Column("P90", 7)] }
        cols += [Column("P99", 7), Column("P99.9", 7), Column("MAX", 7)]
        var r = body.lowerBound
        b.put(r, 0, "Rates over the last \(Figures.format(s.windowNs)); counts and latency over the run.", .dim)
        r += 1
        b.put(r, 0, row(cols, cols.map(\.title)), .header)
        b.paint(r, .header)
        r += 1
        let shown = sortedRows(rows, v, s)
        if shown.isEmpty { b.put(r, 0, v.filter.isEmpty ? "No commands yet." : "No row matches the filter.", .dim) }
        for g in shown where r < body.upperBound {
            let l = g.latency
            var values = [g.label(deviceNames: s.deviceNames), String(g.count), rate(g.window.iops), String(g.errors)]
            if wide {
                values += [bytesRate(g.window.readBytesPerSecond), bytesRate(g.window.writeBytesPerSecond), String(g.inFlight),
                           Figures.fixed(g.inFlightMean, 1)]
            }
            func f(_ v: UInt64) -> String { l.count == 0 ? "-" : Figures.format(v) }
            if wide { values.append(f(l.min)) }
            values += [f(l.mean), f(l.p50)]
            if wide || isLUN { values.append(f(l.p90)) }
            values += [f(l.p99), f(l.p999), f(l.max)]
            b.put(r, 0, row(cols, values), g.errors > 0 ? .warning : .normal)
            r += 1
        }
    }

    // MARK: Latency histogram

    static func latency(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ body: Range<Int>) {
        var r = body.lowerBound
        let l = s.latency
        if l.count == 0 {
            b.put(r, 0, "No completed commands yet.", .dim)
            return
        }
        b.put(r, 0, "\(l.count) commands over the run  min \(Figures.format(l.min))  mean \(Figures.format(l.mean))  max \(Figures.format(l.max))")
        b.put(r + 1, 0, "p50 \(Figures.format(l.p50))  p90 \(Figures.format(l.p90))  p99 \(Figures.format(l.p99))  p99.9 \(Figures.format(l.p999))")
        r += 3
        let rangeWidth = 19, countWidth = 9
        let barWidth = max(10, b.width - rangeWidth - countWidth - 6)
        b.put(r, 0, Column("latency", rangeWidth).cell("latency") + " : " + Column("count", countWidth).cell("count") + "  distribution", .header)
        b.paint(r, .header)
        r += 1
        var buckets = s.buckets
        // Keep the busiest part when the buckets do not all fit.
        let room = body.upperBound - r
        while buckets.count > room, let first = buckets.first, let last = buckets.last {
            if first.count <= last.count { buckets.removeFirst() } else { buckets.removeLast() }
        }
        let most = buckets.map(\.count).max() ?? 1
        for bucket in buckets where r < body.upperBound {
            let range = Figures.format(bucket.lowNs) + " -> " + Figures.format(bucket.highNs)
            let n = bucket.count == 0 ? 0 : max(1, Int((Double(bucket.count) / Double(max(1, most)) * Double(barWidth)).rounded()))
            b.put(r, 0, Column("", rangeWidth).cell(range) + " : " + Column("", countWidth).cell(String(bucket.count)) + " |")
            b.put(r, rangeWidth + countWidth + 5, String(repeating: "#", count: n), .bar)
            b.put(r, rangeWidth + countWidth + 5 + barWidth, "|")
            r += 1
        }
    }

    // MARK: Log

    static func style(_ kind: LogEntry.Kind) -> CellStyle {
        switch kind {
        case .error: .error
        case .finding: .warning
        case .tmf: .good
        case .event, .device: .normal
        }
    }

    static func log(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ v: ViewState, _ body: Range<Int>) {
        var r = body.lowerBound
        let entries = s.log.filter { v.matches([$0.text, $0.kind.rawValue]) }
        b.put(r, 0, "TMFs \(s.tmfCount)  events \(s.eventCount)  errors \(s.errorCount)  findings \(s.findingCounts.values.reduce(0, +))   newest first", .dim)
        r += 1
        if entries.isEmpty {
            b.put(r, 0, "Nothing logged yet.", .dim)
            return
        }
        let rows = body.upperBound - r
        let newestFirst = Array(entries.reversed())
        let selected = min(v.selection, newestFirst.count - 1)
        let first = max(0, selected - rows + 1)
        for (i, e) in newestFirst.enumerated().dropFirst(first).prefix(rows) {
            let t = e.timeNs >= s.startNs ? e.timeNs - s.startNs : 0
            let line = Column("", 10).cell(seconds(t)) + " " + Column("", 7, right: false).cell(e.kind.rawValue) + " " + e.text
            b.put(r, 0, line, i == selected ? .selected : style(e.kind))
            if i == selected { b.paint(r, .selected) }
            r += 1
        }
    }

    // MARK: Requests

    static func requestRows(_ s: TopSnapshot, _ v: ViewState) -> [Transaction] {
        let filtered = s.recent.filter { t in
            v.matches([t.lun?.description ?? "?", t.opcodeName, t.outcome.name])
        }
        switch v.sort[.requests] ?? 0 {
        case 1: return filtered.sorted { ($0.latencyNs ?? 0) > ($1.latencyNs ?? 0) }
        case 2: return filtered.sorted { ($0.lun ?? LUNAddress(target: 0, lun: 0), $1.endNs) < ($1.lun ?? LUNAddress(target: 0, lun: 0), $0.endNs) }
        case 3: return filtered.sorted { ($0.opcodeName, $1.endNs) < ($1.opcodeName, $0.endNs) }
        default: return filtered.reversed()
        }
    }

    static func requests(_ b: inout ScreenBuffer, _ s: TopSnapshot, _ v: ViewState, _ body: Range<Int>) {
        var r = body.lowerBound
        let wide = b.width >= 120
        var cols = [Column("TIME", 10), Column("QUEUE", 8, right: false), Column("LUN", 5, right: false)]
        if wide { cols.append(Column("TAG", 18, right: false)) }
        cols += [Column("OPCODE", wide ? 22 : 14, right: false), Column("LBA", 10), Column("BYTES", 6), Column("LATENCY", 7)]
        cols.append(Column("OUTCOME", max(8, b.width - cols.reduce(0) { $0 + $1.width + 1 } - 1), right: false))
        b.put(r, 0, row(cols, cols.map(\.title)), .header)
        b.paint(r, .header)
        r += 1
        let list = requestRows(s, v)
        if list.isEmpty {
            b.put(r, 0, v.filter.isEmpty ? "No completed commands yet." : "No request matches the filter.", .dim)
            return
        }
        let listRows = max(3, (body.upperBound - r) / 2 - 1)
        let selected = min(v.selection, list.count - 1)
        let first = max(0, selected - listRows + 1)
        for (i, t) in list.enumerated().dropFirst(first).prefix(listRows) {
            let time = t.endNs >= s.startNs ? t.endNs - s.startNs : 0
            var values = [seconds(time), VirtioSCSIQueueRole(queue: t.queue).name, t.lun?.description ?? "?"]
            if wide { values.append(t.tag.map(Hex.u64) ?? "?") }
            values += [t.opcodeName, t.lba.map(String.init) ?? "-", Figures.bytes(t.bytesIn + t.bytesOut),
                       t.latencyNs.map(Figures.format) ?? "-", t.outcome.name]
            b.put(r, 0, row(cols, values), i == selected ? .selected : (t.isError ? .error : .normal))
            if i == selected { b.paint(r, .selected) }
            r += 1
        }
        r = body.lowerBound + 1 + listRows
        guard r < body.upperBound else { return }
        let t = list[selected]
        var header = "Details: \(VirtioSCSIQueueRole(queue: t.queue).name) head \(t.head) id \(t.id)"
        if let serial = t.tmfSerial { header += "  named by TMF #\(serial)" }
        if !t.flags.names.isEmpty { header += "  flags " + t.flags.names.joined(separator: ",") }
        b.put(r, 0, String(repeating: "-", count: b.width), .dim)
        b.put(r, 2, " " + header + " ", .header)
        r += 1
        var lines = ["Request:  " + (t.request?.summary ?? "(not captured)"), "Response: " + (t.response?.summary ?? "(none)"),
                     "Outcome:  " + t.outcome.detail + (t.latencyNs.map { "  latency " + Figures.format($0) } ?? "")]
        // The full decode, without the protocol's own group line.
        for decode in [t.request, t.response].compactMap({ $0 }) {
            lines += FieldText.lines(decode.fields.flatMap(\.children))
        }
        for line in lines where r < body.upperBound {
            b.put(r, 0, line)
            r += 1
        }
    }
}
