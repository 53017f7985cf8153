import VQWire

// Field names of a decoded CDB (`virtio_scsi.cdb.*`), defined once for the decoder, JSON,
// text and the display filter (DESIGN.md rule 10).

extension SCSICommand {
    public enum Fields {
        public static let serviceAction = FieldDef("virtio_scsi.cdb.service_action", "Service action", .code(bits: 16))
        public static let lba = FieldDef("virtio_scsi.cdb.lba", "Logical block address", .uint(bits: 64))
        public static let transferLength = FieldDef("virtio_scsi.cdb.transfer_length", "Transfer length", .uint(bits: 32))
        public static let allocationLength = FieldDef("virtio_scsi.cdb.allocation_length", "Allocation length", .uint(bits: 32))
        public static let parameterListLength = FieldDef("virtio_scsi.cdb.parameter_list_length", "Parameter list length", .uint(bits: 32))
        public static let additionalLength = FieldDef("virtio_scsi.cdb.additional_length", "Additional CDB length", .uint(bits: 8))
        public static let rdprotect = FieldDef("virtio_scsi.cdb.rdprotect", "RDPROTECT", .uint(bits: 3))
        public static let wrprotect = FieldDef("virtio_scsi.cdb.wrprotect", "WRPROTECT", .uint(bits: 3))
        public static let vrprotect = FieldDef("virtio_scsi.cdb.vrprotect", "VRPROTECT", .uint(bits: 3))
        public static let dpo = FieldDef("virtio_scsi.cdb.dpo", "Disable page out (DPO)", .bool)
        public static let fua = FieldDef("virtio_scsi.cdb.fua", "Force unit access (FUA)", .bool)
        public static let bytchk = FieldDef("virtio_scsi.cdb.bytchk", "Byte check (BYTCHK)", .code(bits: 2))
        public static let anchor = FieldDef("virtio_scsi.cdb.anchor", "ANCHOR", .bool)
        public static let unmap = FieldDef("virtio_scsi.cdb.unmap", "UNMAP", .bool)
        public static let ndob = FieldDef("virtio_scsi.cdb.ndob", "No data-out buffer (NDOB)", .bool)
        public static let immed = FieldDef("virtio_scsi.cdb.immed", "Immediate (IMMED)", .bool)
        public static let groupNumber = FieldDef("virtio_scsi.cdb.group_number", "Group number", .uint(bits: 6))
        public static let control = FieldDef("virtio_scsi.cdb.control", "Control", .uint(bits: 8))
        public static let eilbrt = FieldDef("virtio_scsi.cdb.eilbrt", "Expected initial logical block reference tag", .uint(bits: 32))
        public static let elbat = FieldDef("virtio_scsi.cdb.elbat", "Expected logical block application tag", .uint(bits: 16))
        public static let lbatm = FieldDef("virtio_scsi.cdb.lbatm", "Logical block application tag mask", .uint(bits: 16))
        public static let evpd = FieldDef("virtio_scsi.cdb.evpd", "Enable vital product data (EVPD)", .bool)
        public static let pageCode = FieldDef("virtio_scsi.cdb.page_code", "Page code", .code(bits: 8))
        public static let subpageCode = FieldDef("virtio_scsi.cdb.subpage_code", "Subpage code", .uint(bits: 8))
        public static let pageControl = FieldDef("virtio_scsi.cdb.pc", "Page control (PC)", .code(bits: 2))
        public static let dbd = FieldDef("virtio_scsi.cdb.dbd", "Disable block descriptors (DBD)", .bool)
        public static let llbaa = FieldDef("virtio_scsi.cdb.llbaa", "Long LBA accepted (LLBAA)", .bool)
        public static let pf = FieldDef("virtio_scsi.cdb.pf", "Page format (PF)", .bool)
        public static let sp = FieldDef("virtio_scsi.cdb.sp", "Save pages (SP)", .bool)
        public static let selectReport = FieldDef("virtio_scsi.cdb.select_report", "Select report", .code(bits: 8))
        public static let pmi = FieldDef("virtio_scsi.cdb.pmi", "Partial medium indicator (PMI)", .bool)
        public static let desc = FieldDef("virtio_scsi.cdb.desc", "Descriptor format (DESC)", .bool)
        public static let start = FieldDef("virtio_scsi.cdb.start", "START", .bool)
        public static let loej = FieldDef("virtio_scsi.cdb.loej", "Load/eject (LOEJ)", .bool)
        public static let noFlush = FieldDef("virtio_scsi.cdb.no_flush", "NO_FLUSH", .bool)
        public static let powerCondition = FieldDef("virtio_scsi.cdb.power_condition", "Power condition", .code(bits: 4))
        public static let powerConditionModifier = FieldDef("virtio_scsi.cdb.power_condition_modifier", "Power condition modifier", .uint(bits: 4))
        public static let prevent = FieldDef("virtio_scsi.cdb.prevent", "Prevent", .code(bits: 2))
        public static let reportType = FieldDef("virtio_scsi.cdb.report_type", "Report type", .code(bits: 2))
        public static let scope = FieldDef("virtio_scsi.cdb.scope", "Scope", .code(bits: 4))
        public static let type = FieldDef("virtio_scsi.cdb.type", "Type", .code(bits: 4))
        public static let reportingOptions = FieldDef("virtio_scsi.cdb.reporting_options", "Reporting options", .code(bits: 3))
        public static let rctd = FieldDef("virtio_scsi.cdb.rctd", "Return command timeouts descriptor (RCTD)", .bool)
        public static let requestedOpcode = FieldDef("virtio_scsi.cdb.requested_opcode", "Requested operation code", .code(bits: 8))
        public static let requestedServiceAction = FieldDef("virtio_scsi.cdb.requested_service_action", "Requested service action", .uint(bits: 16))
        public static let raw = FieldDef("virtio_scsi.cdb.bytes", "CDB bytes", .bytes)

        public static let ata = FieldDef("virtio_scsi.cdb.ata", "ATA pass-through", .group)
        public static let ataMultipleCount = FieldDef("virtio_scsi.cdb.ata.multiple_count", "Multiple count", .uint(bits: 3))
        public static let ataProtocol = FieldDef("virtio_scsi.cdb.ata.protocol", "Protocol", .code(bits: 4))
        public static let ataExtend = FieldDef("virtio_scsi.cdb.ata.extend", "EXTEND", .bool)
        public static let ataOffLine = FieldDef("virtio_scsi.cdb.ata.off_line", "OFF_LINE", .uint(bits: 2))
        public static let ataCheckCondition = FieldDef("virtio_scsi.cdb.ata.ck_cond", "CK_COND", .bool)
        public static let ataTransferType = FieldDef("virtio_scsi.cdb.ata.t_type", "T_TYPE", .bool)
        public static let ataTransferDirection = FieldDef("virtio_scsi.cdb.ata.t_dir", "T_DIR", .bool)
        public static let ataByteBlock = FieldDef("virtio_scsi.cdb.ata.byt_blok", "BYT_BLOK", .bool)
        public static let ataTransferLength = FieldDef("virtio_scsi.cdb.ata.t_length", "T_LENGTH", .code(bits: 2))
        public static let ataFeatures = FieldDef("virtio_scsi.cdb.ata.features", "Features", .uint(bits: 16))
        public static let ataCount = FieldDef("virtio_scsi.cdb.ata.count", "Count", .uint(bits: 16))
        public static let ataLBA = FieldDef("virtio_scsi.cdb.ata.lba", "LBA", .uint(bits: 48))
        public static let ataDevice = FieldDef("virtio_scsi.cdb.ata.device", "Device", .uint(bits: 8))
        public static let ataCommand = FieldDef("virtio_scsi.cdb.ata.command", "Command", .code(bits: 8))
    }
}

/// Names of the small code fields of CDBs.
enum CDBNames {
    static func pageControl(_ v: UInt8) -> String {
        ["current values", "changeable values", "default values", "saved values"][Int(v & 3)]
    }

    static func bytchk(_ v: UInt8) -> String {
        ["no data-out, medium verify", "compare data-out", "reserved", "compare one block of data-out"][Int(v & 3)]
    }

    static func prevent(_ v: UInt8) -> String {
        ["allow removal", "prevent removal", "obsolete", "obsolete"][Int(v & 3)]
    }

    static func reportType(_ v: UInt8) -> String {
        ["all LBAs", "LBAs with non-zero provisioning status", "mapped LBAs", "deallocated or anchored LBAs"][Int(v & 3)]
    }

    static func selectReport(_ v: UInt8) -> String {
        switch v {
        case 0x00: return "logical units"
        case 0x01: return "well known logical units"
        case 0x02: return "all logical units"
        case 0x10: return "administrative logical units"
        case 0x11: return "administrative and subsidiary logical units"
        case 0x12: return "subsidiary logical units"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func powerCondition(_ v: UInt8) -> String {
        switch v {
        case 0x0: return "START_VALID"
        case 0x1: return "ACTIVE"
        case 0x2: return "IDLE"
        case 0x3: return "STANDBY"
        case 0x7: return "LU_CONTROL"
        case 0xa: return "FORCE_IDLE_0"
        case 0xb: return "FORCE_STANDBY_0"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func reservationScope(_ v: UInt8) -> String {
        v == 0 ? "LU_SCOPE" : Naming.unknown(UInt64(v))
    }

    static func reservationType(_ v: UInt8) -> String {
        switch v {
        case 0x0: return "none"
        case 0x1: return "Write Exclusive"
        case 0x3: return "Exclusive Access"
        case 0x5: return "Write Exclusive - Registrants Only"
        case 0x6: return "Exclusive Access - Registrants Only"
        case 0x7: return "Write Exclusive - All Registrants"
        case 0x8: return "Exclusive Access - All Registrants"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func reportingOptions(_ v: UInt8) -> String {
        switch v {
        case 0: return "all commands"
        case 1: return "one command, no service action"
        case 2: return "one command with service action"
        case 3: return "one command, service action optional"
        default: return Naming.unknown(UInt64(v))
        }
    }

    /// VPD pages (SPC-4 7.8, SBC-3 6.6).
    static func vpdPage(_ v: UInt8) -> String {
        switch v {
        case 0x00: return "Supported VPD pages"
        case 0x80: return "Unit serial number"
        case 0x83: return "Device identification"
        case 0x84: return "Software interface identification"
        case 0x85: return "Management network addresses"
        case 0x86: return "Extended INQUIRY data"
        case 0x87: return "Mode page policy"
        case 0x88: return "SCSI ports"
        case 0x89: return "ATA information"
        case 0x8a: return "Power condition"
        case 0x8b: return "Device constituents"
        case 0x8f: return "Third-party copy"
        case 0xb0: return "Block limits"
        case 0xb1: return "Block device characteristics"
        case 0xb2: return "Logical block provisioning"
        case 0xb3: return "Referrals"
        case 0xb6: return "Zoned block device characteristics"
        default: return Naming.unknown(UInt64(v))
        }
    }

    /// Mode pages (SPC-4 7.5, SBC-3 6.4).
    static func modePage(_ v: UInt8) -> String {
        switch v {
        case 0x00: return "Vendor specific (no page format)"
        case 0x01: return "Read-write error recovery"
        case 0x02: return "Disconnect-reconnect"
        case 0x03: return "Format device"
        case 0x04: return "Rigid disk geometry"
        case 0x07: return "Verify error recovery"
        case 0x08: return "Caching"
        case 0x0a: return "Control"
        case 0x18: return "Protocol specific logical unit"
        case 0x19: return "Protocol specific port"
        case 0x1a: return "Power condition"
        case 0x1c: return "Informational exceptions control"
        case 0x3f: return "All pages"
        default: return Naming.unknown(UInt64(v))
        }
    }

    /// SAT-3 12.2.2 PROTOCOL field.
    static func ataProtocol(_ v: UInt8) -> String {
        switch v {
        case 0: return "ATA hardware reset"
        case 1: return "software reset"
        case 3: return "non-data"
        case 4: return "PIO data-in"
        case 5: return "PIO data-out"
        case 6: return "DMA"
        case 7: return "DMA queued"
        case 8: return "execute device diagnostic"
        case 9: return "non-data reset"
        case 10: return "UDMA data-in"
        case 11: return "UDMA data-out"
        case 12: return "NCQ (FPDMA)"
        case 15: return "return response information"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func ataTransferLength(_ v: UInt8) -> String {
        ["no data", "in FEATURES", "in COUNT", "in TPSIU"][Int(v & 3)]
    }

    /// The ATA commands a pass-through usually carries (ACS-3).
    static func ataCommand(_ v: UInt8) -> String {
        switch v {
        case 0x06: return "DATA SET MANAGEMENT"
        case 0x20: return "READ SECTOR(S)"
        case 0x24: return "READ SECTOR(S) EXT"
        case 0x25: return "READ DMA EXT"
        case 0x2f: return "READ LOG EXT"
        case 0x30: return "WRITE SECTOR(S)"
        case 0x34: return "WRITE SECTOR(S) EXT"
        case 0x35: return "WRITE DMA EXT"
        case 0x3f: return "WRITE LOG EXT"
        case 0x47: return "READ LOG DMA EXT"
        case 0x57: return "WRITE LOG DMA EXT"
        case 0x60: return "READ FPDMA QUEUED"
        case 0x61: return "WRITE FPDMA QUEUED"
        case 0xa1: return "IDENTIFY PACKET DEVICE"
        case 0xb0: return "SMART"
        case 0xc8: return "READ DMA"
        case 0xca: return "WRITE DMA"
        case 0xe0: return "STANDBY IMMEDIATE"
        case 0xe1: return "IDLE IMMEDIATE"
        case 0xe5: return "CHECK POWER MODE"
        case 0xe7: return "FLUSH CACHE"
        case 0xea: return "FLUSH CACHE EXT"
        case 0xec: return "IDENTIFY DEVICE"
        case 0xef: return "SET FEATURES"
        case 0xf1: return "SECURITY SET PASSWORD"
        case 0xf5: return "SECURITY FREEZE LOCK"
        default: return Naming.unknown(UInt64(v))
        }
    }
}
