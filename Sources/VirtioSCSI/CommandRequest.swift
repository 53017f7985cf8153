import VQWire

// Appendix H, "Device Operation: request queues", struct virtio_scsi_req_cmd, read-only part;
// with VIRTIO_SCSI_F_T10_PI the layout of Linux's struct virtio_scsi_cmd_req_pi, which puts
// pi_bytesout/pi_bytesin before the cdb (the spec text lists them after it; virtio-facts.md).
//
//   0          8          16   17   18   19             19+cdb_size
//   +----------+----------+----+----+----+---------------+-----------
//   | lun[8]   | id (le64)|attr|prio|crn | cdb[cdb_size] | data-out ...
//   +----------+----------+----+----+----+---------------+-----------
//
//   with T10 PI (pi_out, pi_bytesout bytes of protection data, precedes data-out):
//   0          8          16   17   18   19            23           27              27+cdb_size
//   +----------+----------+----+----+----+-------------+------------+---------------+-----------------
//   | lun[8]   | id (le64)|attr|prio|crn | pi_bytesout | pi_bytesin | cdb[cdb_size] | pi_out, data-out
//   |          |          |    |    |    | (le32)      | (le32)     |               |
//   +----------+----------+----+----+----+-------------+------------+---------------+-----------------
//
// cdb_size comes from the device configuration (default 32; DESIGN.md rule 5). A CDB that
// does not decode is shown raw with the error; the rest of the request still decodes.

public struct CommandRequest: FieldDescribable, Sendable, Equatable {
    public static let idField = FieldDef("virtio_scsi.id", "Tag", .hex64)
    public static let taskAttributeField = FieldDef("virtio_scsi.task_attr", "Task attribute", .code(bits: 8))
    public static let prioField = FieldDef("virtio_scsi.prio", "Priority", .uint(bits: 8))
    public static let crnField = FieldDef("virtio_scsi.crn", "CRN", .uint(bits: 8))
    public static let piBytesOutField = FieldDef("virtio_scsi.pi.bytes_out", "PI bytes out", .uint(bits: 32))
    public static let piBytesInField = FieldDef("virtio_scsi.pi.bytes_in", "PI bytes in", .uint(bits: 32))
    public static let piDataOutField = FieldDef("virtio_scsi.pi.data_out", "Protection data out", .bytes)
    public static let cdbRawField = FieldDef("virtio_scsi.cdb.raw", "CDB bytes", .bytes)
    public static let cdbErrorField = FieldDef("virtio_scsi.cdb.error", "CDB error", .string)
    public static let dataOutGroup = FieldDef("virtio_scsi.data_out", "Data out", .group)
    public static let dataOutLengthField = FieldDef("virtio_scsi.data_out.length", "Length", .uint(bits: 32))
    public static let dataOutBytesField = FieldDef("virtio_scsi.data_out.bytes", "Bytes", .bytes)

    public static let allFields = [
        idField, taskAttributeField, prioField, crnField, piBytesOutField, piBytesInField, piDataOutField,
        cdbRawField, cdbErrorField, dataOutGroup, dataOutLengthField, dataOutBytesField,
    ]

    /// Bytes before the cdb.
    public static func headerSize(t10PI: Bool) -> Int { t10PI ? 27 : 19 }

    /// `pi_bytesout` and `pi_bytesin` (VIRTIO_SCSI_F_T10_PI).
    public struct ProtectionInfo: Sendable, Hashable {
        public var bytesOut: UInt32
        public var bytesIn: UInt32
        public init(bytesOut: UInt32, bytesIn: UInt32) { self.bytesOut = bytesOut; self.bytesIn = bytesIn }
    }

    public let lun: VirtioSCSILUN
    public let id: UInt64
    public let taskAttribute: TaskAttribute
    public let priority: UInt8
    public let crn: UInt8
    public let protectionInfo: ProtectionInfo?
    /// The whole `cdb[cdb_size]` field, padding included.
    public let cdb: [UInt8]
    /// The decoded CDB, or why it did not decode.
    public let command: Result<SCSICommand, DecodeError>
    /// With T10 PI, the protection data before data-out: pi_bytesout bytes, or as many of
    /// them as were captured. Empty without T10 PI.
    public let protectionOut: [UInt8]
    /// Everything after the cdb field and the protection data.
    public let dataOut: [UInt8]

    /// `cdb` is padded with zeros (or cut) to `cdbSize`. `protectionOut` needs `protectionInfo`.
    public init(lun: VirtioSCSILUN, id: UInt64, taskAttribute: TaskAttribute = .simple, priority: UInt8 = 0,
                crn: UInt8 = 0, protectionInfo: ProtectionInfo? = nil, cdb: [UInt8],
                cdbSize: Int = VirtioSCSI.defaultCDBSize, protectionOut: [UInt8] = [], dataOut: [UInt8] = []) {
        precondition(cdbSize >= 0, "cdb_size cannot be negative")
        precondition(protectionInfo != nil || protectionOut.isEmpty, "protection data needs T10 PI")
        var padded = ByteWriter(capacity: cdbSize)
        padded.writeBytes(cdb, paddedTo: cdbSize)
        self.init(lun: lun, id: id, taskAttribute: taskAttribute, priority: priority, crn: crn,
                  protectionInfo: protectionInfo, paddedCDB: padded.bytes,
                  cdbOffset: Self.headerSize(t10PI: protectionInfo != nil), protectionOut: protectionOut,
                  dataOut: dataOut)
    }

    private init(lun: VirtioSCSILUN, id: UInt64, taskAttribute: TaskAttribute, priority: UInt8, crn: UInt8,
                 protectionInfo: ProtectionInfo?, paddedCDB: [UInt8], cdbOffset: Int, protectionOut: [UInt8],
                 dataOut: [UInt8]) {
        self.lun = lun
        self.id = id
        self.taskAttribute = taskAttribute
        self.priority = priority
        self.crn = crn
        self.protectionInfo = protectionInfo
        self.cdb = paddedCDB
        do {
            command = .success(try SCSICommand(decoding: paddedCDB, baseOffset: cdbOffset))
        } catch {
            command = .failure(error)
        }
        self.protectionOut = protectionOut
        self.dataOut = dataOut
    }

    /// Decodes the request header and takes the rest of the reader as data-out.
    public init(decoding r: inout ByteReader, cdbSize: Int = VirtioSCSI.defaultCDBSize,
                t10PI: Bool = false) throws(DecodeError) {
        let lun = try VirtioSCSILUN(decoding: &r)
        let id = try r.readLE64(Self.idField.name)
        let attr = TaskAttribute(rawValue: try r.readU8(Self.taskAttributeField.name))
        let prio = try r.readU8(Self.prioField.name)
        let crn = try r.readU8(Self.crnField.name)
        var pi: ProtectionInfo?
        if t10PI {
            let out = try r.readLE32(Self.piBytesOutField.name)
            pi = ProtectionInfo(bytesOut: out, bytesIn: try r.readLE32(Self.piBytesInField.name))
        }
        let cdbOffset = r.offset
        guard cdbSize >= 0 else {
            throw .unsupported(SCSICommand.group.name, at: cdbOffset, "cdb_size \(cdbSize)")
        }
        let cdb = try r.readBytes(cdbSize, SCSICommand.group.name)
        var protectionOut: [UInt8] = []
        if let pi {
            // A capture cut by snaplen may hold fewer protection bytes than announced.
            let count = Int(min(UInt64(pi.bytesOut), UInt64(r.remaining)))
            protectionOut = try r.readBytes(count, Self.piDataOutField.name)
        }
        self.init(lun: lun, id: id, taskAttribute: attr, priority: prio, crn: crn, protectionInfo: pi,
                  paddedCDB: cdb, cdbOffset: cdbOffset, protectionOut: protectionOut, dataOut: r.readRest())
    }

    public func encode(into w: inout ByteWriter) {
        lun.encode(into: &w)
        w.writeLE64(id)
        w.writeU8(taskAttribute.rawValue)
        w.writeU8(priority)
        w.writeU8(crn)
        if let protectionInfo {
            w.writeLE32(protectionInfo.bytesOut)
            w.writeLE32(protectionInfo.bytesIn)
        }
        w.writeBytes(cdb)
        w.writeBytes(protectionOut)
        w.writeBytes(dataOut)
    }

    /// The size of the cdb field this request was decoded with.
    public var cdbSize: Int { cdb.count }

    /// `cmd-req 0:5 tag 0x00000000deadbeef simple Read(10) lba 2048 len 8 data-out 4096`.
    public var summary: String {
        var s = "cmd-req \(lun.summary) tag \(Hex.u64(id)) \(taskAttribute.name.lowercased())"
        if priority != 0 { s += " prio \(priority)" }
        if crn != 0 { s += " crn \(crn)" }
        switch command {
        case let .success(c): s += " " + c.summary
        case .failure: s += " bad-cdb"
        }
        if let protectionInfo { s += " pi out \(protectionInfo.bytesOut) in \(protectionInfo.bytesIn)" }
        if !dataOut.isEmpty { s += " data-out \(dataOut.count)" }
        return s
    }

    public var fields: [Field] {
        var list = FieldList()
        list.add(lun.field)
        list.add(Self.idField, .hex(id))
        list.add(Self.taskAttributeField, .code(UInt64(taskAttribute.rawValue), name: taskAttribute.name))
        list.add(Self.prioField, .uint(UInt64(priority)))
        list.add(Self.crnField, .uint(UInt64(crn)))
        if let protectionInfo {
            list.add(Self.piBytesOutField, .uint(UInt64(protectionInfo.bytesOut)))
            list.add(Self.piBytesInField, .uint(UInt64(protectionInfo.bytesIn)))
        }
        if !protectionOut.isEmpty { list.add(Self.piDataOutField, .bytes(protectionOut)) }
        switch command {
        case let .success(c):
            list.add(contentsOf: c.fields)
        case let .failure(error):
            list.group(SCSICommand.group, display: "undecodable") { g in
                g.add(Self.cdbRawField, .bytes(cdb))
                g.add(Self.cdbErrorField, .string(error.description))
            }
        }
        if !dataOut.isEmpty {
            list.group(Self.dataOutGroup, display: "\(dataOut.count) bytes") { g in
                g.add(Self.dataOutLengthField, .uint(UInt64(dataOut.count)))
                g.add(Self.dataOutBytesField, .bytes(dataOut))
            }
        }
        return [Field(group: VirtioSCSI.protocolField, list.fields)]
    }
}
