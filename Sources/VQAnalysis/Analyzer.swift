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

    public mutating func append(_ e: consuming Element) {
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
        /// 0: keep none (a report that lists no recent transactions).
        public var recentLimit = 1000
        /// Transactions keep their chains, to be decoded in full when detailed (`top`'s
        /// requests screen); a report does without.
        public var keepDetails = true
        /// Keep the transactions that ended in error (for `stats`' list), up to `logLimit`.
        public var keepErrors = true
        public init() {}
    }

    public let options: Options
    public private(set) var decoder = RecordDecoder()
    public private(set) var matcher: TransactionMatcher
    /// What listens to the matcher, apart from it so that the matcher's events go straight
    /// to it (no buffer, no copy of the matcher per record).
    private var listeners: Listeners
    private var nextEventqCheckNs: UInt64 = 0

    public var statistics: Statistics { listeners.statistics }
    public var log: BoundedLog<LogEntry> { listeners.log }
    public var recent: BoundedLog<Transaction> { listeners.recent }
    public var errors: BoundedLog<Transaction> { listeners.errors }
    public var tmfs: BoundedLog<TMFTransaction> { listeners.tmfs }
    public var events: BoundedLog<EventRecord> { listeners.events }
    public var findings: BoundedLog<Finding> { listeners.findings }
    public var findingCounts: [Finding.Kind: UInt64] { listeners.findingCounts }
    /// TMFs by subtype name and response name ("outstanding" before the response).
    public var tmfCounts: [String: UInt64] { listeners.tmfCounts }
    public var eventCounts: [String: UInt64] { listeners.eventCounts }
    /// Commands that completed after more than the stuck threshold.
    public var slowCompletions: UInt64 { listeners.slowCompletions }
    public var transactionCount: UInt64 { listeners.transactionCount }
    /// Commands that did not end GOOD (whether or not `errors` keeps them).
    public var errorCount: UInt64 { listeners.errorCount }

    struct Listeners {
        let stuckThresholdNs: UInt64
        let keepErrors: Bool
        let keepRecent: Bool
        var statistics: Statistics
        var log: BoundedLog<LogEntry>
        var recent: BoundedLog<Transaction>
        var errors: BoundedLog<Transaction>
        var tmfs: BoundedLog<TMFTransaction>
        var events: BoundedLog<EventRecord>
        var findings: BoundedLog<Finding>
        var findingCounts: [Finding.Kind: UInt64] = [:]
        var tmfCounts: [String: UInt64] = [:]
        var eventCounts: [String: UInt64] = [:]
        var slowCompletions: UInt64 = 0
        var transactionCount: UInt64 = 0
        var errorCount: UInt64 = 0

        init(options: Options) {
            stuckThresholdNs = options.stuckThresholdNs
            keepErrors = options.keepErrors
            statistics = Statistics(options: options.statistics)
            log = BoundedLog(limit: options.logLimit)
            keepRecent = options.recentLimit > 0
            recent = BoundedLog(limit: max(1, options.recentLimit))
            errors = BoundedLog(limit: options.logLimit)
            tmfs = BoundedLog(limit: options.logLimit)
            events = BoundedLog(limit: options.logLimit)
            findings = BoundedLog(limit: options.logLimit)
        }

        // Inlined where the matcher emits: the event's case is known there, so the enum
        // and the copies of its payload go away.
        @inline(__always)
        mutating func handle(_ e: AnalysisEvent) {
            switch e {
            case let .started(c):
                started(device: c.device, queue: c.queue, lun: c.lun, opcode: c.opcode, at: c.startNs)
            case let .transaction(t):
                completed(t)
            case .abandoned:
                statistics.consume(e)
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
            }
        }

        /// A command made available (the fast path calls it without an event).
        @inline(__always)
        mutating func started(device: UInt16, queue: UInt16, lun: LUNAddress?, opcode: OpcodeKey?, at ns: UInt64) {
            statistics.started(device: device, queue: queue, lun: lun, opcode: opcode, at: ns)
        }

        /// A command completed (the fast path calls it without an event).
        @inline(__always)
        mutating func completed(_ t: consuming Transaction) {
            statistics.completed(t)
            transactionCount += 1
            if let l = t.latencyNs, l >= stuckThresholdNs { slowCompletions += 1 }
            if t.isError { failed(t) }
            // Last: the list takes the transaction itself (no copy).
            if keepRecent { recent.append(t) }
        }

        /// The rare part of `completed`, out of line.
        @inline(never)
        mutating func failed(_ t: Transaction) {
            errorCount += 1
            if keepErrors {
                // The list keeps what a report prints, not the decodes (memory stays flat).
                var slim = t
                slim.detail = nil
                errors.append(slim)
            }
            log.append(LogEntry(timeNs: t.endNs, kind: .error, device: t.device,
                                text: "\(t.opcodeName) \(t.lun?.description ?? "?") tag \(t.tag.map(Hex.u64) ?? "?"): \(t.outcome.detail)",
                                transactionID: t.id))
        }
    }

    public init(options: Options = Options()) {
        self.options = options
        matcher = TransactionMatcher(options: options.matcher)
        listeners = Listeners(options: options)
        decoder.wantsRequestKey = false
    }

    /// A record that came as a value (the live tap, a replay): commands and completions take
    /// the cheap decode as in `consume(_: RecordView)`; their transactions keep the chains
    /// (`keepDetails`) and decode them in full only when asked (`Transaction.request`,
    /// `.response`), with what the full path would have given.
    public mutating func consume(_ record: CaptureRecord) {
        let fast = decoder.decodeFast(record)
        guard fast != .full else {
            consume(decoder.decode(record))
            return
        }
        var detail: TransactionDetail?
        if options.keepDetails, case .completion = fast, case let .chain(segments) = record.body {
            let paired = decoder.pairedRequest
            detail = TransactionDetail(chains: TransactionChains(queue: record.queue, requestSegments: paired?.segments,
                                                                 requestContext: paired?.context ?? decoder.context,
                                                                 responseSegments: segments, usedLength: record.usedLength,
                                                                 responseContext: decoder.context))
        }
        consumeFast(TransactionMatcher.FastRecord(device: record.deviceInstance, queue: record.queue, head: record.head, flags: record.flags,
                                                  id: record.transactionID, timestampNs: record.timestampNs, latencyNs: record.latencyNs),
                    fast, detail: detail)
    }

    /// A command or completion the decoder took the cheap way, to the matcher.
    @inline(__always)
    private mutating func consumeFast(_ r: TransactionMatcher.FastRecord, _ fast: FastDecode, detail: TransactionDetail?) {
        matcher.consumeFast(r, fast, command: decoder.command, response: decoder.response, decoder: decoder,
                            detail: detail, &listeners)
        checkEventq(at: r.timestampNs)
    }

    /// `consume` through the full decode (field trees for every record): what the fast path
    /// is checked against.
    public mutating func consumeDecodingFully(_ record: CaptureRecord) {
        consume(decoder.decode(record))
    }

    /// A record read in place (a capture file through libpcap): commands and completions take
    /// the cheap decode (their transactions carry no `request`/`response` decodes), every
    /// other record the full one, with one pairing state.
    public mutating func consume(_ view: RecordView) {
        let fast = decoder.decodeFast(view)
        guard fast != .full else {
            consume(decoder.decode(view.record))
            return
        }
        consumeFast(TransactionMatcher.FastRecord(device: view.deviceInstance, queue: view.queue, head: view.head, flags: view.flags,
                                                  id: view.transactionID, timestampNs: view.timestampNs, latencyNs: view.latencyNs),
                    fast, detail: nil)
    }

    /// For a caller that also prints the decoded records (one decoder for both).
    public mutating func consume(_ decoded: DecodedRecord) {
        matcher.consume(decoded) { listeners.handle($0) }
        let t = decoded.record.timestampNs
        checkEventq(at: t)
        if case let .deviceState(marker) = decoded.record.body {
            listeners.log.append(LogEntry(timeNs: t, kind: .device, device: decoded.record.deviceInstance,
                                          text: "\(decoded.deviceName) \(decoded.queueName) \(marker.state.name) generation \(marker.generation)"))
        } else if case let .drop(marker) = decoded.record.body {
            listeners.log.append(LogEntry(timeNs: t, kind: .device, device: decoded.record.deviceInstance,
                                          text: "\(decoded.deviceName) \(decoded.queueName) \(marker.count) chains dropped (\(marker.reason == .availableLapped ? "available" : "used") ring lapped)"))
        }
    }

    private mutating func checkEventq(at t: UInt64) {
        if t >= nextEventqCheckNs {
            nextEventqCheckNs = t + 100_000_000
            matcher.checkEventq(at: t) { listeners.handle($0) }
        }
    }

    /// Call with the wall clock while live (no records may come while a device is stuck),
    /// or at the end of a file with its last timestamp.
    public mutating func tick(at nowNs: UInt64) {
        matcher.checkEventq(at: nowNs) { listeners.handle($0) }
    }

    /// Statistics start again from now; the commands in flight stay in flight.
    public mutating func reset() {
        listeners.statistics.reset(inFlight: Array(matcher.inFlight.values), at: matcher.lastNs)
        listeners.log.removeAll()
        listeners.recent.removeAll()
        listeners.errors.removeAll()
        listeners.tmfs.removeAll()
        listeners.events.removeAll()
        listeners.findings.removeAll()
        listeners.findingCounts = [:]
        listeners.tmfCounts = [:]
        listeners.eventCounts = [:]
        listeners.slowCompletions = 0
        listeners.transactionCount = 0
        listeners.errorCount = 0
    }

    public func stuck(at nowNs: UInt64? = nil) -> [InFlightCommand] {
        matcher.stuck(at: nowNs ?? matcher.lastNs, thresholdNs: options.stuckThresholdNs)
    }
}
