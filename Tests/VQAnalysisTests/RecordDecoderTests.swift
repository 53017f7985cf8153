import Testing
import VQRecord
import VQWire
import VirtioSCSI
@testable import VQAnalysis

@Suite struct RecordDecoderTests {
    static func requestSegments(cdbSize: Int) -> [RecordSegment] {
        let request = CommandRequest(lun: VirtioSCSILUN(target: 1, lun: 2), id: 42, cdb: SCSICommand.testUnitReady(), cdbSize: cdbSize)
        var w = ByteWriter()
        request.encode(into: &w)
        return [RecordSegment(address: 0x1000, length: UInt32(w.count), flags: 1, bytes: w.bytes),
                RecordSegment(address: 0x2000, length: 108, flags: 2)]
    }

    static func state(_ s: DeviceStateMarker.State, queue: UInt16 = 2, cdbSize: UInt32 = 32) -> CaptureRecord {
        CaptureRecord(kind: .deviceState, queue: queue, body: .deviceState(DeviceStateMarker(
            state: s, generation: 1, queueSize: 256, cdbSize: cdbSize, senseSize: 96, deviceName: "scsi7")))
    }

    @Test func stateMarkersSetTheConfigurationDecodersUse() {
        var decoder = RecordDecoder()
        _ = decoder.decode(Self.state(.attached, cdbSize: 16))
        let d = decoder.decode(CaptureRecord(kind: .available, queue: 2, head: 3, transactionID: 1,
                                             body: .chain(ChainSegments(Self.requestSegments(cdbSize: 16)))))
        #expect(d.deviceName == "scsi7")
        #expect(d.context.cdbSize == 16)
        guard case let .commandRequest(r)? = d.decode?.message else { Issue.record("\(d.decode?.summary ?? "nil")"); return }
        #expect(r.id == 42)
        #expect(r.cdb.count == 16)
    }

    @Test func withoutAMarkerTheDefaultsApply() {
        var decoder = RecordDecoder()
        let d = decoder.decode(CaptureRecord(kind: .available, queue: 2, head: 3, transactionID: 1,
                                             body: .chain(ChainSegments(Self.requestSegments(cdbSize: 32)))))
        #expect(d.deviceName == "dev0")
        #expect(d.context == VirtioSCSIChainContext())
        #expect(d.decode?.command?.opcode == 0x00)
    }

    @Test func aCompletionPairsOnlyWithItsOwnTransaction() {
        var decoder = RecordDecoder()
        _ = decoder.decode(CaptureRecord(kind: .available, queue: 2, head: 3, transactionID: 7, body: .chain(ChainSegments(Self.requestSegments(cdbSize: 32)))))
        #expect(decoder.pendingCount == 1)
        let stranger = decoder.decode(CaptureRecord(kind: .used, queue: 2, head: 3, transactionID: 8, body: .chain([])))
        #expect(stranger.request == nil)
        #expect(decoder.pendingCount == 1)
        let own = decoder.decode(CaptureRecord(kind: .used, queue: 2, head: 3, transactionID: 7, body: .chain([])))
        #expect(own.request?.command?.opcode == 0x00)
        #expect(decoder.pendingCount == 0)
    }

    @Test func aResetForgetsTheRequestsOfItsQueue() {
        var decoder = RecordDecoder()
        _ = decoder.decode(CaptureRecord(kind: .available, queue: 2, head: 3, transactionID: 1, body: .chain(ChainSegments(Self.requestSegments(cdbSize: 32)))))
        _ = decoder.decode(CaptureRecord(kind: .available, queue: 3, head: 3, transactionID: 2, body: .chain(ChainSegments(Self.requestSegments(cdbSize: 32)))))
        #expect(decoder.pendingCount == 2)
        _ = decoder.decode(Self.state(.reset, queue: 2))
        #expect(decoder.pendingCount == 1)
        let after = decoder.decode(CaptureRecord(kind: .used, queue: 2, head: 3, transactionID: 1, body: .chain([])))
        #expect(after.request == nil)
    }

    @Test func pendingIsBoundedByHeadsNotByTraffic() {
        var decoder = RecordDecoder()
        for id in 1...10_000 as ClosedRange<UInt64> {
            _ = decoder.decode(CaptureRecord(kind: .available, queue: 2, head: UInt16(id % 4), transactionID: id,
                                             body: .chain(ChainSegments(Self.requestSegments(cdbSize: 32)))))
        }
        #expect(decoder.pendingCount == 4)
    }
}
