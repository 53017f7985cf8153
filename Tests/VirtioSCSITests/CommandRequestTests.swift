import Foundation
import Testing
import VQOutput
import VQWire
@testable import VirtioSCSI

@Suite struct CommandRequestTests {
    /// READ(10) of 8 blocks at LBA 2048.
    static let read10: [UInt8] = [0x28, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x00]

    /// Written from the spec layout: lun, id, task_attr, prio, crn, cdb[cdb_size], data-out.
    static func vector(cdbSize: Int, dataOut: [UInt8] = []) -> [UInt8] {
        [0x01, 0x00, 0x40, 0x05, 0, 0, 0, 0]
            + [0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0]
            + [0x00, 0x00, 0x00]
            + read10 + zeros(cdbSize - read10.count)
            + dataOut
    }

    static func layout(cdbSize: Int, t10PI: Bool = false) -> Layout {
        var l: Layout = [("virtio_scsi.lun", 8), ("virtio_scsi.id", 8), ("virtio_scsi.task_attr", 1),
                         ("virtio_scsi.prio", 1), ("virtio_scsi.crn", 1)]
        if t10PI { l += [("virtio_scsi.pi.bytes_out", 4), ("virtio_scsi.pi.bytes_in", 4)] }
        return l + [("virtio_scsi.cdb", cdbSize)]
    }

    static func decode(_ bytes: [UInt8], cdbSize: Int = 32, t10PI: Bool = false) throws(DecodeError) -> CommandRequest {
        var r = ByteReader(bytes)
        return try CommandRequest(decoding: &r, cdbSize: cdbSize, t10PI: t10PI)
    }

    @Test(arguments: [32, 16])
    func roundTripMatchesTheSpecLayout(cdbSize: Int) throws {
        let request = CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 5), id: 0xdead_beef, cdb: Self.read10,
                                     cdbSize: cdbSize)
        let bytes = encoded { request.encode(into: &$0) }
        #expect(bytes == Self.vector(cdbSize: cdbSize))
        #expect(bytes.count == 19 + cdbSize)
        let back = try Self.decode(bytes, cdbSize: cdbSize)
        #expect(back == request)
        #expect(back.cdbSize == cdbSize)
        #expect(back.dataOut.isEmpty)
        #expect(try back.command.get().opcode == 0x28)
    }

    @Test func dataOutIsEverythingAfterTheCDB() throws {
        let payload: [UInt8] = [1, 2, 3, 4, 5]
        let bytes = Self.vector(cdbSize: 32, dataOut: payload)
        let request = try Self.decode(bytes)
        #expect(request.dataOut == payload)
        #expect(encoded { request.encode(into: &$0) } == bytes)
        let top = request.fields
        #expect(top.first(named: "virtio_scsi.data_out.length")?.value == .uint(5))
        #expect(top.first(named: "virtio_scsi.data_out.bytes")?.value == .bytes(payload))
        #expect(request.summary.hasSuffix(" data-out 5"))
    }

    @Test func cdbSize16SplitsTheHeaderDifferently() throws {
        // The same bytes read with cdb_size 32 and 16: with 16, the last 16 bytes are data-out.
        let bytes = Self.vector(cdbSize: 32)
        let at32 = try Self.decode(bytes, cdbSize: 32)
        let at16 = try Self.decode(bytes, cdbSize: 16)
        #expect(at32.cdb.count == 32)
        #expect(at32.dataOut.isEmpty)
        #expect(at16.cdb.count == 16)
        #expect(at16.dataOut == zeros(16))
        #expect(Array(at16.cdb[0..<10]) == Self.read10)
    }

    @Test func t10PIFieldsComeBeforeTheCDBAndProtectionDataBeforeDataOut() throws {
        let pi: [UInt8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7]
        let request = CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 5), id: 0xdead_beef,
                                     protectionInfo: .init(bytesOut: 8, bytesIn: 0x11223344),
                                     cdb: Self.read10, protectionOut: pi, dataOut: [0xaa, 0xbb])
        let bytes = encoded { request.encode(into: &$0) }
        let expected: [UInt8] = [0x01, 0x00, 0x40, 0x05, 0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0]
            + [0x08, 0, 0, 0] + [0x44, 0x33, 0x22, 0x11] + Self.read10 + zeros(22) + pi + [0xaa, 0xbb]
        #expect(bytes == expected)
        let back = try Self.decode(bytes, t10PI: true)
        #expect(back == request)
        #expect(back.protectionInfo == .init(bytesOut: 8, bytesIn: 0x11223344))
        #expect(try back.command.get().opcode == 0x28)
        #expect(back.protectionOut == pi)
        #expect(back.dataOut == [0xaa, 0xbb])
        #expect(back.fields.first(named: "virtio_scsi.pi.bytes_out")?.value == .uint(8))
        #expect(back.fields.first(named: "virtio_scsi.pi.bytes_in")?.value == .uint(0x11223344))
        #expect(back.fields.first(named: "virtio_scsi.pi.data_out")?.value == .bytes(pi))
        #expect(back.fields.first(named: "virtio_scsi.data_out.length")?.value == .uint(2))
        #expect(back.summary.hasSuffix(" pi out 8 in 287454020 data-out 2"))
        // Read without T10 PI, the PI words are taken for the CDB.
        let misread = try Self.decode(bytes, t10PI: false)
        #expect(try misread.command.get().opcode == 0x08)
        #expect(misread.protectionOut.isEmpty)
    }

    @Test func protectionDataCutByTheCaptureIsKeptAsFarAsItGoes() throws {
        let header = encoded {
            CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 5), id: 1, protectionInfo: .init(bytesOut: 512, bytesIn: 0),
                           cdb: Self.read10).encode(into: &$0)
        }
        let request = try Self.decode(header + [1, 2, 3], t10PI: true)
        #expect(request.protectionOut == [1, 2, 3])
        #expect(request.dataOut.isEmpty)
        #expect(encoded { request.encode(into: &$0) } == header + [1, 2, 3])
    }

    @Test func negativeCDBSizeIsUnsupportedNotATrap() {
        #expect(decodeError { () throws(DecodeError) in try Self.decode(Self.vector(cdbSize: 32), cdbSize: -1) }
            == .unsupported("virtio_scsi.cdb", at: 19, "cdb_size -1"))
    }

    @Test(arguments: [(32, false), (16, false), (32, true)])
    func truncationSweep(cdbSize: Int, t10PI: Bool) {
        let request = CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 5), id: 0xdead_beef,
                                     protectionInfo: t10PI ? .init(bytesOut: 0, bytesIn: 0) : nil,
                                     cdb: Self.read10, cdbSize: cdbSize)
        let bytes = encoded { request.encode(into: &$0) }
        let n = expectTruncationSweep(bytes, Self.layout(cdbSize: cdbSize, t10PI: t10PI)) { (b: [UInt8]) throws(DecodeError) in
            _ = try Self.decode(b, cdbSize: cdbSize, t10PI: t10PI)
        }
        #expect(n == bytes.count)
    }

    @Test func undecodableCDBIsShownRawNotFatal() throws {
        // cdb_size 0 leaves no opcode: the request decodes, its CDB carries the error.
        let bytes = Array(Self.vector(cdbSize: 32).prefix(19)) + [0x99]
        let request = try Self.decode(bytes, cdbSize: 0)
        guard case let .failure(error) = request.command else {
            Issue.record("expected a CDB error")
            return
        }
        #expect(error.isTruncated)
        #expect(error.offset == 19)
        #expect(request.dataOut == [0x99])
        let cdb = request.fields.first(named: "virtio_scsi.cdb")
        #expect(cdb?.children.map(\.name) == ["virtio_scsi.cdb.raw", "virtio_scsi.cdb.error"])
        #expect(cdb?.first(named: "virtio_scsi.cdb.raw")?.value == .bytes([]))
        #expect(cdb?.first(named: "virtio_scsi.cdb.error")?.value == .string(error.description))
        #expect(request.summary == "cmd-req 0:5 tag 0x00000000deadbeef simple bad-cdb data-out 1")
    }

    @Test(arguments: [(0, "SIMPLE"), (1, "ORDERED"), (2, "HEAD"), (3, "ACA"), (4, "unknown(0x04)"), (0xff, "unknown(0xff)")])
    func taskAttributes(raw: UInt8, name: String) throws {
        var bytes = Self.vector(cdbSize: 32)
        bytes[16] = raw
        let request = try Self.decode(bytes)
        #expect(request.taskAttribute.rawValue == raw)
        #expect(request.taskAttribute.name == name)
        #expect(request.fields.first(named: "virtio_scsi.task_attr")?.value == .code(UInt64(raw), name: name))
        #expect(encoded { request.encode(into: &$0) } == bytes)
    }

    @Test func prioAndCRNAreKeptAndShown() throws {
        var bytes = Self.vector(cdbSize: 32)
        bytes[17] = 7
        bytes[18] = 255
        let request = try Self.decode(bytes)
        #expect(request.priority == 7)
        #expect(request.crn == 255)
        #expect(request.fields.first(named: "virtio_scsi.prio")?.value == .uint(7))
        #expect(request.fields.first(named: "virtio_scsi.crn")?.value == .uint(255))
        #expect(request.summary.contains(" prio 7 crn 255 "))
    }

    @Test func summaryStartsWithLUNTagAndAttribute() throws {
        let request = try Self.decode(Self.vector(cdbSize: 32))
        let scsi = try request.command.get()
        #expect(request.summary == "cmd-req 0:5 tag 0x00000000deadbeef simple " + scsi.summary)
    }

    @Test func fieldsAreOneVirtioSCSIGroup() throws {
        let request = try Self.decode(Self.vector(cdbSize: 32))
        let top = request.fields
        #expect(top.count == 1)
        #expect(top.first?.name == "virtio_scsi")
        #expect(top.first?.children.map(\.name) == [
            "virtio_scsi.lun", "virtio_scsi.id", "virtio_scsi.task_attr", "virtio_scsi.prio", "virtio_scsi.crn",
            "virtio_scsi.cdb",
        ])
        #expect(top.first(named: "virtio_scsi.id")?.value == .hex(0xdead_beef))
    }

    @Test func jsonKeyPaths() throws {
        let request = CommandRequest(lun: VirtioSCSILUN(target: 2, lun: 5), id: 0x1122_3344_5566_7788, cdb: Self.read10)
        let line = FieldJSON.line(request.fields)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        let top = object?["virtio_scsi"] as? [String: Any]
        let lun = top?["lun"] as? [String: Any]
        let cdb = top?["cdb"] as? [String: Any]
        #expect(object?.keys.sorted() == ["virtio_scsi"])
        #expect(lun?["target"] as? Int == 2)
        #expect(lun?["lun"] as? Int == 5)
        #expect(lun?["raw"] as? String == "0102400500000000")
        #expect(top?["id"] as? String == "0x1122334455667788")
        #expect(top?["task_attr"] as? Int == 0)
        #expect(top?["task_attr_name"] as? String == "SIMPLE")
        #expect(cdb?["opcode"] as? Int == 40)
        #expect(line.hasPrefix(#"{"virtio_scsi":{"lun":{"raw":"0102400500000000","target":2,"lun":5,"#))
        #expect(line.contains(#""id":"0x1122334455667788","task_attr":0,"task_attr_name":"SIMPLE","prio":0,"crn":0,"cdb":{"#))
    }
}
