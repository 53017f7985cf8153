import Testing
import VQRecord
import VQWire
@testable import VirtioSCSI

@Suite struct ChainDecodingTests {
    static let context = VirtioSCSIChainContext()
    static let lun = VirtioSCSILUN(target: 0, lun: 5)

    static func bytes(_ encode: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter()
        encode(&w)
        return w.bytes
    }

    /// A Linux-shaped chain from an indirect table: header, then response, then data-in.
    static func readChain(responseBytes: [UInt8] = []) -> [RecordSegment] {
        let request = CommandRequest(lun: lun, id: 0xffff_8881_2345_6780, cdb: [0x28, 0, 0, 0, 0x08, 0, 0, 0, 0x08, 0])
        let header = bytes { request.encode(into: &$0) }
        let fi = RecordSegment.fromIndirectFlag
        return [
            RecordSegment(address: 0x1000, length: UInt32(header.count), flags: 1 | fi, bytes: header),
            RecordSegment(address: 0x2000, length: 108, flags: 1 | 2 | fi, bytes: Array(responseBytes.prefix(108))),
            RecordSegment(address: 0x3000, length: 4096, flags: 2 | fi, bytes: Array(responseBytes.dropFirst(108))),
        ]
    }

    @Test func framerHeaderLengthsFollowTheConfiguration() {
        let f = VirtioSCSIFramer(VirtioSCSIChainContext(cdbSize: 16, senseSize: 64, t10PI: true))
        #expect(f.readableHeaderLength(queue: 2) == 27 + 16)
        #expect(f.writableHeaderLength(queue: 2) == 12 + 64)
        #expect(f.readableHeaderLength(queue: 0) == 24)
        #expect(f.writableHeaderLength(queue: 0) == 5)
        #expect(f.readableHeaderLength(queue: 1) == 0)
        #expect(f.writableHeaderLength(queue: 1) == 16)
        #expect(VirtioSCSIQueueRole(queue: 5).name == "request3")
    }

    @Test func commandRequestAndResponsePair() throws {
        let request = VirtioSCSIChainDecoder.decodeAvailable(Self.readChain(), queue: 2, context: Self.context)
        guard case let .commandRequest(req)? = request.message else { Issue.record("not a command request: \(request.summary)"); return }
        #expect(req.id == 0xffff_8881_2345_6780)
        #expect(req.lun.lun == 5)
        #expect(request.command?.opcode == 0x28)
        #expect(request.payloadLength == 0)

        let response = CommandResponse(senseLength: 0, status: 0, dataIn: [UInt8](repeating: 0xab, count: 4096))
        let written = Self.bytes { response.encode(into: &$0) }
        let used = VirtioSCSIChainDecoder.decodeUsed(Self.readChain(responseBytes: written), usedLength: UInt32(written.count),
                                                     queue: 2, context: Self.context, request: request)
        guard case let .commandResponse(resp)? = used.message else { Issue.record("not a response: \(used.summary)"); return }
        #expect(resp.response == .ok)
        #expect(resp.dataIn.count == 4096)
        #expect(used.payloadLength == 4096)
        #expect(used.payloadCaptured == 4096)
    }

    @Test func payloadCutBySnaplenIsReported() {
        let response = CommandResponse(senseLength: 0, status: 0, dataIn: [UInt8](repeating: 0xab, count: 4096))
        var segments = Self.readChain(responseBytes: Self.bytes { response.encode(into: &$0) })
        segments[2].bytes = Array(segments[2].bytes.prefix(64))
        let used = VirtioSCSIChainDecoder.decodeUsed(segments, usedLength: 108 + 4096, queue: 2, context: Self.context, request: nil)
        #expect(used.payloadLength == 4096)
        #expect(used.payloadCaptured == 64)
        #expect(used.summary.hasSuffix("(64 of 4096 payload bytes captured)"))
        #expect(used.fields.first(named: "virtio_scsi.payload_captured")?.value == .uint(64))
    }

    @Test func usedBytesAreClampedToTheUsedLength() {
        let response = CommandResponse(senseLength: 0, status: 0, dataIn: [UInt8](repeating: 1, count: 4096))
        let segments = Self.readChain(responseBytes: Self.bytes { response.encode(into: &$0) })
        let used = VirtioSCSIChainDecoder.decodeUsed(segments, usedLength: 108 + 512, queue: 2, context: Self.context, request: nil)
        guard case let .commandResponse(resp)? = used.message else { Issue.record("\(used.summary)"); return }
        #expect(resp.dataIn.count == 512)
    }

    @Test func controlqResponsesFollowTheirRequest() {
        let tmf = TMFRequest(subtype: .abortTask, lun: Self.lun, id: 7)
        let tmfBytes = Self.bytes { tmf.encode(into: &$0) }
        let segs = [RecordSegment(address: 0x100, length: 24, flags: 1, bytes: tmfBytes),
                    RecordSegment(address: 0x200, length: 1, flags: 2, bytes: [10])]
        let request = VirtioSCSIChainDecoder.decodeAvailable(segs, queue: 0, context: Self.context)
        #expect(request.message == .tmfRequest(tmf))
        let used = VirtioSCSIChainDecoder.decodeUsed(segs, usedLength: 1, queue: 0, context: Self.context, request: request)
        #expect(used.message == .tmfResponse(TMFResponse(response: .functionSucceeded)))

        let an = ANRequest(kind: .subscribe, lun: Self.lun, eventRequested: [.mediaChange])
        let anSegs = [RecordSegment(address: 0x100, length: 16, flags: 1, bytes: Self.bytes { an.encode(into: &$0) }),
                      RecordSegment(address: 0x200, length: 5, flags: 2, bytes: [0, 0, 0, 0, 0])]
        let anReq = VirtioSCSIChainDecoder.decodeAvailable(anSegs, queue: 0, context: Self.context)
        #expect(anReq.message == .anRequest(an))
        let anUsed = VirtioSCSIChainDecoder.decodeUsed(anSegs, usedLength: 5, queue: 0, context: Self.context, request: anReq)
        #expect(anUsed.message == .anResponse(ANResponse(eventActual: [], response: .ok)))
        // An orphan response: the used length tells the layout.
        let orphan = VirtioSCSIChainDecoder.decodeUsed(anSegs, usedLength: 5, queue: 0, context: Self.context, request: nil)
        #expect(orphan.message == .anResponse(ANResponse(eventActual: [], response: .ok)))
        let orphanTMF = VirtioSCSIChainDecoder.decodeUsed(segs, usedLength: 1, queue: 0, context: Self.context, request: nil)
        #expect(orphanTMF.message == .tmfResponse(TMFResponse(response: .functionSucceeded)))
    }

    @Test func eventqBuffersAndEvents() {
        let buffer = [RecordSegment(address: 0x500, length: 16, flags: 2)]
        let posted = VirtioSCSIChainDecoder.decodeAvailable(buffer, queue: 1, context: Self.context)
        #expect(posted.summary == "event buffer posted (16 bytes)")
        let event = VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: 0, lun: 3, addressMethod: .peripheral), reason: 1)
        var filled = buffer
        filled[0].bytes = Self.bytes { event.encode(into: &$0) }
        let used = VirtioSCSIChainDecoder.decodeUsed(filled, usedLength: 16, queue: 1, context: Self.context, request: posted)
        #expect(used.message == .event(event))
    }

    @Test func undecodableBytesAreShownNotDropped() {
        let segs = [RecordSegment(address: 0x100, length: 3, flags: 0, bytes: [1, 2, 3])]
        let d = VirtioSCSIChainDecoder.decodeAvailable(segs, queue: 2, context: Self.context)
        guard case let .undecodable(error, bytes) = d.content else { Issue.record("\(d.summary)"); return }
        #expect(error.isTruncated)
        #expect(bytes == [1, 2, 3])
        #expect(d.fields.first(named: "virtio_scsi.bytes")?.value == .bytes([1, 2, 3]))
    }

    @Test func gatherStopsAfterAPartlyCapturedSegment() {
        let segs = [RecordSegment(address: 0, length: 4, flags: 0, bytes: [1, 2]),
                    RecordSegment(address: 8, length: 2, flags: 0, bytes: [3, 4]),
                    RecordSegment(address: 16, length: 2, flags: 2, bytes: [9, 9])]
        let (readable, length) = VirtioSCSIChainDecoder.gather(segs, writable: false)
        #expect(readable == [1, 2])
        #expect(length == 6)
    }
}

/// The tests build chains as arrays of segments.
extension VirtioSCSIChainDecoder {
    static func decodeAvailable(_ segments: [RecordSegment], queue: UInt16, context: VirtioSCSIChainContext) -> ChainDecode {
        decodeAvailable(ChainSegments(segments), queue: queue, context: context)
    }

    static func decodeUsed(_ segments: [RecordSegment], usedLength: UInt32, queue: UInt16, context: VirtioSCSIChainContext,
                           request: ChainDecode?) -> ChainDecode {
        decodeUsed(ChainSegments(segments), usedLength: usedLength, queue: queue, context: context, request: request)
    }

    static func gather(_ segments: [RecordSegment], writable: Bool) -> (bytes: [UInt8], length: UInt64) {
        gather(ChainSegments(segments), writable: writable)
    }
}
