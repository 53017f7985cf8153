import VQAnalysis
import VQRecord
import VQWire
import VirtioSCSI

// Decoded records as people read them, the same live and from a file: one line per record
// in the style of tcpdump (`>` driver to device, `<` device to driver, `!` loss, `*` device
// state), `-v` adds the record details and every field, `-vv` the segments and a hex dump;
// or one JSON object per record (DESIGN.md conventions: `time_ns`, `latency_ns`, 64-bit ids
// as hex strings, the decode under `virtio_scsi`, a completion's request under `request`).

public struct RecordFormatter: Sendable {
    public var verbosity: Int

    public init(verbosity: Int = 0) { self.verbosity = verbosity }

    public func text(_ d: DecodedRecord) -> String {
        let r = d.record
        var line = "\(Self.clock(r.timestampNs)) \(d.deviceName) \(d.queueName) "
        switch r.body {
        case let .drop(drop):
            line += "! dropped \(drop.count) chain\(drop.count == 1 ? "" : "s"): \(drop.reason == .availableLapped ? "available" : "used") ring lapped"
        case let .deviceState(m):
            line += "* \(m.state.name): generation \(m.generation), \(m.queueSize) entries, cdb_size \(m.cdbSize), sense_size \(m.senseSize), features \(Hex.short(m.features))"
        case .chain:
            line += r.kind == .available ? "> " : "< "
            line += d.decode?.summary ?? ""
            if r.kind == .used {
                if let request = d.request {
                    line += " (\(Self.requestKey(request)), \(Self.latency(r.latencyNs)))"
                }
            }
        }
        if !r.flags.isEmpty { line += " [\(r.flags.names.joined(separator: ","))]" }
        if r.flags.contains(.malformed) { line += " error \(r.errorCode) detail \(Hex.short(r.errorDetail))" }
        guard verbosity > 0, case let .chain(segments) = r.body else { return line }

        var lines = [line]
        var details = "    head \(r.head), ring index \(r.ringIndex), transaction \(r.transactionID), \(segments.count) segment\(segments.count == 1 ? "" : "s")"
        if r.kind == .used { details += ", used length \(r.usedLength), latency \(r.latencyNs) ns" }
        lines.append(details)
        if let decode = d.decode { lines += FieldText.lines(decode.fields, indent: 1) }
        if verbosity >= 2 {
            for (i, s) in segments.enumerated() {
                let flags = Naming.flagNames(UInt64(s.flags & 0x7), [(1, "NEXT"), (2, "WRITE"), (4, "INDIRECT")])
                lines.append("    segment \(i): \(Hex.u64(s.address)) len \(s.length) captured \(s.bytes.count)"
                    + (flags.isEmpty ? "" : " \(flags.joined(separator: ","))") + (s.isFromIndirect ? " (indirect table)" : ""))
                lines += Hex.dump(s.bytes, indent: "\t")
            }
        }
        return lines.joined(separator: "\n")
    }

    public func json(_ d: DecodedRecord) -> String {
        let r = d.record
        var m: [(String, JSONValue)] = [
            ("time_ns", .number(String(r.timestampNs))),
            ("record", .string(r.kind.name)),
            ("device", .string(d.deviceName)),
            ("queue", .number(String(r.queue))),
            ("queue_name", .string(d.queueName)),
        ]
        switch r.body {
        case let .drop(drop):
            m.append(("dropped", .number(String(drop.count))))
            m.append(("reason", .string(drop.reason == .availableLapped ? "available ring lapped" : "used ring lapped")))
        case let .deviceState(s):
            m.append(("state", .string(s.state.name)))
            m.append(("generation", .number(String(s.generation))))
            m.append(("features", .string(Hex.u64(s.features))))
            m.append(("queue_size", .number(String(s.queueSize))))
            m.append(("cdb_size", .number(String(s.cdbSize))))
            m.append(("sense_size", .number(String(s.senseSize))))
            m.append(("desc", .string(Hex.u64(s.descAddress))))
            m.append(("avail", .string(Hex.u64(s.availAddress))))
            m.append(("used", .string(Hex.u64(s.usedAddress))))
        case let .chain(segments):
            m.append(("head", .number(String(r.head))))
            m.append(("ring_index", .number(String(r.ringIndex))))
            m.append(("transaction_id", .number(String(r.transactionID))))
            if r.kind == .used {
                m.append(("used_length", .number(String(r.usedLength))))
                if d.request != nil { m.append(("latency_ns", .number(String(r.latencyNs)))) }
            }
            m.append(("segments", .array(segments.map { s in
                .object([
                    ("address", .string(Hex.u64(s.address))),
                    ("length", .number(String(s.length))),
                    ("flags", .number(String(s.flags))),
                    ("captured", .number(String(s.bytes.count))),
                ])
            })))
        }
        if !r.flags.isEmpty { m.append(("flags", .array(r.flags.names.map { .string($0) }))) }
        if r.flags.contains(.malformed) {
            m.append(("error", .number(String(r.errorCode))))
            m.append(("error_detail", .string(Hex.u64(r.errorDetail))))
        }
        var object = FieldJSON.object(d.decode?.fields ?? [], extra: m)
        if let request = d.request, case let .object(members) = object {
            object = .object(members + [("request", FieldJSON.object(Self.keyFields(request.fields)))])
        }
        return object.text
    }

    /// A request's summary without its kind word: what a completion line repeats of it.
    static func requestKey(_ request: ChainDecode) -> String {
        let s = request.summary
        guard let space = s.firstIndex(of: " ") else { return s }
        return String(s[s.index(after: space)...])
    }

    /// The request's fields without its payload bytes, for a completion's `request` object.
    static func keyFields(_ fields: [Field]) -> [Field] {
        fields.compactMap { f in
            if f.name.hasPrefix("virtio_scsi.data_out") || f.name == "virtio_scsi.pi.data_out" { return nil }
            var copy = f
            copy.children = keyFields(f.children)
            return copy
        }
    }

    /// `81.2us`, `1.35ms`, `2.001s`: three significant digits, as biolatency and fio print.
    public static func latency(_ ns: UInt64) -> String {
        func fmt(_ v: Double, _ unit: String) -> String {
            let digits = v >= 100 ? 0 : v >= 10 ? 1 : 2
            var s = String(Int((v * pow10(digits)).rounded()))
            if digits > 0 {
                while s.count <= digits { s = "0" + s }
                s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
            }
            return s + unit
        }
        if ns < 1_000 { return "\(ns)ns" }
        if ns < 1_000_000 { return fmt(Double(ns) / 1e3, "us") }
        if ns < 1_000_000_000 { return fmt(Double(ns) / 1e6, "ms") }
        return fmt(Double(ns) / 1e9, "s")
    }

    private static func pow10(_ n: Int) -> Double { n == 0 ? 1 : n == 1 ? 10 : 100 }

    /// `HH:MM:SS.nnnnnnnnn`, UTC, the time of day of a wall-clock timestamp.
    public static func clock(_ ns: UInt64) -> String {
        let secondsOfDay = (ns / 1_000_000_000) % 86_400
        let h = secondsOfDay / 3600, m = (secondsOfDay / 60) % 60, s = secondsOfDay % 60
        func two(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let frac = String(ns % 1_000_000_000)
        return "\(two(h)):\(two(m)):\(two(s)).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
    }
}
