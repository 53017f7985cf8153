import VQWire

// Appendix H, "Configuration", struct virtio_scsi_config (device configuration space).
//
//   0            4          8             12            16                20
//   +------------+----------+-------------+-------------+-----------------+
//   | num_queues | seg_max  | max_sectors | cmd_per_lun | event_info_size |
//   +------------+----------+-------------+-------------+-----------------+
//   20           24         28            30            32          36
//   +------------+----------+-------------+-------------+-----------+
//   | sense_size | cdb_size | max_channel | max_target  | max_lun   |
//   +------------+----------+-------------+-------------+-----------+
//   All le32, except max_channel and max_target (le16). 36 bytes.
//
// Values the spec forbids or that leave the device unusable are decoded and flagged in
// `virtio_scsi.config.invalid` fields, not rejected: a capture shows what the device said.

public struct VirtioSCSIConfig: FieldDescribable, Sendable, Equatable {
    public static let size = 36
    /// lun[1] holds the target and lun[2..3] a 14-bit LUN.
    public static let highestTarget = 255
    public static let highestLUN = 16383

    public static let group = FieldDef("virtio_scsi.config", "Device configuration", .group)
    public static let numQueuesField = FieldDef("virtio_scsi.config.num_queues", "Request queues", .uint(bits: 32))
    public static let segMaxField = FieldDef("virtio_scsi.config.seg_max", "Max segments", .uint(bits: 32))
    public static let maxSectorsField = FieldDef("virtio_scsi.config.max_sectors", "Max sectors", .uint(bits: 32))
    public static let cmdPerLUNField = FieldDef("virtio_scsi.config.cmd_per_lun", "Commands per LUN", .uint(bits: 32))
    public static let eventInfoSizeField = FieldDef("virtio_scsi.config.event_info_size", "Event info size", .uint(bits: 32))
    public static let senseSizeField = FieldDef("virtio_scsi.config.sense_size", "Sense size", .uint(bits: 32))
    public static let cdbSizeField = FieldDef("virtio_scsi.config.cdb_size", "CDB size", .uint(bits: 32))
    public static let maxChannelField = FieldDef("virtio_scsi.config.max_channel", "Max channel", .uint(bits: 16))
    public static let maxTargetField = FieldDef("virtio_scsi.config.max_target", "Max target", .uint(bits: 16))
    public static let maxLUNField = FieldDef("virtio_scsi.config.max_lun", "Max LUN", .uint(bits: 32))
    public static let invalidField = FieldDef("virtio_scsi.config.invalid", "Invalid", .string)

    public static let allFields = [
        group, numQueuesField, segMaxField, maxSectorsField, cmdPerLUNField, eventInfoSizeField,
        senseSizeField, cdbSizeField, maxChannelField, maxTargetField, maxLUNField, invalidField,
    ]

    public var numQueues: UInt32
    public var segMax: UInt32
    public var maxSectors: UInt32
    public var cmdPerLUN: UInt32
    public var eventInfoSize: UInt32
    public var senseSize: UInt32
    public var cdbSize: UInt32
    public var maxChannel: UInt16
    public var maxTarget: UInt16
    public var maxLUN: UInt32

    /// Defaults are QEMU's for one request queue.
    public init(numQueues: UInt32 = 1, segMax: UInt32 = 126, maxSectors: UInt32 = 0xffff, cmdPerLUN: UInt32 = 128,
                eventInfoSize: UInt32 = 16, senseSize: UInt32 = UInt32(VirtioSCSI.defaultSenseSize),
                cdbSize: UInt32 = UInt32(VirtioSCSI.defaultCDBSize), maxChannel: UInt16 = 0,
                maxTarget: UInt16 = 255, maxLUN: UInt32 = 16383) {
        self.numQueues = numQueues
        self.segMax = segMax
        self.maxSectors = maxSectors
        self.cmdPerLUN = cmdPerLUN
        self.eventInfoSize = eventInfoSize
        self.senseSize = senseSize
        self.cdbSize = cdbSize
        self.maxChannel = maxChannel
        self.maxTarget = maxTarget
        self.maxLUN = maxLUN
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        numQueues = try r.readLE32(Self.numQueuesField.name)
        segMax = try r.readLE32(Self.segMaxField.name)
        maxSectors = try r.readLE32(Self.maxSectorsField.name)
        cmdPerLUN = try r.readLE32(Self.cmdPerLUNField.name)
        eventInfoSize = try r.readLE32(Self.eventInfoSizeField.name)
        senseSize = try r.readLE32(Self.senseSizeField.name)
        cdbSize = try r.readLE32(Self.cdbSizeField.name)
        maxChannel = try r.readLE16(Self.maxChannelField.name)
        maxTarget = try r.readLE16(Self.maxTargetField.name)
        maxLUN = try r.readLE32(Self.maxLUNField.name)
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(numQueues)
        w.writeLE32(segMax)
        w.writeLE32(maxSectors)
        w.writeLE32(cmdPerLUN)
        w.writeLE32(eventInfoSize)
        w.writeLE32(senseSize)
        w.writeLE32(cdbSize)
        w.writeLE16(maxChannel)
        w.writeLE16(maxTarget)
        w.writeLE32(maxLUN)
    }

    /// What is wrong with these values, one reason each; empty for a sane device.
    public var problems: [String] {
        var out: [String] = []
        if numQueues == 0 { out.append("num_queues is 0: no request queue") }
        if segMax == 0 { out.append("seg_max is 0: no command fits") }
        if maxSectors == 0 { out.append("max_sectors is 0: no transfer fits") }
        if cmdPerLUN == 0 { out.append("cmd_per_lun is 0: no command may be queued") }
        if senseSize == 0 { out.append("sense_size is 0: the spec's default is 96") }
        if cdbSize == 0 { out.append("cdb_size is 0: the spec's default is 32") }
        if maxTarget > Self.highestTarget { out.append("max_target \(maxTarget) exceeds \(Self.highestTarget): lun[1] is one byte") }
        if maxLUN > Self.highestLUN { out.append("max_lun \(maxLUN) exceeds \(Self.highestLUN): the LUN field has 14 bits") }
        return out
    }

    /// `config queues 1 seg_max 126 max_sectors 65535 cmd_per_lun 128 event_info 16 sense 96 cdb 32 channel 0 target 255 lun 16383`.
    public var summary: String {
        var s = "config queues \(numQueues) seg_max \(segMax) max_sectors \(maxSectors) cmd_per_lun \(cmdPerLUN)"
        s += " event_info \(eventInfoSize) sense \(senseSize) cdb \(cdbSize)"
        s += " channel \(maxChannel) target \(maxTarget) lun \(maxLUN)"
        let n = problems.count
        if n > 0 { s += " (\(n) invalid)" }
        return s
    }

    public var fields: [Field] {
        var list = FieldList()
        list.group(Self.group) { g in
            g.add(Self.numQueuesField, .uint(UInt64(numQueues)))
            g.add(Self.segMaxField, .uint(UInt64(segMax)))
            g.add(Self.maxSectorsField, .uint(UInt64(maxSectors)))
            g.add(Self.cmdPerLUNField, .uint(UInt64(cmdPerLUN)))
            g.add(Self.eventInfoSizeField, .uint(UInt64(eventInfoSize)))
            g.add(Self.senseSizeField, .uint(UInt64(senseSize)))
            g.add(Self.cdbSizeField, .uint(UInt64(cdbSize)))
            g.add(Self.maxChannelField, .uint(UInt64(maxChannel)))
            g.add(Self.maxTargetField, .uint(UInt64(maxTarget)))
            g.add(Self.maxLUNField, .uint(UInt64(maxLUN)))
            for p in problems { g.add(Self.invalidField, .string(p)) }
        }
        return [Field(group: VirtioSCSI.protocolField, list.fields)]
    }
}
