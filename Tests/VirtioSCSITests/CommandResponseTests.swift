import Testing
import VQWire
@testable import VirtioSCSI

@Suite struct CommandResponseTests {
    /// Fixed-format sense: UNIT ATTENTION, ASC 0x29 (power on or reset), 18 bytes.
    static let unitAttention: [UInt8] = [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0]

    /// Written from the spec layout: sense_len, residual, status_qualifier, status, response,
    /// sense[sense_size], data-in.
    static func vector(senseSize: Int, senseLen: UInt32 = 18, dataIn: [UInt8] = []) -> [UInt8] {
        le32(senseLen) + [0x00, 0x02, 0x00, 0x00] + [0x02, 0x01] + [0x02] + [0x00]
            + unitAttention + zeros(senseSize - unitAttention.count)
            + dataIn
    }

    static func layout(senseSize: Int) -> Layout {
        [("virtio_scsi.sense_len", 4), ("virtio_scsi.residual", 4), ("virtio_scsi.status_qualifier", 2),
         ("virtio_scsi.status", 1), ("virtio_scsi.response", 1), ("virtio_scsi.sense", senseSize)]
    }

    static func decode(_ bytes: [UInt8], senseSize: Int = 96, command: SCSICommand? = nil) throws(DecodeError) -> CommandResponse {
        var r = ByteReader(bytes)
        return try CommandResponse(decoding: &r, senseSize: senseSize, command: command)
    }

    @Test(arguments: [96, 64])
    func roundTripMatchesTheSpecLayout(senseSize: Int) throws {
        let response = CommandResponse(senseLength: 18, residual: 512, statusQualifier: 0x0102, status: 0x02,
                                       response: .ok, sense: Self.unitAttention, senseSize: senseSize,
                                       dataIn: [9, 8, 7])
        let bytes = encoded { response.encode(into: &$0) }
        #expect(bytes == Self.vector(senseSize: senseSize, dataIn: [9, 8, 7]))
        #expect(bytes.count == 12 + senseSize + 3)
        let back = try Self.decode(bytes, senseSize: senseSize)
        #expect(back == response)
        #expect(back.senseLength == 18)
        #expect(back.residual == 512)
        #expect(back.statusQualifier == 0x0102)
        #expect(back.status == 2)
        #expect(back.response == .ok)
        #expect(back.senseSize == senseSize)
        #expect(back.dataIn == [9, 8, 7])
        #expect(try back.sense?.get().bytes == Self.unitAttention)
    }

    @Test func senseSize64SplitsTheBufferDifferently() throws {
        let bytes = Self.vector(senseSize: 96)
        let at96 = try Self.decode(bytes, senseSize: 96)
        let at64 = try Self.decode(bytes, senseSize: 64)
        #expect(at96.dataIn.isEmpty)
        #expect(at64.senseBuffer.count == 64)
        #expect(at64.dataIn == zeros(32))
        #expect(try at64.sense?.get().bytes == Self.unitAttention)
    }

    @Test func onlySenseLenBytesAreSense() throws {
        let response = try Self.decode(Self.vector(senseSize: 96, senseLen: 8))
        #expect(try response.sense?.get().bytes == Array(Self.unitAttention.prefix(8)))
        let none = try Self.decode(Self.vector(senseSize: 96, senseLen: 0))
        #expect(none.sense == nil)
        #expect(none.fields.first(named: "virtio_scsi.sense") == nil)
    }

    @Test func senseLenBeyondSenseSizeIsFlaggedNotAnError() throws {
        let response = try Self.decode(Self.vector(senseSize: 64, senseLen: 200), senseSize: 64)
        #expect(response.senseLengthExceedsSize)
        #expect(try response.sense?.get().bytes.count == 64)
        #expect(response.fields.first(named: "virtio_scsi.sense_len_exceeds")?.value
            == .string("sense_len 200 exceeds sense_size 64"))
        #expect(response.summary.contains(" sense_len 200>64 "))
        let normal = try Self.decode(Self.vector(senseSize: 96))
        #expect(!normal.senseLengthExceedsSize)
        #expect(normal.fields.first(named: "virtio_scsi.sense_len_exceeds") == nil)
    }

    @Test(arguments: [96, 64])
    func truncationSweep(senseSize: Int) {
        let bytes = Self.vector(senseSize: senseSize)
        let n = expectTruncationSweep(bytes, Self.layout(senseSize: senseSize)) { (b: [UInt8]) throws(DecodeError) in
            _ = try Self.decode(b, senseSize: senseSize)
        }
        #expect(n == 12 + senseSize)
    }

    @Test(arguments: [
        (0, "OK"), (1, "OVERRUN"), (2, "ABORTED"), (3, "BAD_TARGET"), (4, "RESET"), (5, "BUSY"),
        (6, "TRANSPORT_FAILURE"), (7, "TARGET_FAILURE"), (8, "NEXUS_FAILURE"), (9, "FAILURE"),
        (10, "unknown(0x0a)"), (11, "unknown(0x0b)"), (12, "INCORRECT_LUN"), (13, "unknown(0x0d)"), (0xff, "unknown(0xff)"),
    ] as [(UInt8, String)])
    func responseCodes(raw: UInt8, name: String) throws {
        var bytes = Self.vector(senseSize: 96, senseLen: 0)
        bytes[11] = raw
        let response = try Self.decode(bytes)
        #expect(response.response.rawValue == raw)
        #expect(response.response.name(in: .command) == name)
        #expect(response.fields.first(named: "virtio_scsi.response")?.value == .code(UInt64(raw), name: name))
        #expect(response.summary.hasPrefix("cmd-resp \(name)"))
        #expect(encoded { response.encode(into: &$0) } == bytes)
    }

    @Test func statusIsNamedBySAM() throws {
        let response = try Self.decode(Self.vector(senseSize: 96))
        #expect(response.fields.first(named: "virtio_scsi.status")?.value == .code(2, name: SAMStatus.name(2)))
        let sense = try #require(try response.sense?.get())
        #expect(response.summary == "cmd-resp OK \(SAMStatus.name(2)) sense \(sense.summary) residual 512")
    }

    @Test func goodReadSummary() {
        let response = CommandResponse(senseLength: 0, status: 0, dataIn: zeros(4096))
        #expect(response.summary == "cmd-resp OK \(SAMStatus.name(0)) residual 0 data-in 4096")
        #expect(response.fields.first(named: "virtio_scsi.data_in.length")?.value == .uint(4096))
        #expect(response.fields.first(named: "virtio_scsi.data_in.bytes")?.value == .bytes(zeros(4096)))
    }

    @Test func failedTransportOmitsAZeroStatus() {
        #expect(CommandResponse(senseLength: 0, status: 0, response: .reset).summary == "cmd-resp RESET residual 0")
        #expect(CommandResponse(senseLength: 0, status: 0, response: .badTarget, senseSize: 64).summary
            == "cmd-resp BAD_TARGET residual 0")
    }

    @Test func dataInIsDecodedWithTheCommandWhenKnown() throws {
        let inquiry = try SCSICommand(decoding: [0x12, 0, 0, 0, 36, 0])
        let data: [UInt8] = [0x00, 0x00, 0x05, 0x02] + zeros(32)
        let bytes = encoded { CommandResponse(senseLength: 0, status: 0, dataIn: data).encode(into: &$0) }
        let withCommand = try Self.decode(bytes, command: inquiry)
        let without = try Self.decode(bytes)
        #expect(without.decodedDataIn == nil)
        #expect(withCommand.decodedDataIn == SCSIDataIn.decode(command: inquiry, data: data))
        #expect(withCommand.dataIn == data)
    }

    @Test func protectionDataInIsSplitWhenTheRequestAnnouncesIt() throws {
        let response = CommandResponse(senseLength: 0, status: 0, protectionIn: [0xa0, 0xa1], dataIn: [1, 2, 3])
        let bytes = encoded { response.encode(into: &$0) }
        #expect(bytes == zeros(12 + 96) + [0xa0, 0xa1, 1, 2, 3])
        var r = ByteReader(bytes)
        let back = try CommandResponse(decoding: &r, protectionBytesIn: 2)
        #expect(back == response)
        #expect(back.fields.first(named: "virtio_scsi.pi.data_in")?.value == .bytes([0xa0, 0xa1]))
        #expect(back.summary.hasSuffix(" residual 0 pi-in 2 data-in 3"))
        var cut = ByteReader(zeros(12 + 96) + [0xa0])
        let short = try CommandResponse(decoding: &cut, protectionBytesIn: 8)
        #expect(short.protectionIn == [0xa0])
        #expect(short.dataIn.isEmpty)
        let plain = try Self.decode(bytes)
        #expect(plain.protectionIn.isEmpty)
        #expect(plain.dataIn == [0xa0, 0xa1, 1, 2, 3])
    }

    @Test func negativeSenseSizeIsUnsupportedNotATrap() {
        #expect(decodeError { () throws(DecodeError) in try Self.decode(Self.vector(senseSize: 96), senseSize: -1) }
            == .unsupported("virtio_scsi.sense", at: 12, "sense_size -1"))
    }

    @Test func fieldsAreOneVirtioSCSIGroup() throws {
        let response = try Self.decode(Self.vector(senseSize: 96, dataIn: [1]))
        let top = response.fields
        #expect(top.count == 1)
        #expect(top.first?.name == "virtio_scsi")
        #expect(top.first?.children.map(\.name) == [
            "virtio_scsi.sense_len", "virtio_scsi.residual", "virtio_scsi.status_qualifier", "virtio_scsi.status",
            "virtio_scsi.response", "virtio_scsi.sense", "virtio_scsi.data_in",
        ])
        #expect(top.first(named: "virtio_scsi.sense_len")?.value == .uint(18))
        #expect(top.first(named: "virtio_scsi.residual")?.value == .uint(512))
        #expect(top.first(named: "virtio_scsi.status_qualifier")?.value == .uint(0x0102))
    }
}
