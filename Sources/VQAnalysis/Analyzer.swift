import VQRecord
import VirtioSCSI
import VQWire

// The whole analysis of a record stream: the record decoder (pairing), the transaction
// matcher, statistics and bounded logs, fed one record at a time. `top` and `stats` both
// drive one; `snapshot` is what they draw or print (the model, separate from drawing).

/// A line of the log of TMFs, events, errors and findings.
public struct LogEntry: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case tmf, event, error, finding, device
    }

    public var timeNs: UInt64
    public var kind: Kind
    public var device: UInt16
    public var text: String
    public var transactionID: UInt64?
}

/// A bounded list that keeps the newest entries and counts the rest.
public struct BoundedLog<Element: Sendable>: Sendable {
    public let limit: Int
    private var storage: [Element] = []
    private var start = 0
    public private(set) var total: UInt64 = 0

    public init(limit: Int) {
        precondition(limit > 0, "a log keeps at least one entry")
        self.limit = limit
    }

    public mutating func append(_ e: Element) {
        total += 1
        if storage.count < limit {
            storage.append(e)
        } else {
            storage[start] = e
            start = (start + 1) % limit
        }
    }

    /// Oldest first.
    public var elements: [Element] { Array(storage[start...] + storage[..<start]) }
    public var count: Int { storage.count }
    public var dropped: UInt64 { total - UInt64(storage.count) }

    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        start = 0
        total = 0
    }
}

public struct Analyzer {
    public struct Options: Sendable {
        public var statistics = Statistics.Options()
        public var matcher = TransactionMatcher.Options()
        public var stuckThresholdNs: UInt64 = 1_000_000_000
        public var logLimit = 10_000
        public var recentLimit = 1000
        /// Keep the transactions that ended in error (for `stats`' list), up to `logLimit`.
        public var keepErrors = true
        public init() {}
    }

    public let options: Options
    public private(set) var decoder = RecordDecoder()
    public private(set) var matcher: TransactionMatcher
    public private(set) var statistics: Statistics
    public private(set) var log: BoundedLog<LogEntry>
    public private(set) var recent: BoundedLog<Transaction>
    public private(set) var errors: BoundedLog<Transaction>
    public private(set) var tmfs: BoundedLog<TMFTransaction>
    public private(set) var events: BoundedLog<EventRecord>
    public private(set) var findings: BoundedLog<Finding>
    public private(set) var findingCounts: [Finding.Kind: UInt64] = [:]
    /// TMFs by subtype name and response name ("outstanding" before the response).
    public private(set) var tmfCounts: [String: UInt64] = [:]
    public private(set) var eventCounts: [String: UInt64] = [:]
    /// Commands that completed after more than the stuck threshold.
    public private(set) var slowCompletions: UInt64 = 0
    public private(set) var transactionCount: UInt64 = 0
    /// Commands that did not end GOOD (whether or not `errors` keeps them).
    public private(set) var errorCount: UInt64 = 0
    private var nextEventqCheckNs: UInt64 = 0

    public init(options: Options = Options()) {
        self.options = options
        matcher = TransactionMatcher(options: options.matcher)
        statistics = Statistics(options: options.statistics)
        log = BoundedLog(limit: options.logLimit)
        recent = BoundedLog(limit: options.recentLimit)
        errors = BoundedLog(limit: options.logLimit)
        tmfs = BoundedLog(limit: options.logLimit)
        events = BoundedLog(limit: options.logLimit)
        findings = BoundedLog(limit: options.logLimit)
    }

    public mutating func consume(_ record: CaptureRecord) {
        let decoded = decoder.decode(record)
        consume(decoded)
    }

    /// For a caller that also prints the decoded records (one decoder for both).
    public mutating func consume(_ decoded: DecodedRecord) {
        // The matcher is moved out while it works, so that its events go straight to the
        // listeners (no buffer, no copies) without two accesses to `self` overlapping.
        var m = matcher
        matcher = TransactionMatcher(options: options.matcher)
        m.consume(decoded) { handle($0) }
        let t = decoded.record.timestampNs
        if t >= nextEventqCheckNs {
            nextEventqCheckNs = t + 100_000_000
            m.checkEventq(at: t) { handle($0) }
        }
        matcher = m
        if case let .deviceState(marker) = decoded.record.body {
            log.append(LogEntry(timeNs: t, kind: .device, device: decoded.record.deviceInstance,
                                text: "\(decoded.deviceName) \(decoded.queueName) \(marker.state.name) generation \(marker.generation)"))
        } else if case let .drop(marker) = decoded.record.body {
            log.append(LogEntry(timeNs: t, kind: .device, device: decoded.record.deviceInstance,
                                text: "\(decoded.deviceName) \(decoded.queueName) \(marker.count) chains dropped (\(marker.reason == .availableLapped ? "available" : "used") ring lapped)"))
        }
    }

    /// Call with the wall clock while live (no records may come while a device is stuck),
    /// or at the end of a file with its last timestamp.
    public mutating func tick(at nowNs: UInt64) {
        var m = matcher
        matcher = TransactionMatcher(options: options.matcher)
        m.checkEventq(at: nowNs) { handle($0) }
        matcher = m
    }

    private mutating func handle(_ e: AnalysisEvent) {
        statistics.consume(e)
        switch e {
        case let .transaction(t):
            transactionCount += 1
            recent.append(t)
            if let l = t.latencyNs, l >= options.stuckThresholdNs { slowCompletions += 1 }
            if t.isError {
                errorCount += 1
                if options.keepErrors {
                    // The list keeps what a report prints, not the decodes (memory stays flat).
                    var slim = t
                    slim.request = nil
                    slim.response = nil
                    errors.append(slim)
                }
                log.append(LogEntry(timeNs: t.endNs, kind: .error, device: t.device,
                                    text: "\(t.opcodeName) \(t.lun?.description ?? "?") tag \(t.tag.map(Hex.u64) ?? "?"): \(t.outcome.detail)",
                                    transactionID: t.id))
            }
        case let .tmf(tmf):
            let response = tmf.response?.name(in: .taskManagement) ?? "sent"
            tmfCounts["\(tmf.subtype.name) \(response)", default: 0] += 1
            if tmf.response != nil { tmfs.append(tmf) }
            log.append(LogEntry(timeNs: tmf.endNs ?? tmf.startNs, kind: .tmf, device: tmf.device, text: tmf.summary))
        case let .event(ev):
            eventCounts[ev.event.type.name, default: 0] += 1
            events.append(ev)
            log.append(LogEntry(timeNs: ev.timeNs, kind: .event, device: ev.device, text: ev.summary))
        case let .finding(f):
            findingCounts[f.kind, default: 0] += 1
            findings.append(f)
            log.append(LogEntry(timeNs: f.timeNs, kind: .finding, device: f.device, text: f.summary, transactionID: f.transactionID))
        case .started, .abandoned:
            break
        }
    }

    /// Statistics start again from now; the commands in flight stay in flight.
    public mutating func reset() {
        statistics.reset(inFlight: Array(matcher.inFlight.values), at: matcher.lastNs)
        log.removeAll()
        recent.removeAll()
        errors.removeAll()
        tmfs.removeAll()
        events.removeAll()
        findings.removeAll()
        findingCounts = [:]
        tmfCounts = [:]
        eventCounts = [:]
        slowCompletions = 0
        transactionCount = 0
        errorCount = 0
    }

    public func stuck(at nowNs: UInt64? = nil) -> [InFlightCommand] {
        matcher.stuck(at: nowNs ?? matcher.lastNs, thresholdNs: options.stuckThresholdNs)
    }
}
