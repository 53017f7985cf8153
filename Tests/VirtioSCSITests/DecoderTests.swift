import Testing
import VQOutput
import VQWire
@testable import VirtioSCSI

@Suite struct DecoderTests {
    static let read10: [UInt8] = [0x28, 0, 0, 0, 0x08, 0, 0, 0, 0x08, 0]

    /// One sample of every kind, as bytes.
    static func sample(_ kind: MessageKind) -> [UInt8] {
        let lun = VirtioSCSILUN(target: 0, lun: 5)
        return encoded { w in
            switch kind {
            case .commandRequest: CommandRequest(lun: lun, id: 0xdead_beef, cdb: read10, dataOut: [1, 2]).encode(into: &w)
            case .commandResponse: CommandResponse(senseLength: 0, status: 0, dataIn: [3, 4, 5]).encode(into: &w)
            case .tmfRequest: TMFRequest(subtype: .abortTask, lun: lun, id: 7).encode(into: &w)
            case .tmfResponse: TMFResponse(response: .functionSucceeded).encode(into: &w)
            case .anRequest: ANRequest(kind: .query, lun: lun, eventRequested: .mediaChange).encode(into: &w)
            case .anResponse: ANResponse(eventActual: []).encode(into: &w)
            case .event: VirtioSCSIEvent(type: .transportReset, lun: lun, reason: 1).encode(into: &w)
            case .cdb: w.writeBytes(read10)
            case .sense: w.writeBytes([0x70, 0, 0x06, 0, 0, 0, 0, 0x0a] + zeros(10))
            case .config: VirtioSCSIConfig().encode(into: &w)
            }
        }
    }

    @Test func kindsAreTheCommandLineNames() {
        #expect(MessageKind.allCases.map(\.rawValue) == [
            "cmd-req", "cmd-resp", "tmf-req", "tmf-resp", "an-req", "an-resp", "event", "cdb", "sense", "config",
        ])
        #expect(MessageKind(rawValue: "tmf-resp") == .tmfResponse)
        #expect(MessageKind(rawValue: "nope") == nil)
    }

    @Test(arguments: MessageKind.allCases)
    func everyKindDecodesToItsMessage(kind: MessageKind) throws {
        let decoded = try VirtioSCSIDecoder.decode(kind: kind, bytes: Self.sample(kind))
        #expect(decoded.message.kind == kind)
        #expect(decoded.trailing.isEmpty)
        #expect(decoded.fields.count == 1)
        #expect(decoded.fields.first?.name == "virtio_scsi")
        #expect(decoded.summary.hasPrefix(kind.rawValue + " "))
        #expect(decoded.fields.first(named: "virtio_scsi.trailing") == nil)
    }

    @Test func commandKindsTakeTheRestAsData() throws {
        let request = try VirtioSCSIDecoder.decode(kind: .commandRequest, bytes: Self.sample(.commandRequest))
        guard case let .commandRequest(req) = request.message else { Issue.record("not a request"); return }
        #expect(req.dataOut == [1, 2])
        let response = try VirtioSCSIDecoder.decode(kind: .commandResponse, bytes: Self.sample(.commandResponse))
        guard case let .commandResponse(resp) = response.message else { Issue.record("not a response"); return }
        #expect(resp.dataIn == [3, 4, 5])
    }

    @Test func sizesArePassedThrough() throws {
        let bytes = Self.sample(.commandRequest)
        let at16 = try VirtioSCSIDecoder.decode(kind: .commandRequest, bytes: bytes, cdbSize: 16)
        guard case let .commandRequest(req) = at16.message else { Issue.record("not a request"); return }
        #expect(req.cdbSize == 16)
        #expect(req.dataOut.count == 16 + 2)
        let response = try VirtioSCSIDecoder.decode(kind: .commandResponse, bytes: Self.sample(.commandResponse), senseSize: 64)
        guard case let .commandResponse(resp) = response.message else { Issue.record("not a response"); return }
        #expect(resp.senseSize == 64)
        #expect(resp.dataIn.count == 32 + 3)
        let pi = try VirtioSCSIDecoder.decode(kind: .commandRequest, bytes: bytes, cdbSize: 16, t10PI: true)
        guard case let .commandRequest(piReq) = pi.message else { Issue.record("not a request"); return }
        #expect(piReq.protectionInfo == .init(bytesOut: 0x28, bytesIn: 8))
        #expect(piReq.protectionOut.count == bytes.count - 27 - 16)
        #expect(piReq.dataOut.isEmpty)
    }

    @Test(arguments: [MessageKind.tmfRequest, .tmfResponse, .anRequest, .anResponse, .event, .config])
    func trailingBytesAreReportedNotRejected(kind: MessageKind) throws {
        #expect(kind.isFixedSize)
        let decoded = try VirtioSCSIDecoder.decode(kind: kind, bytes: Self.sample(kind) + [0xee, 0xff, 0x00])
        #expect(decoded.trailing == [0xee, 0xff, 0x00])
        #expect(decoded.fields.first?.children.last == Field(DecodedMessage.trailingField, .uint(3)))
        #expect(decoded.summary.hasSuffix(" trailing 3"))
    }

    @Test func commandContextReachesTheResponse() throws {
        let inquiry = try SCSICommand(decoding: [0x12, 0, 0, 0, 36, 0])
        let data: [UInt8] = [0x00, 0x00, 0x05, 0x02] + zeros(32)
        let bytes = encoded { CommandResponse(senseLength: 0, status: 0, dataIn: data).encode(into: &$0) }
        let decoded = try VirtioSCSIDecoder.decode(kind: .commandResponse, bytes: bytes, command: inquiry)
        guard case let .commandResponse(response) = decoded.message else { Issue.record("not a response"); return }
        #expect(response.dataIn == data)
        #expect(response.decodedDataIn == SCSIDataIn.decode(command: inquiry, data: data))
    }

    /// Arbitrary bytes never trap: each kind either decodes, and re-encodes to the bytes it
    /// consumed, or fails with an error naming a virtio_scsi field inside the input.
    @Test(arguments: MessageKind.allCases)
    func arbitraryBytesNeverTrap(kind: MessageKind) {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15 &* UInt64(kind.rawValue.utf8.count + 1)
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var decodedCount = 0
        for _ in 0..<500 {
            let length = Int(next() % 160)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: next()) }
            // Make the type words plausible half of the time, so decoders get past them.
            if next() % 2 == 0 {
                for (i, b) in le32(UInt32(next() % 4)).enumerated() where i < bytes.count { bytes[i] = b }
            }
            let cdbSize = Int(next() % 40)
            let senseSize = Int(next() % 100)
            let t10PI = next() % 2 == 0
            do {
                let decoded = try VirtioSCSIDecoder.decode(kind: kind, bytes: bytes, cdbSize: cdbSize,
                                                           senseSize: senseSize, t10PI: t10PI)
                decodedCount += 1
                _ = decoded.summary
                _ = decoded.fields
                if let reencoded = Self.reencode(decoded.message) {
                    #expect(reencoded + decoded.trailing == bytes, "\(kind.rawValue) \(Hex.compact(bytes))")
                }
            } catch {
                #expect(error.field.hasPrefix("virtio_scsi"), "\(error)")
                // An error points inside the input, except a field that starts past its end
                // (after skipped reserved bytes), which is truncated with nothing available.
                if case let .truncated(_, available) = error.kind, error.offset > bytes.count {
                    #expect(available == 0, "\(error)")
                } else {
                    #expect(error.offset >= 0 && error.offset <= bytes.count, "\(error)")
                }
            }
        }
        #expect(decodedCount > 0)
    }

    static func reencode(_ message: VirtioSCSIMessage) -> [UInt8]? {
        encodedOrNil { w in
            switch message {
            case let .commandRequest(m): m.encode(into: &w)
            case let .commandResponse(m): m.encode(into: &w)
            case let .tmfRequest(m): m.encode(into: &w)
            case let .tmfResponse(m): m.encode(into: &w)
            case let .anRequest(m): m.encode(into: &w)
            case let .anResponse(m): m.encode(into: &w)
            case let .event(m): m.encode(into: &w)
            case let .config(m): m.encode(into: &w)
            case .cdb, .sense: return false
            }
            return true
        }
    }

    @Test func truncationErrorsComeThrough() {
        let error = decodeError { () throws(DecodeError) in
            try VirtioSCSIDecoder.decode(kind: .tmfRequest, bytes: Array(Self.sample(.tmfRequest).prefix(20)))
        }
        #expect(error == .truncated("virtio_scsi.id", at: 16, needed: 8, available: 4))
    }

    @Test func scsiKindsAreWrappedInTheProtocolGroup() throws {
        let cdb = try VirtioSCSIDecoder.decode(kind: .cdb, bytes: Self.read10)
        guard case let .cdb(command) = cdb.message else { Issue.record("not a CDB"); return }
        #expect(command.opcode == 0x28)
        #expect(cdb.fields.first?.children == command.fields)
        #expect(cdb.summary == "cdb " + command.summary)
        let sense = try VirtioSCSIDecoder.decode(kind: .sense, bytes: Self.sample(.sense))
        guard case let .sense(data) = sense.message else { Issue.record("not sense"); return }
        #expect(sense.fields.first?.children == data.fields)
        #expect(sense.summary == "sense " + data.summary)
    }

    @Test func fieldRegistryIsUniqueAndUnderTheProtocol() {
        let names = VirtioSCSI.allFields.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0 == "virtio_scsi" || $0.hasPrefix("virtio_scsi.") })
        #expect(names.first == "virtio_scsi")
    }

    /// Every field a message decoder emits is in the registry with the same definition,
    /// except what the SCSI layer emits inside its CDB, sense and data-in groups.
    @Test(arguments: MessageKind.allCases)
    func everyEmittedFieldIsRegistered(kind: MessageKind) throws {
        let registry = Set(VirtioSCSI.allFields)
        let scsiGroups: Set<String> = [SCSICommand.group.name, SenseData.group.name]
        var unregistered: [String] = []
        func walk(_ f: Field) {
            if scsiGroups.contains(f.name) && f.children.first(where: { registry.contains($0.def) }) == nil { return }
            if !registry.contains(f.def) && !scsiGroups.contains(f.name) { unregistered.append(f.name) }
            for c in f.children { walk(c) }
        }
        let decoded = try VirtioSCSIDecoder.decode(kind: kind, bytes: Self.sample(kind) + [1])
        for f in decoded.fields { walk(f) }
        #expect(unregistered == [])
    }

    @Test func registryCoversFlagsAndErrorFields() {
        let names = Set(VirtioSCSI.allFields.map(\.name))
        for name in ["virtio_scsi.lun.nonconforming", "virtio_scsi.lun.well_known", "virtio_scsi.cdb.raw",
                     "virtio_scsi.cdb.error", "virtio_scsi.sense.raw", "virtio_scsi.sense.error",
                     "virtio_scsi.sense_len_exceeds", "virtio_scsi.config.invalid", "virtio_scsi.trailing",
                     "virtio_scsi.pi.bytes_out", "virtio_scsi.pi.bytes_in", "virtio_scsi.event.an_events"] {
            #expect(names.contains(name), "\(name)")
        }
    }

    @Test func textRenderingOfATMF() throws {
        let decoded = try VirtioSCSIDecoder.decode(kind: .tmfRequest, bytes: Self.sample(.tmfRequest))
        #expect(FieldText.lines(decoded.fields) == [
            "virtio-scsi",
            "    Control type: TMF (0x00)",
            "    TMF: ABORT_TASK (0x00)",
            "    LUN: 0:5",
            "        Raw: 01 00 40 05 00 00 00 00",
            "        Target: 0",
            "        LUN: 5",
            "        Address method: FLAT (0x01)",
            "    Tag: 0x0000000000000007",
        ])
        #expect(FieldJSON.line(decoded.fields) ==
            #"{"virtio_scsi":{"ctrl":{"type":0,"type_name":"TMF"},"tmf":{"subtype":0,"subtype_name":"ABORT_TASK"},"lun":{"raw":"0100400500000000","target":0,"lun":5,"address_method":1,"address_method_name":"FLAT"},"id":"0x0000000000000007"}}"#)
    }
}
