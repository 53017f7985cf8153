import VirtioSCSI

// The SCSI side of the simulator: codes, names, and the data-in a disk returns (SPC-4 / SBC-3).
// The builders are VirtioSCSI's; this file is the small interface the device answers through.
// The hot path (READ/WRITE) never calls them: it stores the few changing bytes itself.

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

    /// Names as in shared/scsi/opcodes.tsv (VirtioSCSI's generated table), for the ground truth.
    static func name(_ opcode: UInt8, serviceAction: UInt8 = 0) -> String {
        let hasSA = opcode == serviceActionIn16 || opcode == maintenanceIn
        return SCSIOpcodes.name(opcode: opcode, serviceAction: hasSA ? UInt16(serviceAction) : nil)
    }
}

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

    static func statusName(_ s: UInt8) -> String { SAMStatus.name(s) }
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

/// Data-in of a RAM-backed disk (direct-access block device, 512-byte blocks), built with
/// VirtioSCSI's builders. Cold path: INQUIRY, VPD, capacity, REPORT LUNS, MODE SENSE, sense.
enum SimSCSIData {
    static func inquiryStandard(removable: Bool = false) -> [UInt8] {
        SCSIDataIn.inquiryStandard(vendor: "VQTAP", product: "SIM DISK", revision: "0.1", removable: removable)
    }

    /// VPD pages 0x00, 0x80, 0x83, 0xb0, 0xb1; nil for any other page.
    static func inquiryVPD(page: UInt8, target: UInt8, lun: UInt16, capacityBlocks: UInt64) -> [UInt8]? {
        switch page {
        case 0x00: return SCSIDataIn.vpdSupportedPages([0x00, 0x80, 0x83, 0xb0, 0xb1])
        case 0x80: return SCSIDataIn.vpdUnitSerialNumber("VQSIM-\(target)-\(lun)")
        case 0x83:
            // NAA 6 (registered extended) per LU, plus a T10 vendor id.
            let naa = 0x6001_405f_0000_0000 | UInt64(target) << 16 | UInt64(lun)
            return SCSIDataIn.vpdDeviceIdentification([.naa(naa), .t10(vendor: "VQTAP", id: "SIM-\(target)-\(lun)")])
        case 0xb0:
            // 1 MiB transfers at most, 4 KiB optimal, UNMAP up to 16 descriptors.
            return SCSIDataIn.vpdBlockLimits(maxTransferLength: 2048, optimalTransferLength: 8, maxUnmapLBACount: 0xffff_ffff,
                                             maxUnmapDescriptorCount: 16)
        case 0xb1: return SCSIDataIn.vpdBlockDeviceCharacteristics(rotationRate: 1) // non-rotating
        default: return nil
        }
    }

    static func readCapacity10(blocks: UInt64) -> [UInt8] {
        let last = blocks == 0 ? 0 : blocks - 1
        return SCSIDataIn.readCapacity10(lastLBA: last > 0xffff_ffff ? 0xffff_ffff : UInt32(last), blockLength: 512)
    }

    static func readCapacity16(blocks: UInt64) -> [UInt8] {
        SCSIDataIn.readCapacity16(lastLBA: blocks == 0 ? 0 : blocks - 1, blockLength: 512, lbpme: true, lbprz: true)
    }

    static func reportLuns(_ luns: [UInt16]) -> [UInt8] { SCSIDataIn.reportLuns(luns) }

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
    static func fixedSense(_ s: SenseCode) -> [UInt8] { SenseData.fixed(key: s.key, asc: s.asc, ascq: s.ascq) }
}
