import Testing
import VQWire
@testable import VirtioSCSI

@Suite struct EventTests {
    static let layout: Layout = [("virtio_scsi.event.type", 4), ("virtio_scsi.lun", 8), ("virtio_scsi.event.reason", 4)]

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> VirtioSCSIEvent {
        var r = ByteReader(bytes)
        return try VirtioSCSIEvent(decoding: &r)
    }

    @Test func transportResetRoundTripMatchesTheSpecLayout() throws {
        // QEMU's hot-plug event for LUN 0:3 (peripheral addressing below LUN 256).
        let event = VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: 0, lun: 3, addressMethod: .peripheral),
                                    reason: ResetReason.rescan.rawValue)
        let bytes = encoded { event.encode(into: &$0) }
        #expect(bytes == [1, 0, 0, 0] + [0x01, 0x00, 0x00, 0x03, 0, 0, 0, 0] + [1, 0, 0, 0])
        #expect(bytes.count == VirtioSCSIEvent.size)
        #expect(try Self.decode(bytes) == event)
        #expect(event.summary == "event TRANSPORT_RESET RESCAN 0:3")
        #expect(event.fields.first?.children.map(\.name) == [
            "virtio_scsi.event.type", "virtio_scsi.event.events_missed", "virtio_scsi.lun", "virtio_scsi.event.reason",
        ])
        #expect(event.fields.first(named: "virtio_scsi.event.reason")?.value == .code(1, name: "RESCAN"))
    }

    @Test(arguments: [(0, "HARD"), (1, "RESCAN"), (2, "REMOVED"), (3, "unknown(0x03)")] as [(UInt32, String)])
    func resetReasons(raw: UInt32, name: String) throws {
        let event = try Self.decode(le32(1) + VirtioSCSILUN(target: 2, lun: 1).bytes + le32(raw))
        #expect(event.reasonName == name)
        #expect(event.summary == "event TRANSPORT_RESET \(name) 2:1")
    }

    @Test func eventsMissedIsSplitFromTheType() throws {
        let bytes = le32(0x8000_0000) + zeros(12)
        let event = try Self.decode(bytes)
        #expect(event.type == .noEvent)
        #expect(event.eventsMissed)
        #expect(event.summary == "event NO_EVENT EVENTS_MISSED")
        #expect(event.fields.first(named: "virtio_scsi.event.type")?.value == .code(0, name: "NO_EVENT"))
        #expect(event.fields.first(named: "virtio_scsi.event.events_missed")?.value == .bool(true))
        #expect(event.isBlankNoEvent)
        #expect(event.fields.first?.children.map(\.name) == ["virtio_scsi.event.type", "virtio_scsi.event.events_missed"])
        #expect(encoded { event.encode(into: &$0) } == bytes)

        let reset = try Self.decode(le32(0x8000_0001) + VirtioSCSILUN(target: 0, lun: 1).bytes + le32(2))
        #expect(reset.type == .transportReset)
        #expect(reset.eventsMissed)
        #expect(reset.summary == "event TRANSPORT_RESET REMOVED 0:1 EVENTS_MISSED")
    }

    @Test func noEventMayComeInAShortBuffer() throws {
        for length in 4..<16 {
            let event = try Self.decode(Array((le32(0x8000_0000) + zeros(12)).prefix(length)))
            #expect(event.lun == nil)
            #expect(event.reason == nil)
            #expect(event.summary == "event NO_EVENT EVENTS_MISSED")
            #expect(event.fields.first?.children.map(\.name) == ["virtio_scsi.event.type", "virtio_scsi.event.events_missed"])
        }
        let short = VirtioSCSIEvent(type: .noEvent, eventsMissed: true, lun: nil, reason: nil)
        #expect(encoded { short.encode(into: &$0) } == [0, 0, 0, 0x80])
        for length in 0..<4 {
            #expect(decodeError { () throws(DecodeError) in try Self.decode(zeros(length)) }
                == .truncated("virtio_scsi.event.type", at: 0, needed: 4, available: length))
        }
    }

    @Test(arguments: [1 as UInt32, 2, 3, 4])
    func truncationSweep(type: UInt32) {
        let bytes = le32(type) + VirtioSCSILUN(target: 0, lun: 0).bytes + le32(0x10)
        let n = expectTruncationSweep(bytes, Self.layout) { (b: [UInt8]) throws(DecodeError) in _ = try Self.decode(b) }
        #expect(n == 16)
    }

    @Test func asyncNotifyReasonIsAnEventMask() throws {
        let event = try Self.decode(le32(2) + VirtioSCSILUN(target: 0, lun: 0).bytes + le32(0x90))
        #expect(event.type == .asyncNotify)
        #expect(event.summary == "event ASYNC_NOTIFY MEDIA_CHANGE|unknown(0x80) 0:0")
        #expect(event.fields.first(named: "virtio_scsi.event.an_events")?.value
            == .flags(0x90, names: ["MEDIA_CHANGE", "unknown(0x80)"]))
    }

    @Test func paramChangeReasonIsASCAndASCQ() throws {
        // Capacity data has changed: ASC 0x2a, ASCQ 0x09.
        let event = try Self.decode(le32(3) + VirtioSCSILUN(target: 0, lun: 0).bytes + [0x2a, 0x09, 0, 0])
        #expect(event.asc == 0x2a)
        #expect(event.ascq == 0x09)
        #expect(event.summary == "event PARAM_CHANGE asc 0x2a/0x09 (Capacity data has changed) 0:0")
        #expect(event.fields.first(named: "virtio_scsi.event.asc")?.value == .uint(0x2a))
        #expect(event.fields.first(named: "virtio_scsi.event.ascq")?.value == .uint(0x09))
        let odd = try Self.decode(le32(3) + VirtioSCSILUN(target: 0, lun: 0).bytes + [0x2a, 0x09, 1, 0])
        #expect(odd.reasonName == "asc 0x2a/0x09 (Capacity data has changed) unknown(0x10000)")
    }

    @Test func noEventWithALUNOrReasonShowsThem() throws {
        let event = try Self.decode(le32(0) + VirtioSCSILUN(target: 0, lun: 4).bytes + le32(0))
        #expect(!event.isBlankNoEvent)
        #expect(event.summary == "event NO_EVENT none 0:4")
        #expect(event.fields.first(named: "virtio_scsi.lun.lun")?.value == .uint(4))
        #expect(event.fields.first(named: "virtio_scsi.event.reason")?.value == .code(0, name: "none"))
    }

    @Test func unknownTypesAreValues() throws {
        let bytes = le32(0x7fff_ffff) + VirtioSCSILUN(target: 0, lun: 0).bytes + le32(5)
        let event = try Self.decode(bytes)
        #expect(event.type == .unknown(0x7fff_ffff))
        #expect(!event.eventsMissed)
        #expect(event.summary == "event unknown(0x7fffffff) unknown(0x05) 0:0")
        #expect(encoded { event.encode(into: &$0) } == bytes)
        #expect(EventType(rawValue: 4).name == "unknown(0x04)")
    }
}

@Suite struct ConfigTests {
    static let layout: Layout = [
        ("virtio_scsi.config.num_queues", 4), ("virtio_scsi.config.seg_max", 4), ("virtio_scsi.config.max_sectors", 4),
        ("virtio_scsi.config.cmd_per_lun", 4), ("virtio_scsi.config.event_info_size", 4),
        ("virtio_scsi.config.sense_size", 4), ("virtio_scsi.config.cdb_size", 4), ("virtio_scsi.config.max_channel", 2),
        ("virtio_scsi.config.max_target", 2), ("virtio_scsi.config.max_lun", 4),
    ]

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> VirtioSCSIConfig {
        var r = ByteReader(bytes)
        return try VirtioSCSIConfig(decoding: &r)
    }

    @Test func roundTripMatchesTheSpecLayout() throws {
        let config = VirtioSCSIConfig(numQueues: 2, segMax: 126, maxSectors: 0xffff, cmdPerLUN: 128, eventInfoSize: 16,
                                      senseSize: 96, cdbSize: 32, maxChannel: 0, maxTarget: 255, maxLUN: 16383)
        let bytes = encoded { config.encode(into: &$0) }
        #expect(bytes == le32(2) + le32(126) + le32(0xffff) + le32(128) + le32(16) + le32(96) + le32(32)
            + [0, 0] + [0xff, 0] + le32(16383))
        #expect(bytes.count == VirtioSCSIConfig.size)
        #expect(try Self.decode(bytes) == config)
        #expect(config.problems.isEmpty)
        #expect(config.summary
            == "config queues 2 seg_max 126 max_sectors 65535 cmd_per_lun 128 event_info 16 sense 96 cdb 32 channel 0 target 255 lun 16383")
        let group = config.fields.first(named: "virtio_scsi.config")
        #expect(group?.children.count == 10)
        #expect(group?.first(named: "virtio_scsi.config.cdb_size")?.value == .uint(32))
        #expect(group?.first(named: "virtio_scsi.config.max_target")?.value == .uint(255))
    }

    @Test func truncationSweep() {
        let bytes = encoded { VirtioSCSIConfig().encode(into: &$0) }
        let n = expectTruncationSweep(bytes, Self.layout) { (b: [UInt8]) throws(DecodeError) in _ = try Self.decode(b) }
        #expect(n == 36)
    }

    @Test(arguments: [
        (VirtioSCSIConfig(numQueues: 0), "num_queues is 0: no request queue"),
        (VirtioSCSIConfig(segMax: 0), "seg_max is 0: no command fits"),
        (VirtioSCSIConfig(maxSectors: 0), "max_sectors is 0: no transfer fits"),
        (VirtioSCSIConfig(cmdPerLUN: 0), "cmd_per_lun is 0: no command may be queued"),
        (VirtioSCSIConfig(senseSize: 0), "sense_size is 0: the spec's default is 96"),
        (VirtioSCSIConfig(cdbSize: 0), "cdb_size is 0: the spec's default is 32"),
        (VirtioSCSIConfig(maxTarget: 256), "max_target 256 exceeds 255: lun[1] is one byte"),
        (VirtioSCSIConfig(maxLUN: 16384), "max_lun 16384 exceeds 16383: the LUN field has 14 bits"),
    ])
    func nonsenseValuesAreFlaggedNotRejected(config: VirtioSCSIConfig, problem: String) throws {
        let back = try Self.decode(encoded { config.encode(into: &$0) })
        #expect(back == config)
        #expect(back.problems == [problem])
        #expect(back.fields.first(named: "virtio_scsi.config.invalid")?.value == .string(problem))
        #expect(back.summary.hasSuffix(" (1 invalid)"))
    }

    @Test func everyProblemIsItsOwnField() {
        let config = VirtioSCSIConfig(senseSize: 0, cdbSize: 0)
        let invalid = config.fields.first?.all(named: "virtio_scsi.config.invalid").map(\.value)
        #expect(invalid == [.string("sense_size is 0: the spec's default is 96"), .string("cdb_size is 0: the spec's default is 32")])
    }
}
