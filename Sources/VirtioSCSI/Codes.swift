import VQWire

// Code tables of virtio-scsi (spec/virtio-scsi-0.9.4.md, Appendix H; INCORRECT_LUN from
// virtio-facts.md). Every table maps an unknown raw value to `.unknown(raw)`, which prints
// as `unknown(0x1f)` (DESIGN.md rule 2), so decoding never fails on a code.

/// `task_attr` of a command request (VIRTIO_SCSI_S_SIMPLE ...).
public enum TaskAttribute: Sendable, Hashable {
    case simple, ordered, headOfQueue, aca
    case unknown(UInt8)

    public init(rawValue: UInt8) {
        switch rawValue {
        case 0: self = .simple
        case 1: self = .ordered
        case 2: self = .headOfQueue
        case 3: self = .aca
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt8 {
        switch self {
        case .simple: 0
        case .ordered: 1
        case .headOfQueue: 2
        case .aca: 3
        case let .unknown(v): v
        }
    }

    public var name: String {
        switch self {
        case .simple: "SIMPLE"
        case .ordered: "ORDERED"
        case .headOfQueue: "HEAD"
        case .aca: "ACA"
        case let .unknown(v): Naming.unknown(UInt64(v))
        }
    }
}

/// The `response` byte of every request (VIRTIO_SCSI_S_*). The values share one namespace;
/// which names apply depends on the message (`name(in:)`): 0 reads `OK` for commands and
/// AN, `FUNCTION_COMPLETE` for TMFs, and 10/11 exist only for TMFs.
public enum VirtioSCSIResponse: Sendable, Hashable {
    case ok, overrun, aborted, badTarget, reset, busy, transportFailure, targetFailure
    case nexusFailure, failure, functionSucceeded, functionRejected, incorrectLUN
    case unknown(UInt8)

    public enum Context: Sendable { case command, taskManagement, asyncNotification }

    public init(rawValue: UInt8) {
        switch rawValue {
        case 0: self = .ok
        case 1: self = .overrun
        case 2: self = .aborted
        case 3: self = .badTarget
        case 4: self = .reset
        case 5: self = .busy
        case 6: self = .transportFailure
        case 7: self = .targetFailure
        case 8: self = .nexusFailure
        case 9: self = .failure
        case 10: self = .functionSucceeded
        case 11: self = .functionRejected
        case 12: self = .incorrectLUN
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt8 {
        switch self {
        case .ok: 0
        case .overrun: 1
        case .aborted: 2
        case .badTarget: 3
        case .reset: 4
        case .busy: 5
        case .transportFailure: 6
        case .targetFailure: 7
        case .nexusFailure: 8
        case .failure: 9
        case .functionSucceeded: 10
        case .functionRejected: 11
        case .incorrectLUN: 12
        case let .unknown(v): v
        }
    }

    /// The name in a given message. Controlq messages also name 1, 2 and 4 (SPDK answers
    /// TMFs and AN requests it does not implement with ABORTED).
    public func name(in context: Context) -> String {
        switch self {
        case .ok: return context == .taskManagement ? "FUNCTION_COMPLETE" : "OK"
        case .overrun: return "OVERRUN"
        case .aborted: return "ABORTED"
        case .badTarget: return "BAD_TARGET"
        case .reset: return "RESET"
        case .busy: return "BUSY"
        case .transportFailure: return "TRANSPORT_FAILURE"
        case .targetFailure: return "TARGET_FAILURE"
        case .nexusFailure: return "NEXUS_FAILURE"
        case .failure: return "FAILURE"
        case .functionSucceeded, .functionRejected:
            guard context == .taskManagement else { return Naming.unknown(UInt64(rawValue)) }
            return self == .functionSucceeded ? "FUNCTION_SUCCEEDED" : "FUNCTION_REJECTED"
        case .incorrectLUN: return "INCORRECT_LUN"
        case let .unknown(v): return Naming.unknown(UInt64(v))
        }
    }
}

/// The first u32 of every controlq request (VIRTIO_SCSI_T_TMF, _AN_QUERY, _AN_SUBSCRIBE).
public enum ControlType: Sendable, Hashable {
    case taskManagement, anQuery, anSubscribe
    case unknown(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0: self = .taskManagement
        case 1: self = .anQuery
        case 2: self = .anSubscribe
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .taskManagement: 0
        case .anQuery: 1
        case .anSubscribe: 2
        case let .unknown(v): v
        }
    }

    public var name: String {
        switch self {
        case .taskManagement: "TMF"
        case .anQuery: "AN_QUERY"
        case .anSubscribe: "AN_SUBSCRIBE"
        case let .unknown(v): Naming.unknown(UInt64(v))
        }
    }
}

/// `subtype` of a task management function (VIRTIO_SCSI_T_TMF_*).
public enum TMFSubtype: Sendable, Hashable, CaseIterable {
    case abortTask, abortTaskSet, clearACA, clearTaskSet, itNexusReset, logicalUnitReset
    case queryTask, queryTaskSet
    case unknown(UInt32)

    public static let allCases: [TMFSubtype] = (0...7).map { TMFSubtype(rawValue: UInt32($0)) }

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0: self = .abortTask
        case 1: self = .abortTaskSet
        case 2: self = .clearACA
        case 3: self = .clearTaskSet
        case 4: self = .itNexusReset
        case 5: self = .logicalUnitReset
        case 6: self = .queryTask
        case 7: self = .queryTaskSet
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .abortTask: 0
        case .abortTaskSet: 1
        case .clearACA: 2
        case .clearTaskSet: 3
        case .itNexusReset: 4
        case .logicalUnitReset: 5
        case .queryTask: 6
        case .queryTaskSet: 7
        case let .unknown(v): v
        }
    }

    public var name: String {
        switch self {
        case .abortTask: "ABORT_TASK"
        case .abortTaskSet: "ABORT_TASK_SET"
        case .clearACA: "CLEAR_ACA"
        case .clearTaskSet: "CLEAR_TASK_SET"
        case .itNexusReset: "I_T_NEXUS_RESET"
        case .logicalUnitReset: "LOGICAL_UNIT_RESET"
        case .queryTask: "QUERY_TASK"
        case .queryTaskSet: "QUERY_TASK_SET"
        case let .unknown(v): Naming.unknown(UInt64(v))
        }
    }

    /// Whether `id` names a command (the other subtypes ignore it).
    public var usesTag: Bool { self == .abortTask || self == .queryTask }
}

/// Asynchronous notification event mask (VIRTIO_SCSI_EVT_ASYNC_*): `event_requested`,
/// `event_actual` and the `reason` of an ASYNC_NOTIFY event. Unknown bits are kept.
public struct ANEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let operationalChange = ANEvents(rawValue: 2)
    public static let powerManagement = ANEvents(rawValue: 4)
    public static let externalRequest = ANEvents(rawValue: 8)
    public static let mediaChange = ANEvents(rawValue: 16)
    public static let multiHost = ANEvents(rawValue: 32)
    public static let deviceBusy = ANEvents(rawValue: 64)

    static let table: [(bit: UInt64, name: String)] = [
        (2, "OPERATIONAL_CHANGE"), (4, "POWER_MGMT"), (8, "EXTERNAL_REQUEST"),
        (16, "MEDIA_CHANGE"), (32, "MULTI_HOST"), (64, "DEVICE_BUSY"),
    ]

    /// Names of the bits set, unknown bits last as `unknown(0x..)`.
    public var names: [String] { Naming.flagNames(UInt64(rawValue), Self.table) }

    /// `MEDIA_CHANGE|DEVICE_BUSY`, or `none`.
    public var text: String { rawValue == 0 ? "none" : names.joined(separator: "|") }

    func value() -> FieldValue { .flags(UInt64(rawValue), names: names) }
}

/// The event type in the low 31 bits of `virtio_scsi_event.event`.
public enum EventType: Sendable, Hashable {
    case noEvent, transportReset, asyncNotify, paramChange
    case unknown(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0: self = .noEvent
        case 1: self = .transportReset
        case 2: self = .asyncNotify
        case 3: self = .paramChange
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .noEvent: 0
        case .transportReset: 1
        case .asyncNotify: 2
        case .paramChange: 3
        case let .unknown(v): v
        }
    }

    public var name: String {
        switch self {
        case .noEvent: "NO_EVENT"
        case .transportReset: "TRANSPORT_RESET"
        case .asyncNotify: "ASYNC_NOTIFY"
        case .paramChange: "PARAM_CHANGE"
        case let .unknown(v): Naming.unknown(UInt64(v))
        }
    }
}

/// `reason` of a TRANSPORT_RESET event (VIRTIO_SCSI_EVT_RESET_*).
public enum ResetReason: Sendable, Hashable {
    case hard, rescan, removed
    case unknown(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0: self = .hard
        case 1: self = .rescan
        case 2: self = .removed
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .hard: 0
        case .rescan: 1
        case .removed: 2
        case let .unknown(v): v
        }
    }

    public var name: String {
        switch self {
        case .hard: "HARD"
        case .rescan: "RESCAN"
        case .removed: "REMOVED"
        case let .unknown(v): Naming.unknown(UInt64(v))
        }
    }
}
