import Foundation

// The answers of QEMU's x-query-virtio* commands (QEMU 7.2+), parsed into plain values.
//
// x-query-virtio-status gives features and status only decoded, as lists of strings that
// start with the macro name ("VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)"),
// plus the bits QEMU has no name for as a number ("unknown-dev-features": 1099511627776 is
// bit 40, RING_RESET, in 7.2). The raw bits are rebuilt from the names below.

/// Feature and status names QEMU prints, with their bit numbers.
public enum VirtioQMPNames {
    /// Transport and ring features (any device type), as QEMU 7.2-9.x name them.
    public static let transportFeatures: [String: Int] = [
        "VIRTIO_F_NOTIFY_ON_EMPTY": 24,
        "VIRTIO_F_ANY_LAYOUT": 27,
        "VIRTIO_RING_F_INDIRECT_DESC": 28,
        "VIRTIO_RING_F_EVENT_IDX": 29,
        "VIRTIO_F_BAD_FEATURE": 30,
        "VHOST_USER_F_PROTOCOL_FEATURES": 30,
        "VIRTIO_F_VERSION_1": 32,
        "VIRTIO_F_IOMMU_PLATFORM": 33,
        "VIRTIO_F_ACCESS_PLATFORM": 33,
        "VIRTIO_F_RING_PACKED": 34,
        "VIRTIO_F_IN_ORDER": 35,
        "VIRTIO_F_ORDER_PLATFORM": 36,
        "VIRTIO_F_SR_IOV": 37,
        "VIRTIO_F_NOTIFICATION_DATA": 38,
        "VIRTIO_F_NOTIF_CONFIG_DATA": 39,
        "VIRTIO_F_RING_RESET": 40,
        "VHOST_F_LOG_ALL": 26,
    ]

    /// Device features by virtio device id.
    public static let deviceFeatures: [UInt32: [String: Int]] = [
        8: [
            "VIRTIO_SCSI_F_INOUT": 0,
            "VIRTIO_SCSI_F_HOTPLUG": 1,
            "VIRTIO_SCSI_F_CHANGE": 2,
            "VIRTIO_SCSI_F_T10_PI": 3,
        ],
        2: [
            "VIRTIO_BLK_F_BARRIER": 0, "VIRTIO_BLK_F_SIZE_MAX": 1, "VIRTIO_BLK_F_SEG_MAX": 2,
            "VIRTIO_BLK_F_GEOMETRY": 4, "VIRTIO_BLK_F_RO": 5, "VIRTIO_BLK_F_BLK_SIZE": 6,
            "VIRTIO_BLK_F_SCSI": 7, "VIRTIO_BLK_F_FLUSH": 9, "VIRTIO_BLK_F_TOPOLOGY": 10,
            "VIRTIO_BLK_F_CONFIG_WCE": 11, "VIRTIO_BLK_F_MQ": 12, "VIRTIO_BLK_F_DISCARD": 13,
            "VIRTIO_BLK_F_WRITE_ZEROES": 14, "VIRTIO_BLK_F_SECURE_ERASE": 16, "VIRTIO_BLK_F_ZONED": 17,
        ],
    ]

    /// Device status bits (virtio 1.x 2.1).
    public static let statusBits: [String: UInt8] = [
        "VIRTIO_CONFIG_S_ACKNOWLEDGE": 1,
        "VIRTIO_CONFIG_S_DRIVER": 2,
        "VIRTIO_CONFIG_S_DRIVER_OK": 4,
        "VIRTIO_CONFIG_S_FEATURES_OK": 8,
        "VIRTIO_CONFIG_S_NEEDS_RESET": 0x40,
        "VIRTIO_CONFIG_S_FAILED": 0x80,
    ]

    public static let driverOK: UInt8 = 4

    /// The macro name at the start of one of QEMU's descriptions.
    static func macroName(_ description: String) -> String {
        let name = description.split(separator: ":", maxSplits: 1).first.map(String.init) ?? description
        return name.trimmingCharacters(in: .whitespaces)
    }
}

/// What `x-query-virtio-status` says about a device.
public struct VirtioDeviceStatus: Sendable, Equatable {
    public var name: String
    public var deviceID: UInt32
    /// The feature bits the driver accepted (guest-features), rebuilt from QEMU's names.
    public var features: UInt64
    /// The feature bits the device offers (host-features).
    public var offeredFeatures: UInt64
    /// Device status byte, rebuilt from QEMU's names.
    public var status: UInt8
    public var numQueues: Int
    /// QEMU marked the device broken (it stops processing).
    public var broken: Bool
    /// Feature or status names this table does not know (their bits are missing above).
    public var unknownNames: [String]

    public var driverOK: Bool { status & VirtioQMPNames.driverOK != 0 }

    public init(name: String, deviceID: UInt32, features: UInt64, offeredFeatures: UInt64, status: UInt8,
                numQueues: Int, broken: Bool, unknownNames: [String] = []) {
        self.name = name; self.deviceID = deviceID; self.features = features; self.offeredFeatures = offeredFeatures
        self.status = status; self.numQueues = numQueues; self.broken = broken; self.unknownNames = unknownNames
    }

    /// Parses the `return` value of x-query-virtio-status.
    public init(qmp answer: QMPValue) throws(QMPError) {
        func missing(_ key: String) -> QMPError {
            QMPError(.unexpectedAnswer, "QMP: x-query-virtio-status: answer has no \(key): \(QMPClient.excerpt(answer.json))")
        }
        guard let id = answer["device-id"]?.uint64, id <= UInt64(UInt32.max) else { throw missing("device-id") }
        guard let n = answer["num-vqs"]?.uint64, n <= 1024 else { throw missing("num-vqs") }
        deviceID = UInt32(id)
        numQueues = Int(n)
        name = answer["name"]?.string ?? "virtio-\(id)"
        broken = answer["broken"]?.bool ?? false
        var unknown: [String] = []
        guard let guest = answer["guest-features"] else { throw missing("guest-features") }
        features = Self.featureBits(guest, deviceID: UInt32(id), unknown: &unknown)
        if let host = answer["host-features"] {
            offeredFeatures = Self.featureBits(host, deviceID: UInt32(id), unknown: &unknown)
        } else {
            offeredFeatures = 0
        }
        guard let statusValue = answer["status"] else { throw missing("status") }
        var bits: UInt8 = 0
        for s in statusValue["statuses"]?.array ?? [] {
            guard let text = s.string else { continue }
            let name = VirtioQMPNames.macroName(text)
            if let bit = VirtioQMPNames.statusBits[name] { bits |= bit } else { unknown.append(name) }
        }
        if let raw = statusValue["unknown-statuses"]?.uint64 { bits |= UInt8(truncatingIfNeeded: raw) }
        status = bits
        unknownNames = unknown
    }

    /// `{"dev-features": [...], "transports": [...], "unknown-dev-features": N}` to bits.
    static func featureBits(_ set: QMPValue, deviceID: UInt32, unknown: inout [String]) -> UInt64 {
        var bits: UInt64 = set["unknown-dev-features"]?.uint64 ?? 0
        let deviceNames = VirtioQMPNames.deviceFeatures[deviceID] ?? [:]
        for key in ["transports", "dev-features"] {
            for entry in set[key]?.array ?? [] {
                guard let text = entry.string else { continue }
                let name = VirtioQMPNames.macroName(text)
                if let bit = deviceNames[name] ?? VirtioQMPNames.transportFeatures[name] {
                    bits |= 1 << UInt64(bit)
                } else if !unknown.contains(name) {
                    unknown.append(name)
                }
            }
        }
        return bits
    }
}

/// What `x-query-virtio-queue-status` says about one queue.
public struct VirtqueueStatus: Sendable, Equatable {
    public var index: UInt16
    public var size: UInt32
    public var desc: UInt64
    public var avail: UInt64
    public var used: UInt64
    public var lastAvailIdx: UInt16
    public var usedIdx: UInt16
    public var inUse: UInt32

    public init(index: UInt16, size: UInt32, desc: UInt64, avail: UInt64, used: UInt64,
                lastAvailIdx: UInt16 = 0, usedIdx: UInt16 = 0, inUse: UInt32 = 0) {
        self.index = index; self.size = size; self.desc = desc; self.avail = avail; self.used = used
        self.lastAvailIdx = lastAvailIdx; self.usedIdx = usedIdx; self.inUse = inUse
    }

    /// Parses the `return` value of x-query-virtio-queue-status.
    public init(qmp answer: QMPValue) throws(QMPError) {
        func field(_ key: String) throws(QMPError) -> UInt64 {
            guard let v = answer[key]?.uint64 else {
                throw QMPError(.unexpectedAnswer, "QMP: x-query-virtio-queue-status: answer has no \(key): \(QMPClient.excerpt(answer.json))")
            }
            return v
        }
        index = UInt16(truncatingIfNeeded: try field("queue-index"))
        size = UInt32(truncatingIfNeeded: try field("vring-num"))
        desc = try field("vring-desc")
        avail = try field("vring-avail")
        used = try field("vring-used")
        lastAvailIdx = UInt16(truncatingIfNeeded: try field("last-avail-idx"))
        usedIdx = UInt16(truncatingIfNeeded: try field("used-idx"))
        inUse = UInt32(truncatingIfNeeded: answer["inuse"]?.uint64 ?? 0)
    }

    /// The driver has told the device where the ring is.
    public var isSetUp: Bool { desc != 0 && avail != 0 && used != 0 && size != 0 }
}
