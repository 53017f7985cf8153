import Foundation
import Testing
import VQWire
@testable import VirtioSCSI

/// The shared TSV tables, found beside the repository (`../shared`, as in CI and on the
/// build machine), or where VQTAP_SHARED points: the generated Swift must say what every
/// row says.
enum SharedTables {
    static var directory: URL {
        if let shared = ProcessInfo.processInfo.environment["VQTAP_SHARED"] {
            return URL(fileURLWithPath: shared).appendingPathComponent("scsi")
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/scsi")
    }

    /// Data rows (header dropped), split on tabs.
    static func rows(_ file: String) throws -> [[String]] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    static func hex(_ s: String) -> UInt64? { UInt64(s.dropFirst(2), radix: 16) }
}

@Suite struct CodeTableTests {
    @Test func everyOpcodeRowMatchesTheTable() throws {
        let rows = try SharedTables.rows("opcodes.tsv")
        #expect(rows.count == 389)
        var checked = 0
        for row in rows {
            try #require(row.count == 3)
            let opcode = try #require(SharedTables.hex(row[0]).map { UInt8($0) })
            var sa: UInt16?
            if row[1] != "-" { sa = UInt16(try #require(SharedTables.hex(row[1]))) }
            #expect(SCSIOpcodes.name(opcode: opcode, serviceAction: sa) == row[2], "row \(row)")
            if sa != nil { #expect(SCSIOpcodes.hasServiceAction(opcode)) }
            checked += 1
        }
        #expect(checked == 389)
        let withSA = Set(rows.filter { $0[1] != "-" }.compactMap { SharedTables.hex($0[0]) })
        for op in 0...255 {
            #expect(SCSIOpcodes.hasServiceAction(UInt8(op)) == withSA.contains(UInt64(op)), "opcode \(op)")
        }
        // Every opcode with service actions has a family name of its own (not its SA-0 row).
        for op in withSA {
            let family = SCSIOpcodes.familyName(UInt8(op))
            #expect(!family.contains("service action=") && !family.hasPrefix("unknown"), "opcode \(op): \(family)")
        }
    }

    @Test func unknownOpcodesAndServiceActions() {
        #expect(SCSIOpcodes.name(opcode: 0x02, serviceAction: nil) == "unknown(0x02)")
        #expect(SCSIOpcodes.name(opcode: 0x99, serviceAction: 3) == "unknown(0x99)")
        #expect(SCSIOpcodes.name(opcode: 0xa3, serviceAction: 0x1c) == "Maintenance in (unknown service action 0x1c)")
        #expect(SCSIOpcodes.name(opcode: 0x9e, serviceAction: 0x1f) == "Service action in(16) (unknown service action 0x1f)")
        #expect(SCSIOpcodes.name(opcode: 0x7f, serviceAction: 0x1234) == "Variable length (unknown service action 0x1234)")
        #expect(SCSIOpcodes.name(opcode: 0x9e, serviceAction: 0x10) == "Read capacity(16)")
        #expect(SCSIOpcodes.name(opcode: 0x7f, serviceAction: 0x09) == "Read(32)")
        // A service action given for an opcode that has none is ignored.
        #expect(SCSIOpcodes.name(opcode: 0x28, serviceAction: 5) == "Read(10)")
        #expect(SCSIOpcodes.name(opcode: 0x9e, serviceAction: nil) == "Service action in(16) service action=0x0")
        #expect(!SCSIOpcodes.hasServiceAction(0x28))
        #expect(SCSIOpcodes.serviceAction(in: [0x9e, 0xf0]) == 0x10)
        #expect(SCSIOpcodes.serviceAction(in: [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x0b]) == 0x0b)
        #expect(SCSIOpcodes.serviceAction(in: [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00]) == nil)
        #expect(SCSIOpcodes.serviceAction(in: [0x9e]) == nil)
        #expect(SCSIOpcodes.serviceAction(in: [0x28, 0x10]) == nil)
        #expect(SCSIOpcodes.serviceAction(in: []) == nil)
        #expect(SCSIOpcodes.hasServiceAction(0x7f))
    }

    @Test func everyASCRowMatchesTheTable() throws {
        let rows = try SharedTables.rows("asc-ascq.tsv")
        #expect(rows.count == 1022)
        var exact: [UInt16: String] = [:]
        for row in rows where !row[1].contains("-") {
            let asc = try #require(SharedTables.hex(row[0]).map { UInt8($0) })
            let ascq = try #require(SharedTables.hex(row[1]).map { UInt8($0) })
            exact[UInt16(asc) << 8 | UInt16(ascq)] = row[2]
            #expect(ASCText.text(asc: asc, ascq: ascq) == row[2], "row \(row)")
        }
        var rangeValues = 0
        for row in rows where row[1].contains("-") {
            let asc = try #require(SharedTables.hex(row[0]).map { UInt8($0) })
            let bounds = row[1].split(separator: "-").compactMap { SharedTables.hex(String($0)) }
            try #require(bounds.count == 2)
            for q in bounds[0]...bounds[1] {
                let ascq = UInt8(q)
                let expected = exact[UInt16(asc) << 8 | UInt16(ascq)]
                    ?? row[2].replacingOccurrences(of: "nn = ASCQ", with: "nn = \(Hex.short(q))")
                #expect(ASCText.text(asc: asc, ascq: ascq) == expected, "row \(row) ascq \(q)")
                rangeValues += 1
            }
        }
        #expect(exact.count == 1017)
        #expect(rangeValues == 127 + 128 + 255 + 255 + 256)
    }

    @Test func ascRangesVendorAndUnknown() {
        #expect(ASCText.text(asc: 0x40, ascq: 0x05) == "Ram failure (nn = 0x05)")
        #expect(ASCText.text(asc: 0x40, ascq: 0x00) == "Ram failure (should use 40 nn)")
        #expect(ASCText.text(asc: 0x40, ascq: 0x80) == "Diagnostic failure on component (nn = 0x80)")
        #expect(ASCText.text(asc: 0x4d, ascq: 0xff) == "Tagged overlapped commands (nn = 0xff)")
        #expect(ASCText.text(asc: 0x29, ascq: 0x00) == "Power on, reset, or bus device reset occurred")
        #expect(ASCText.text(asc: 0x80, ascq: 0x01) == "vendor specific (asc 0x80, ascq 0x01)")
        #expect(ASCText.text(asc: 0x04, ascq: 0x80) == "vendor specific (asc 0x04, ascq 0x80)")
        #expect(ASCText.text(asc: 0x7f, ascq: 0x7f) == "unknown(asc 0x7f, ascq 0x7f)")
        #expect(ASCText.known(asc: 0x7f, ascq: 0x7f) == nil)
    }

    @Test func senseKeysAndStatus() {
        let keys = (0...15).map { SenseKey.name(UInt8($0)) }
        #expect(keys == ["NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
                         "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
                         "COPY ABORTED", "ABORTED COMMAND", "unknown(0x0c)", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED"])
        #expect(SenseKey.name(16) == "unknown(0x10)")
        let statuses: [UInt8: String] = [0x00: "GOOD", 0x02: "CHECK CONDITION", 0x04: "CONDITION MET", 0x08: "BUSY",
                                         0x18: "RESERVATION CONFLICT", 0x28: "TASK SET FULL", 0x30: "ACA ACTIVE",
                                         0x40: "TASK ABORTED"]
        for s in 0...255 {
            #expect(SAMStatus.name(UInt8(s)) == statuses[UInt8(s)] ?? "unknown(\(Hex.short(UInt64(s))))")
        }
    }
}
