import Testing
import VQWire
@testable import VirtioSCSI

@Suite struct TaskManagementTests {
    static let layout: Layout = [("virtio_scsi.ctrl.type", 4), ("virtio_scsi.tmf.subtype", 4),
                                 ("virtio_scsi.lun", 8), ("virtio_scsi.id", 8)]

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> TMFRequest {
        var r = ByteReader(bytes)
        return try TMFRequest(decoding: &r)
    }

    @Test func requestRoundTripMatchesTheSpecLayout() throws {
        let request = TMFRequest(subtype: .abortTask, lun: VirtioSCSILUN(target: 0, lun: 5), id: 0xdead_beef)
        let bytes = encoded { request.encode(into: &$0) }
        #expect(bytes == [0, 0, 0, 0] + [0, 0, 0, 0] + [0x01, 0x00, 0x40, 0x05, 0, 0, 0, 0]
            + [0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0])
        #expect(bytes.count == TMFRequest.size)
        #expect(try Self.decode(bytes) == request)
        #expect(request.summary == "tmf-req ABORT_TASK 0:5 tag 0x00000000deadbeef")
        #expect(request.fields.first?.children.map(\.name) == [
            "virtio_scsi.ctrl.type", "virtio_scsi.tmf.subtype", "virtio_scsi.lun", "virtio_scsi.id",
        ])
        #expect(request.fields.first(named: "virtio_scsi.ctrl.type")?.value == .code(0, name: "TMF"))
        #expect(request.fields.first(named: "virtio_scsi.id")?.value == .hex(0xdead_beef))
    }

    @Test(arguments: [
        (0, "ABORT_TASK"), (1, "ABORT_TASK_SET"), (2, "CLEAR_ACA"), (3, "CLEAR_TASK_SET"), (4, "I_T_NEXUS_RESET"),
        (5, "LOGICAL_UNIT_RESET"), (6, "QUERY_TASK"), (7, "QUERY_TASK_SET"), (8, "unknown(0x08)"),
        (0xffff_ffff, "unknown(0xffffffff)"),
    ] as [(UInt32, String)])
    func everySubtypeIsNamed(raw: UInt32, name: String) throws {
        let bytes = [0, 0, 0, 0] + le32(raw) + VirtioSCSILUN(target: 1, lun: 0).bytes + zeros(8)
        let request = try Self.decode(bytes)
        #expect(request.subtype.rawValue == raw)
        #expect(request.subtype.name == name)
        #expect(request.fields.first(named: "virtio_scsi.tmf.subtype")?.value == .code(UInt64(raw), name: name))
        #expect(request.summary == "tmf-req \(name) 1:0" + (raw == 0 || raw == 6 ? " tag 0x0000000000000000" : ""))
        #expect(encoded { request.encode(into: &$0) } == bytes)
    }

    @Test func allCasesAreTheEightSubtypes() {
        #expect(TMFSubtype.allCases.map(\.rawValue) == Array(0...7))
        #expect(TMFSubtype.allCases.filter(\.usesTag) == [.abortTask, .queryTask])
    }

    @Test func requestTruncationSweep() {
        let bytes = encoded { TMFRequest(subtype: .logicalUnitReset, lun: VirtioSCSILUN(target: 0, lun: 1)).encode(into: &$0) }
        let n = expectTruncationSweep(bytes, Self.layout) { (b: [UInt8]) throws(DecodeError) in _ = try Self.decode(b) }
        #expect(n == 24)
    }

    @Test func requestWithAnotherTypeIsMalformed() {
        let bytes = le32(1) + zeros(20)
        #expect(decodeError { () throws(DecodeError) in try Self.decode(bytes) }
            == .malformed("virtio_scsi.ctrl.type", at: 0, "type 1 is not TMF (0)"))
    }

    @Test(arguments: [
        (0, "FUNCTION_COMPLETE"), (1, "OVERRUN"), (2, "ABORTED"), (3, "BAD_TARGET"), (4, "RESET"), (5, "BUSY"),
        (6, "TRANSPORT_FAILURE"), (7, "TARGET_FAILURE"), (8, "NEXUS_FAILURE"), (9, "FAILURE"),
        (10, "FUNCTION_SUCCEEDED"), (11, "FUNCTION_REJECTED"), (12, "INCORRECT_LUN"), (13, "unknown(0x0d)"),
    ] as [(UInt8, String)])
    func everyResponseCodeIsNamed(raw: UInt8, name: String) throws {
        var r = ByteReader([raw])
        let response = try TMFResponse(decoding: &r)
        #expect(response.response.rawValue == raw)
        #expect(response.summary == "tmf-resp \(name)")
        #expect(response.fields.first(named: "virtio_scsi.tmf.response")?.value == .code(UInt64(raw), name: name))
        #expect(encoded { response.encode(into: &$0) } == [raw])
    }

    @Test func responseTruncation() {
        var r = ByteReader([])
        #expect(decodeError { () throws(DecodeError) in try TMFResponse(decoding: &r) }
            == .truncated("virtio_scsi.tmf.response", at: 0, needed: 1, available: 0))
        #expect(TMFResponse.size == 1)
    }
}

@Suite struct AsyncNotificationTests {
    static let layout: Layout = [("virtio_scsi.ctrl.type", 4), ("virtio_scsi.lun", 8), ("virtio_scsi.an.event_requested", 4)]

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ANRequest {
        var r = ByteReader(bytes)
        return try ANRequest(decoding: &r)
    }

    @Test(arguments: [(ANRequest.Kind.query, 1 as UInt8, "QUERY"), (.subscribe, 2, "SUBSCRIBE")])
    func requestRoundTripMatchesTheSpecLayout(kind: ANRequest.Kind, type: UInt8, name: String) throws {
        let request = ANRequest(kind: kind, lun: VirtioSCSILUN(target: 0, lun: 0), eventRequested: [.mediaChange, .deviceBusy])
        let bytes = encoded { request.encode(into: &$0) }
        #expect(bytes == [type, 0, 0, 0] + [0x01, 0x00, 0x40, 0x00, 0, 0, 0, 0] + [0x50, 0, 0, 0])
        #expect(bytes.count == ANRequest.size)
        #expect(try Self.decode(bytes) == request)
        #expect(request.summary == "an-req \(name) 0:0 events MEDIA_CHANGE|DEVICE_BUSY")
        #expect(request.fields.first(named: "virtio_scsi.an.event_requested")?.value
            == .flags(0x50, names: ["MEDIA_CHANGE", "DEVICE_BUSY"]))
        #expect(request.fields.first(named: "virtio_scsi.ctrl.type")?.value == .code(UInt64(type), name: "AN_" + name))
    }

    @Test func everyEventBitIsNamedAndUnknownBitsKept() {
        let all = ANEvents(rawValue: 0x7e)
        #expect(all.names == ["OPERATIONAL_CHANGE", "POWER_MGMT", "EXTERNAL_REQUEST", "MEDIA_CHANGE", "MULTI_HOST", "DEVICE_BUSY"])
        #expect(ANEvents(rawValue: 0x8000_0011).names == ["MEDIA_CHANGE", "unknown(0x80000001)"])
        #expect(ANEvents(rawValue: 0).text == "none")
        #expect(ANEvents(rawValue: 0x12).text == "OPERATIONAL_CHANGE|MEDIA_CHANGE")
    }

    @Test func requestTruncationSweep() {
        let bytes = encoded { ANRequest(kind: .query, lun: VirtioSCSILUN(target: 0, lun: 0), eventRequested: .mediaChange).encode(into: &$0) }
        let n = expectTruncationSweep(bytes, Self.layout) { (b: [UInt8]) throws(DecodeError) in _ = try Self.decode(b) }
        #expect(n == 16)
    }

    @Test(arguments: [0 as UInt32, 3, 0xffff_ffff])
    func requestWithAnotherTypeIsMalformed(type: UInt32) {
        #expect(decodeError { () throws(DecodeError) in try Self.decode(le32(type) + zeros(12)) }
            == .malformed("virtio_scsi.ctrl.type", at: 0, "type \(type) is not AN_QUERY (1) or AN_SUBSCRIBE (2)"))
    }

    @Test func responseRoundTripMatchesTheSpecLayout() throws {
        let response = ANResponse(eventActual: [.mediaChange], response: .ok)
        let bytes = encoded { response.encode(into: &$0) }
        #expect(bytes == [0x10, 0, 0, 0, 0x00])
        var r = ByteReader(bytes)
        #expect(try ANResponse(decoding: &r) == response)
        #expect(response.summary == "an-resp OK events MEDIA_CHANGE")
        #expect(ANResponse(eventActual: [], response: .badTarget).summary == "an-resp BAD_TARGET events none")
        #expect(ANResponse(eventActual: [], response: .functionSucceeded).summary == "an-resp unknown(0x0a) events none")
        #expect(response.fields.first(named: "virtio_scsi.an.response")?.value == .code(0, name: "OK"))
        #expect(response.fields.first(named: "virtio_scsi.an.event_actual")?.value == .flags(16, names: ["MEDIA_CHANGE"]))
    }

    @Test func responseTruncationSweep() {
        let bytes = encoded { ANResponse(eventActual: .deviceBusy).encode(into: &$0) }
        let n = expectTruncationSweep(bytes, [("virtio_scsi.an.event_actual", 4), ("virtio_scsi.an.response", 1)]) {
            (b: [UInt8]) throws(DecodeError) in
            var r = ByteReader(b)
            _ = try ANResponse(decoding: &r)
        }
        #expect(n == 5)
    }
}

@Suite struct ControlRequestTests {
    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ControlRequest {
        var r = ByteReader(bytes)
        return try ControlRequest(decoding: &r)
    }

    @Test func dispatchesOnType() throws {
        let tmf = TMFRequest(subtype: .logicalUnitReset, lun: VirtioSCSILUN(target: 0, lun: 2))
        let an = ANRequest(kind: .subscribe, lun: VirtioSCSILUN(target: 0, lun: 2), eventRequested: .powerManagement)
        let tmfBytes = encoded { tmf.encode(into: &$0) }
        let anBytes = encoded { an.encode(into: &$0) }
        #expect(try Self.decode(tmfBytes) == .taskManagement(tmf))
        #expect(try Self.decode(anBytes) == .asyncNotification(an))
        #expect(try Self.decode(tmfBytes).type == .taskManagement)
        #expect(try Self.decode(anBytes).type == .anSubscribe)
        #expect(encoded { ControlRequest.taskManagement(tmf).encode(into: &$0) } == tmfBytes)
        #expect(ControlRequest.asyncNotification(an).summary == an.summary)
        #expect(ControlRequest.taskManagement(tmf).fields == tmf.fields)
    }

    @Test func unknownTypeIsUnsupported() {
        #expect(decodeError { () throws(DecodeError) in try Self.decode(le32(3) + zeros(20)) }
            == .unsupported("virtio_scsi.ctrl.type", at: 0, "controlq request type 3 (unknown(0x03))"))
    }

    @Test func truncatedTypeNamesTheType() {
        for length in 0..<4 {
            #expect(decodeError { () throws(DecodeError) in try Self.decode(zeros(length)) }
                == .truncated("virtio_scsi.ctrl.type", at: 0, needed: 4, available: length))
        }
    }

    @Test func truncatedBodyNamesTheBodyField() {
        #expect(decodeError { () throws(DecodeError) in try Self.decode(le32(0) + zeros(4)) }
            == .truncated("virtio_scsi.lun", at: 8, needed: 8, available: 0))
        #expect(decodeError { () throws(DecodeError) in try Self.decode(le32(2) + zeros(10)) }
            == .truncated("virtio_scsi.an.event_requested", at: 12, needed: 4, available: 2))
    }

    @Test func responseFollowsTheRequestType() throws {
        let tmf = try Self.decode(encoded { TMFRequest(subtype: .queryTask, lun: VirtioSCSILUN(target: 0, lun: 0)).encode(into: &$0) })
        var r1 = ByteReader([10])
        #expect(try ControlResponse(decoding: &r1, for: tmf) == .taskManagement(TMFResponse(response: .functionSucceeded)))
        var r2 = ByteReader([0, 0, 0, 0, 0])
        let an = ControlResponse.asyncNotification(ANResponse(eventActual: []))
        #expect(try ControlResponse(decoding: &r2, for: .anQuery) == an)
        #expect(an.summary == "an-resp OK events none")
        #expect(encoded { an.encode(into: &$0) } == [0, 0, 0, 0, 0])
        var r3 = ByteReader([0])
        #expect(decodeError { () throws(DecodeError) in try ControlResponse(decoding: &r3, for: .unknown(9)) }
            == .unsupported("virtio_scsi.ctrl.type", at: 0, "controlq request type 9 (unknown(0x09))"))
    }
}
