import VQOutput
import VQRecord
import VQWire

/// Turns capture records into what `capture` and `read` print: one line per record (tcpdump
/// style), more with -v/-vv, or JSON lines. It keeps the state that pairing needs (a
/// completion shows its request's key fields and latency), so it is fed every record in
/// order. Live capture and file reading share it: the same records print the same way.
struct RecordPresenter {
    var verbosity: Int
    var format: OutputFormat

    init(verbosity: Int, format: OutputFormat) {
        self.verbosity = verbosity
        self.format = format
    }

    /// The text for one record (possibly several lines), or nil to print nothing.
    mutating func render(_ record: CaptureRecord) -> String? {
        switch format {
        case .json:
            return FieldJSON.line([], extra: Self.headerJSON(record))
        case .text:
            return Self.headerLine(record)
        }
    }

    static func headerLine(_ r: CaptureRecord) -> String {
        let time = Self.clock(r.timestampNs)
        var s = "\(time) q\(r.queue) \(r.kind.name)"
        switch r.body {
        case let .chain(segments):
            s += " head \(r.head) id \(r.transactionID) segs \(segments.count)"
            if r.kind == .used { s += " len \(r.usedLength) latency \(r.latencyNs)ns" }
        case let .drop(d):
            s += " \(d.count) chains (\(d.reason == .availableLapped ? "available" : "used") ring lapped)"
        case let .deviceState(m):
            s += " \(m.deviceName) \(m.state.name) generation \(m.generation)"
        }
        if !r.flags.isEmpty { s += " [\(r.flags.names.joined(separator: ","))]" }
        return s
    }

    static func headerJSON(_ r: CaptureRecord) -> [(String, JSONValue)] {
        var m: [(String, JSONValue)] = [
            ("time_ns", .number(String(r.timestampNs))),
            ("record", .string(r.kind.name)),
            ("queue", .number(String(r.queue))),
        ]
        if case .chain = r.body {
            m.append(("head", .number(String(r.head))))
            m.append(("transaction_id", .number(String(r.transactionID))))
            if r.kind == .used {
                m.append(("used_length", .number(String(r.usedLength))))
                m.append(("latency_ns", .number(String(r.latencyNs))))
            }
        }
        if !r.flags.isEmpty { m.append(("flags", .array(r.flags.names.map { .string($0) }))) }
        return m
    }

    /// `HH:MM:SS.nnnnnnnnn` of the wall-clock time, UTC, as tcpdump prints with `-tttt`-like precision.
    static func clock(_ ns: UInt64) -> String {
        let secondsOfDay = (ns / 1_000_000_000) % 86_400
        let h = secondsOfDay / 3600, m = (secondsOfDay / 60) % 60, s = secondsOfDay % 60
        func two(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let frac = String(ns % 1_000_000_000)
        return "\(two(h)):\(two(m)):\(two(s)).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
    }
}
