// The SCSI side of the simulator: codes, names, and the data-in a disk returns (SPC-4 / SBC-3).
// The byte builders here are the small internal interface the device answers through; they
// build cold responses (INQUIRY, VPD, capacity, REPORT LUNS, MODE SENSE, sense). The hot
// path (READ/WRITE) never calls them.

enum SCSIOp {
    static let testUnitReady: UInt8 = 0x00
    static let requestSense: UInt8 = 0x03
    static let read6: UInt8 = 0x08
    static let write6: UInt8 = 0x0a
    static let inquiry: UInt8 = 0x12
    static let modeSense6: UInt8 = 0x1a
    static let startStopUnit: UInt8 = 0x1b
    static let readCapacity10: UInt8 = 0x25
    static let read10: UInt8 = 0x28
    static let write10: UInt8 = 0x2a
    static let verify10: UInt8 = 0x2f
    static let synchronizeCache10: UInt8 = 0x35
    static let unmap: UInt8 = 0x42
    static let modeSense10: UInt8 = 0x5a
    static let read16: UInt8 = 0x88
    static let write16: UInt8 = 0x8a
    static let verify16: UInt8 = 0x8f
    static let synchronizeCache16: UInt8 = 0x91
    static let serviceActionIn16: UInt8 = 0x9e
    static let reportLuns: UInt8 = 0xa0
    static let maintenanceIn: UInt8 = 0xa3
    static let readCapacity16SA: UInt8 = 0x10

    /// Names as in shared/scsi/opcodes.tsv, for the ground truth.
    static func name(_ opcode: UInt8, serviceAction: UInt8 = 0) -> String {
        switch opcode {
        case 0x00: return "Test Unit Ready"
        case 0x03: return "Request Sense"
        case 0x08: return "Read(6)"
        case 0x0a: return "Write(6)"
        case 0x12: return "Inquiry"
        case 0x1a: return "Mode sense(6)"
        case 0x1b: return "Start stop unit"
        case 0x25: return "Read capacity(10)"
        case 0x28: return "Read(10)"
        case 0x2a: return "Write(10)"
        case 0x2f: return "Verify(10)"
        case 0x35: return "Synchronize cache(10)"
        case 0x42: return "Unmap"
        case 0x5a: return "Mode sense(10)"
        case 0x88: return "Read(16)"
        case 0x8a: return "Write(16)"
        case 0x8f: return "Verify(16)"
        case 0x91: return "Synchronize cache(16)"
        case 0x9e: return serviceAction == 0x10 ? "Read capacity(16)" : "Service action in(16)"
        case 0xa0: return "Report luns"
        case 0xa3: return serviceAction == 0x0c ? "Report supported operation codes" : "Maintenance in"
        default: return "unknown(0x" + String(opcode, radix: 16) + ")"
        }
    }
}

/// virtio-scsi response codes (request queues and controlq) and SAM status.
enum VSResponse {
    static let ok: UInt8 = 0
    static let overrun: UInt8 = 1
    static let aborted: UInt8 = 2
    static let badTarget: UInt8 = 3
    static let reset: UInt8 = 4
    static let busy: UInt8 = 5
    static let transportFailure: UInt8 = 6
    static let targetFailure: UInt8 = 7
    static let nexusFailure: UInt8 = 8
    static let failure: UInt8 = 9
    static let functionSucceeded: UInt8 = 10
    static let functionRejected: UInt8 = 11
    static let incorrectLUN: UInt8 = 12

    static func name(_ r: UInt8, control: Bool = false) -> String {
        switch r {
        case 0: return control ? "FUNCTION_COMPLETE" : "OK"
        case 1: return "OVERRUN"
        case 2: return "ABORTED"
        case 3: return "BAD_TARGET"
        case 4: return "RESET"
        case 5: return "BUSY"
        case 6: return "TRANSPORT_FAILURE"
        case 7: return "TARGET_FAILURE"
        case 8: return "NEXUS_FAILURE"
        case 9: return "FAILURE"
        case 10: return "FUNCTION_SUCCEEDED"
        case 11: return "FUNCTION_REJECTED"
        case 12: return "INCORRECT_LUN"
        default: return "unknown(0x" + String(r, radix: 16) + ")"
        }
    }
}

enum SAM {
    static let good: UInt8 = 0x00
    static let checkCondition: UInt8 = 0x02

    static func statusName(_ s: UInt8) -> String {
        switch s {
        case 0x00: return "GOOD"
        case 0x02: return "CHECK CONDITION"
        case 0x04: return "CONDITION MET"
        case 0x08: return "BUSY"
        case 0x18: return "RESERVATION CONFLICT"
        case 0x28: return "TASK SET FULL"
        case 0x30: return "ACA ACTIVE"
        case 0x40: return "TASK ABORTED"
        default: return "unknown(0x" + String(s, radix: 16) + ")"
        }
    }
}

/// Sense key + ASC/ASCQ, the condition a disk reports.
struct SenseCode: Equatable, Sendable {
    var key: UInt8
    var asc: UInt8
    var ascq: UInt8

    static let none = SenseCode(key: 0, asc: 0, ascq: 0)
    static let invalidOpcode = SenseCode(key: 5, asc: 0x20, ascq: 0)
    static let lbaOutOfRange = SenseCode(key: 5, asc: 0x21, ascq: 0)
    static let invalidFieldInCDB = SenseCode(key: 5, asc: 0x24, ascq: 0)
    static let lunNotSupported = SenseCode(key: 5, asc: 0x25, ascq: 0)
    static let powerOnReset = SenseCode(key: 6, asc: 0x29, ascq: 0)
    static let itNexusLoss = SenseCode(key: 6, asc: 0x29, ascq: 0x07)
    static let capacityChanged = SenseCode(key: 6, asc: 0x2a, ascq: 0x09)
    static let reportedLunsChanged = SenseCode(key: 6, asc: 0x3f, ascq: 0x0e)
    static let parameterListLength = SenseCode(key: 5, asc: 0x1a, ascq: 0)
}

/// TMF subtypes, event types and reasons (virtio-scsi-0.9.4.md).
enum VSControl {
    static let typeTMF: UInt32 = 0
    static let typeANQuery: UInt32 = 1
    static let typeANSubscribe: UInt32 = 2

    static let abortTask: UInt32 = 0
    static let abortTaskSet: UInt32 = 1
    static let clearACA: UInt32 = 2
    static let clearTaskSet: UInt32 = 3
    static let itNexusReset: UInt32 = 4
    static let logicalUnitReset: UInt32 = 5
    static let queryTask: UInt32 = 6
    static let queryTaskSet: UInt32 = 7

    static func typeName(_ t: UInt32) -> String {
        switch t {
        case 0: return "TMF"
        case 1: return "AN_QUERY"
        case 2: return "AN_SUBSCRIBE"
        default: return "unknown(0x" + String(t, radix: 16) + ")"
        }
    }

    static func subtypeName(_ s: UInt32) -> String {
        switch s {
        case 0: return "ABORT_TASK"
        case 1: return "ABORT_TASK_SET"
        case 2: return "CLEAR_ACA"
        case 3: return "CLEAR_TASK_SET"
        case 4: return "I_T_NEXUS_RESET"
        case 5: return "LOGICAL_UNIT_RESET"
        case 6: return "QUERY_TASK"
        case 7: return "QUERY_TASK_SET"
        default: return "unknown(0x" + String(s, radix: 16) + ")"
        }
    }

    static let eventNoEvent: UInt32 = 0
    static let eventTransportReset: UInt32 = 1
    static let eventAsyncNotify: UInt32 = 2
    static let eventParamChange: UInt32 = 3
    static let eventsMissed: UInt32 = 0x8000_0000

    static let reasonHard: UInt32 = 0
    static let reasonRescan: UInt32 = 1
    static let reasonRemoved: UInt32 = 2

    static func eventName(_ e: UInt32) -> String {
        let base: String
        switch e & 0x7fff_ffff {
        case 0: base = "NO_EVENT"
        case 1: base = "TRANSPORT_RESET"
        case 2: base = "ASYNC_NOTIFY"
        case 3: base = "PARAM_CHANGE"
        default: base = "unknown(0x" + String(e & 0x7fff_ffff, radix: 16) + ")"
        }
        return e & eventsMissed != 0 ? base + "|EVENTS_MISSED" : base
    }

    static func resetReasonName(_ r: UInt32) -> String {
        switch r {
        case 0: return "HARD"
        case 1: return "RESCAN"
        case 2: return "REMOVED"
        default: return "unknown(0x" + String(r, radix: 16) + ")"
        }
    }
}

/// The 8-byte LUN field: `01 target (0x40|lun>>8) lun 00 00 00 00` (flat addressing when lun >= 256).
enum SimLUN {
    static func encode(target: UInt8, lun: UInt16) -> UInt64 {
        var b: [UInt8] = [1, target, 0, 0, 0, 0, 0, 0]
        if lun >= 256 { b[2] = 0x40 | UInt8((lun >> 8) & 0x3f); b[3] = UInt8(lun & 0xff) } else { b[3] = UInt8(lun) }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[i]) << (8 * UInt64(i)) }
        return v
    }

    /// (target, lun) from the raw little-endian load of the 8 bytes, or nil if not `01 t ..`.
    static func decode(_ raw: UInt64) -> (target: UInt8, lun: UInt16)? {
        guard raw & 0xff == 1 else { return nil }
        let target = UInt8((raw >> 8) & 0xff)
        let lun = UInt16((raw >> 16) & 0x3f) << 8 | UInt16((raw >> 24) & 0xff)
        return (target, lun)
    }

    /// The REPORT LUNS well-known LUN, `C1 01 00 ...`.
    static let reportLunsWellKnown: UInt64 = 0x01c1
}

/// Data-in builders for a RAM-backed disk (direct-access block device, 512-byte blocks).
enum SimSCSIData {
    static let vendor = "VQTAP   "
    static let product = "SIM DISK        "
    static let revision = "0.1 "

    static func inquiryStandard(removable: Bool = false) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 36)
        d[0] = 0x00 // peripheral qualifier 0, device type 0 (disk)
        d[1] = removable ? 0x80 : 0
        d[2] = 0x06 // SPC-4
        d[3] = 0x02 // response data format 2
        d[4] = 31 // additional length
        d[7] = 0x02 // CMDQUE
        put(&d, 8, vendor); put(&d, 16, product); put(&d, 32, revision)
        return d
    }

    /// VPD pages 0x00, 0x80, 0x83, 0xb0, 0xb1; nil for any other page.
    static func inquiryVPD(page: UInt8, target: UInt8, lun: UInt16, capacityBlocks: UInt64) -> [UInt8]? {
        switch page {
        case 0x00:
            return [0, 0x00, 0, 5, 0x00, 0x80, 0x83, 0xb0, 0xb1]
        case 0x80:
            let serial = Array("VQSIM-\(target)-\(lun)".utf8)
            return [0, 0x80, 0, UInt8(serial.count)] + serial
        case 0x83:
            // One NAA 6 (registered extended) designator, binary, associated with the LU.
            var naa: [UInt8] = [0x60, 0x01, 0x40, 0x5f, 0x00, 0x00, 0x00, 0x00]
            naa += [target, UInt8(lun >> 8), UInt8(lun & 0xff), 0, 0, 0, 0, 1]
            let desc: [UInt8] = [0x01, 0x03, 0x00, UInt8(naa.count)] + naa
            return [0, 0x83, 0, UInt8(desc.count)] + desc
        case 0xb0:
            // Block limits: max transfer 2048 blocks (1 MiB), optimal 8 blocks, UNMAP limits.
            var d = [UInt8](repeating: 0, count: 64)
            d[1] = 0xb0; d[3] = 0x3c
            be32(&d, 8, 2048); be32(&d, 12, 8)
            be32(&d, 20, 0xffff_ffff); be32(&d, 24, 16)
            return d
        case 0xb1:
            // Block device characteristics: non-rotating medium.
            var d = [UInt8](repeating: 0, count: 64)
            d[1] = 0xb1; d[3] = 0x3c; d[5] = 1
            return d
        default:
            return nil
        }
    }

    static func readCapacity10(blocks: UInt64) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8)
        let last = blocks == 0 ? 0 : blocks - 1
        be32(&d, 0, last > 0xffff_ffff ? 0xffff_ffff : UInt32(last))
        be32(&d, 4, 512)
        return d
    }

    static func readCapacity16(blocks: UInt64) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 32)
        let last = blocks == 0 ? 0 : blocks - 1
        for i in 0..<8 { d[i] = UInt8((last >> (56 - 8 * UInt64(i))) & 0xff) }
        be32(&d, 8, 512)
        d[14] = 0x80 // LBPME: thin provisioning (UNMAP works)
        return d
    }

    static func reportLuns(_ luns: [UInt16]) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8)
        be32(&d, 0, UInt32(luns.count * 8))
        for l in luns {
            if l >= 256 { d += [0x40 | UInt8((l >> 8) & 0x3f), UInt8(l & 0xff), 0, 0, 0, 0, 0, 0] } else { d += [0, UInt8(l), 0, 0, 0, 0, 0, 0] }
        }
        return d
    }

    /// MODE SENSE: header + caching page (0x08) when asked for page 0x08 or 0x3f.
    static func modeSense(ten: Bool, page: UInt8) -> [UInt8]? {
        guard page == 0x08 || page == 0x3f else { return nil }
        let caching: [UInt8] = [0x08, 0x12, 0x04] + [UInt8](repeating: 0, count: 17) // WCE
        if ten {
            var h = [UInt8](repeating: 0, count: 8)
            let len = 6 + caching.count
            h[0] = UInt8(len >> 8); h[1] = UInt8(len & 0xff)
            return h + caching
        }
        return [UInt8(3 + caching.count), 0, 0, 0] + caching
    }

    /// Fixed-format sense data (SPC-4 4.5.3), 18 bytes.
    static func fixedSense(_ s: SenseCode) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 18)
        d[0] = 0x70; d[2] = s.key & 0x0f; d[7] = 10; d[12] = s.asc; d[13] = s.ascq
        return d
    }

    private static func put(_ d: inout [UInt8], _ at: Int, _ s: String) {
        for (i, b) in s.utf8.enumerated() where at + i < d.count { d[at + i] = b }
    }

    static func be32(_ d: inout [UInt8], _ at: Int, _ v: UInt32) {
        d[at] = UInt8(v >> 24); d[at + 1] = UInt8((v >> 16) & 0xff); d[at + 2] = UInt8((v >> 8) & 0xff); d[at + 3] = UInt8(v & 0xff)
    }
}
