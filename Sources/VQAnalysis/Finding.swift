import VQWire

// Conformance findings: things a driver or device did that the protocol forbids or that
// lose information. Each is counted and logged with the time and what it concerned.

public struct Finding: Sendable {
    public enum Kind: String, Sendable, CaseIterable, Comparable {
        /// A command reused the tag of a command still in flight on the same LUN.
        case tagReused = "tag-reused"
        /// A TMF that ends commands answered before the commands it named completed.
        case tmfResponseBeforeAborted = "tmf-before-aborted"
        /// sense_len above the sense buffer (sense_size).
        case senseLengthExceeds = "sense-len-exceeds"
        /// The device's used length is beyond the chain's writable buffers.
        case usedLengthExceeds = "used-len-exceeds"
        /// The eventq had no buffer posted for longer than the threshold.
        case eventqEmpty = "eventq-empty"
        /// The device set EVENTS_MISSED: events were lost for want of an eventq buffer.
        case eventsMissed = "events-missed"
        /// A completion the tap saw no request for (not counted for chains that were
        /// outstanding when the tap attached).
        case orphanCompletion = "orphan-completion"
        /// The chain broke a ring rule (loop, out-of-range index, ...).
        case malformedChain = "malformed-chain"

        public var text: String {
            switch self {
            case .tagReused: "tag reused while in flight"
            case .tmfResponseBeforeAborted: "TMF answered before the commands it aborted"
            case .senseLengthExceeds: "sense_len above sense_size"
            case .usedLengthExceeds: "used length above the writable buffers"
            case .eventqEmpty: "eventq left without buffers"
            case .eventsMissed: "events missed (EVENTS_MISSED)"
            case .orphanCompletion: "completion without a request"
            case .malformedChain: "malformed descriptor chain"
            }
        }

        public static func < (a: Kind, b: Kind) -> Bool {
            (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
        }
    }

    public var kind: Kind
    public var timeNs: UInt64
    public var device: UInt16
    public var queue: UInt16
    /// The transaction the finding is about, when there is one.
    public var transactionID: UInt64?
    public var detail: String

    public init(kind: Kind, timeNs: UInt64, device: UInt16, queue: UInt16, transactionID: UInt64? = nil, detail: String) {
        self.kind = kind
        self.timeNs = timeNs
        self.device = device
        self.queue = queue
        self.transactionID = transactionID
        self.detail = detail
    }

    public var summary: String { "\(kind.rawValue): \(detail)" }

    /// What the records cannot show, said wherever findings are listed.
    public static let notChecked =
        "used_event/avail_event (EVENT_IDX) not checked: capture records do not carry them"
}
