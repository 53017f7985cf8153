import VQWire

// Appendix H, "Device Operation: request queues", struct virtio_scsi_req_cmd, write-only part.
//
//   0            4           8          10     11       12                12+sense_size
//   +------------+-----------+----------+------+--------+-----------------+-----------
//   | sense_len  | residual  | status_  |status|response| sense[sense_size]| data-in ...
//   | (le32)     | (le32)    | qualifier|      |        |                 |
//   +------------+-----------+----------+------+--------+-----------------+-----------
//   With T10 PI, data-in starts with pi_bytesin bytes of protection data (pi_in); the count
//   is in the request, so the caller passes it.
//
// sense_size comes from the device configuration (default 96; DESIGN.md rule 5). Only the
// first min(sense_len, sense_size) bytes are sense data; a sense_len beyond sense_size is a
// device bug that is flagged in a field, not an error. With the command known, data-in is
// decoded by the SCSI layer (INQUIRY, READ CAPACITY, REPORT LUNS).

public struct CommandResponse: FieldDescribable, Sendable, Equatable {
    public static let headerSize = 12

    public static let senseLenField = FieldDef("virtio_scsi.sense_len", "Sense length", .uint(bits: 32))
    public static let residualField = FieldDef("virtio_scsi.residual", "Residual", .uint(bits: 32))
    public static let statusQualifierField = FieldDef("virtio_scsi.status_qualifier", "Status qualifier", .uint(bits: 16))
    public static let statusField = FieldDef("virtio_scsi.status", "Status", .code(bits: 8))
    public static let responseField = FieldDef("virtio_scsi.response", "Response", .code(bits: 8))
    public static let senseLenExceedsField = FieldDef("virtio_scsi.sense_len_exceeds", "Sense length exceeds sense_size", .string)
    public static let senseRawField = FieldDef("virtio_scsi.sense.raw", "Sense bytes", .bytes)
    public static let senseErrorField = FieldDef("virtio_scsi.sense.error", "Sense error", .string)
    public static let piDataInField = FieldDef("virtio_scsi.pi.data_in", "Protection data in", .bytes)
    public static let dataInGroup = FieldDef("virtio_scsi.data_in", "Data in", .group)
    public static let dataInLengthField = FieldDef("virtio_scsi.data_in.length", "Length", .uint(bits: 32))
    public static let dataInBytesField = FieldDef("virtio_scsi.data_in.bytes", "Bytes", .bytes)

    public static let allFields = [
        senseLenField, residualField, statusQualifierField, statusField, responseField, senseLenExceedsField,
        senseRawField, senseErrorField, piDataInField, dataInGroup, dataInLengthField, dataInBytesField,
    ]

    public let senseLength: UInt32
    public let residual: UInt32
    public let statusQualifier: UInt16
    /// SAM status (`GOOD`, `CHECK CONDITION`, ...).
    public let status: UInt8
    public let response: VirtioSCSIResponse
    /// The whole `sense[sense_size]` field, padding included.
    public let senseBuffer: [UInt8]
    /// With T10 PI, the protection data before data-in (as many of pi_bytesin bytes as
    /// were captured).
    public let protectionIn: [UInt8]
    public let dataIn: [UInt8]
    /// The decoded sense data (the first min(sense_len, sense_size) bytes), or why it did
    /// not decode; nil when sense_len is 0.
    public let sense: Result<SenseData, DecodeError>?
    /// Data-in decoded for the command it answers, when that command is known and the SCSI
    /// layer decodes its data.
    public let decodedDataIn: Field?

    /// `sense` is padded with zeros (or cut) to `senseSize`.
    public init(senseLength: UInt32, residual: UInt32 = 0, statusQualifier: UInt16 = 0, status: UInt8,
                response: VirtioSCSIResponse = .ok, sense: [UInt8] = [],
                senseSize: Int = VirtioSCSI.defaultSenseSize, protectionIn: [UInt8] = [], dataIn: [UInt8] = [],
                command: SCSICommand? = nil) {
        precondition(senseSize >= 0, "sense_size cannot be negative")
        var padded = ByteWriter(capacity: senseSize)
        padded.writeBytes(sense, paddedTo: senseSize)
        self.init(senseLength: senseLength, residual: residual, statusQualifier: statusQualifier, status: status,
                  response: response, senseBuffer: padded.bytes, protectionIn: protectionIn, dataIn: dataIn,
                  command: command)
    }

    private init(senseLength: UInt32, residual: UInt32, statusQualifier: UInt16, status: UInt8,
                 response: VirtioSCSIResponse, senseBuffer: [UInt8], protectionIn: [UInt8], dataIn: [UInt8],
                 command: SCSICommand?) {
        self.senseLength = senseLength
        self.residual = residual
        self.statusQualifier = statusQualifier
        self.status = status
        self.response = response
        self.senseBuffer = senseBuffer
        self.protectionIn = protectionIn
        self.dataIn = dataIn
        // Compare in UInt64: sense_len is a device-written u32.
        let used = Int(min(UInt64(senseLength), UInt64(senseBuffer.count)))
        if used == 0 {
            sense = nil
        } else {
            do {
                sense = .success(try SenseData(decoding: Array(senseBuffer[0..<used]), baseOffset: Self.headerSize))
            } catch {
                sense = .failure(error)
            }
        }
        if let command, !dataIn.isEmpty {
            decodedDataIn = SCSIDataIn.decode(command: command, data: dataIn)
        } else {
            decodedDataIn = nil
        }
    }

    /// Decodes the response header and sense, and takes the rest of the reader as data-in.
    /// `command`, the CDB of the matching request, lets the SCSI layer decode data-in;
    /// `protectionBytesIn`, the request's pi_bytesin, splits the protection data off.
    public init(decoding r: inout ByteReader, senseSize: Int = VirtioSCSI.defaultSenseSize,
                command: SCSICommand? = nil, protectionBytesIn: UInt32 = 0) throws(DecodeError) {
        let senseLength = try r.readLE32(Self.senseLenField.name)
        let residual = try r.readLE32(Self.residualField.name)
        let qualifier = try r.readLE16(Self.statusQualifierField.name)
        let status = try r.readU8(Self.statusField.name)
        let response = VirtioSCSIResponse(rawValue: try r.readU8(Self.responseField.name))
        guard senseSize >= 0 else {
            throw .unsupported(SenseData.group.name, at: r.offset, "sense_size \(senseSize)")
        }
        let sense = try r.readBytes(senseSize, SenseData.group.name)
        let protectionCount = Int(min(UInt64(protectionBytesIn), UInt64(r.remaining)))
        let protectionIn = try r.readBytes(protectionCount, Self.piDataInField.name)
        self.init(senseLength: senseLength, residual: residual, statusQualifier: qualifier, status: status,
                  response: response, senseBuffer: sense, protectionIn: protectionIn, dataIn: r.readRest(),
                  command: command)
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(senseLength)
        w.writeLE32(residual)
        w.writeLE16(statusQualifier)
        w.writeU8(status)
        w.writeU8(response.rawValue)
        w.writeBytes(senseBuffer)
        w.writeBytes(protectionIn)
        w.writeBytes(dataIn)
    }

    public var senseSize: Int { senseBuffer.count }

    /// True when the device claims more sense bytes than the buffer holds.
    public var senseLengthExceedsSize: Bool { UInt64(senseLength) > UInt64(senseBuffer.count) }

    /// `cmd-resp OK GOOD residual 0 data-in 4096`,
    /// `cmd-resp OK CHECK CONDITION sense UNIT ATTENTION ... residual 0`, `cmd-resp RESET`.
    public var summary: String {
        var s = "cmd-resp \(response.name(in: .command))"
        if response == .ok || status != 0 { s += " " + SAMStatus.name(status) }
        switch sense {
        case let .success(data)?: s += " sense " + data.summary
        case .failure?: s += " bad-sense"
        case nil: break
        }
        if senseLengthExceedsSize { s += " sense_len \(senseLength)>\(senseBuffer.count)" }
        s += " residual \(residual)"
        if !protectionIn.isEmpty { s += " pi-in \(protectionIn.count)" }
        if !dataIn.isEmpty { s += " data-in \(dataIn.count)" }
        return s
    }

    public var fields: [Field] {
        var list = FieldList()
        list.add(Self.senseLenField, .uint(UInt64(senseLength)))
        list.add(Self.residualField, .uint(UInt64(residual)))
        list.add(Self.statusQualifierField, .uint(UInt64(statusQualifier)))
        list.add(Self.statusField, .code(UInt64(status), name: SAMStatus.name(status)))
        list.add(Self.responseField, .code(UInt64(response.rawValue), name: response.name(in: .command)))
        if senseLengthExceedsSize {
            list.add(Self.senseLenExceedsField, .string("sense_len \(senseLength) exceeds sense_size \(senseBuffer.count)"))
        }
        switch sense {
        case let .success(data)?:
            list.add(contentsOf: data.fields)
        case let .failure(error)?:
            let used = Int(min(UInt64(senseLength), UInt64(senseBuffer.count)))
            list.group(SenseData.group, display: "undecodable") { g in
                g.add(Self.senseRawField, .bytes(Array(senseBuffer[0..<used])))
                g.add(Self.senseErrorField, .string(error.description))
            }
        case nil:
            break
        }
        if !protectionIn.isEmpty { list.add(Self.piDataInField, .bytes(protectionIn)) }
        if !dataIn.isEmpty {
            list.group(Self.dataInGroup, display: "\(dataIn.count) bytes") { g in
                g.add(Self.dataInLengthField, .uint(UInt64(dataIn.count)))
                g.add(Self.dataInBytesField, .bytes(dataIn))
            }
        }
        if let decodedDataIn { list.add(decodedDataIn) }
        return [Field(group: VirtioSCSI.protocolField, list.fields)]
    }
}
