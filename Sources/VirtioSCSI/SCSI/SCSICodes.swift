import VQWire

// Names of SCSI codes: operation codes (SPC-4 annex D, with service actions), additional sense
// codes (SPC-4 annex D.2), sense keys (SPC-4 4.5.6) and SAM status (SAM-5 5.3).
// The opcode and ASC/ASCQ tables are generated from scsi/*.tsv (scripts/gen-scsi-tables);
// lookups are a direct index or a binary search over sorted static arrays.

public enum SCSIOpcodes {
    /// The name of an operation code, with its service action where the table has service
    /// actions for it. `serviceAction` nil, or given for an opcode without service actions,
    /// gives the opcode's own row. An opcode with service actions but an unlisted one gives
    /// `Maintenance in (unknown service action 0x1f)`; an unlisted opcode `unknown(0x02)`.
    public static func name(opcode: UInt8, serviceAction: UInt16?) -> String {
        if let sa = serviceAction, hasServiceAction(opcode) {
            if let i = search(UInt32(opcode) << 16 | UInt32(sa)) { return serviceActionNames[i] }
            return "\(familyName(opcode)) (unknown service action \(Hex.short(UInt64(sa))))"
        }
        return plainNames[Int(opcode)] ?? Naming.unknown(UInt64(opcode))
    }

    /// The service action of a CDB, where its opcode has service actions in the table and
    /// the CDB is long enough to hold it; nil otherwise.
    public static func serviceAction(in cdb: [UInt8]) -> UInt16? {
        var r = ByteReader(cdb)
        guard let opcode = try? r.readU8("opcode"), hasServiceAction(opcode) else { return nil }
        if opcode == 0x7f {
            guard (try? r.skip(7, "misc")) != nil else { return nil }
            return try? r.readBE16("service_action")
        }
        return (try? r.readU8("service_action")).map { UInt16($0 & 0x1f) }
    }

    /// Whether the table lists service actions for `opcode` (so CDB byte 1 bits 0-4, or
    /// bytes 8-9 for 0x7f, select the command).
    public static func hasServiceAction(_ opcode: UInt8) -> Bool {
        let first = lowerBound(UInt32(opcode) << 16)
        return first < serviceActionKeys.count && serviceActionKeys[first] >> 16 == UInt32(opcode)
    }

    /// The command set an opcode with service actions belongs to, named after SPC-4 (the
    /// table's own row for the opcode names service action 0 instead).
    public static func familyName(_ opcode: UInt8) -> String {
        switch opcode {
        case 0x48: return "Sanitize"
        case 0x5e: return "Persistent reserve in"
        case 0x5f: return "Persistent reserve out"
        case 0x7f: return "Variable length"
        case 0x83: return "Third-party copy out"
        case 0x84: return "Third-party copy in"
        case 0x8c: return "Read attribute"
        case 0x8d: return "Write attribute"
        case 0x94: return "Zone management out"
        case 0x95: return "Zone management in"
        case 0x9e: return "Service action in(16)"
        case 0x9f: return "Service action out(16)"
        case 0xa3: return "Maintenance in"
        case 0xa4: return "Maintenance out"
        case 0xa9: return "Service action out(12)"
        case 0xab: return "Service action in(12)"
        default: return plainNames[Int(opcode)] ?? Naming.unknown(UInt64(opcode))
        }
    }

    private static func lowerBound(_ key: UInt32) -> Int {
        var low = 0, high = serviceActionKeys.count
        while low < high {
            let mid = low + (high - low) / 2
            if serviceActionKeys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static func search(_ key: UInt32) -> Int? {
        let i = lowerBound(key)
        return i < serviceActionKeys.count && serviceActionKeys[i] == key ? i : nil
    }
}

public enum ASCText {
    /// The description of an additional sense code and qualifier: the table's text, a
    /// range row with its parameter filled in (`Ram failure (nn = 0x05)`), `vendor specific
    /// (asc 0x80, ascq 0x01)` when ASC or ASCQ is 0x80 or more, else `unknown(asc 0x12,
    /// ascq 0x34)`.
    public static func text(asc: UInt8, ascq: UInt8) -> String {
        if let t = known(asc: asc, ascq: ascq) { return t }
        let codes = "asc \(Hex.short(UInt64(asc))), ascq \(Hex.short(UInt64(ascq)))"
        if asc >= 0x80 || ascq >= 0x80 { return "vendor specific (\(codes))" }
        return "unknown(\(codes))"
    }

    /// The table's text, or nil when the table does not list the pair.
    public static func known(asc: UInt8, ascq: UInt8) -> String? {
        let key = UInt16(asc) << 8 | UInt16(ascq)
        var low = 0, high = exactKeys.count
        while low < high {
            let mid = low + (high - low) / 2
            if exactKeys[mid] < key { low = mid + 1 } else { high = mid }
        }
        if low < exactKeys.count && exactKeys[low] == key { return exactTexts[low] }
        for r in ranges where r.asc == asc && r.low <= ascq && ascq <= r.high {
            return r.before + Hex.short(UInt64(ascq)) + r.after
        }
        return nil
    }
}

public enum SenseKey {
    private static let names = [
        "NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
        "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
        "COPY ABORTED", "ABORTED COMMAND", "", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
    ]

    /// `UNIT ATTENTION`, ...; 0xC (obsolete) and values above 15 are `unknown(0x..)`.
    public static func name(_ key: UInt8) -> String {
        if key < 16, !names[Int(key)].isEmpty { return names[Int(key)] }
        return Naming.unknown(UInt64(key))
    }
}

public enum SAMStatus {
    public static let good: UInt8 = 0x00
    public static let checkCondition: UInt8 = 0x02
    public static let busy: UInt8 = 0x08

    /// Whether SAM defines the status (`name` has a name for it).
    public static func isDefined(_ status: UInt8) -> Bool {
        switch status {
        case 0x00, 0x02, 0x04, 0x08, 0x18, 0x28, 0x30, 0x40: return true
        default: return false
        }
    }

    /// `GOOD`, `CHECK CONDITION`, ... or `unknown(0x..)`.
    public static func name(_ status: UInt8) -> String {
        switch status {
        case 0x00: return "GOOD"
        case 0x02: return "CHECK CONDITION"
        case 0x04: return "CONDITION MET"
        case 0x08: return "BUSY"
        case 0x18: return "RESERVATION CONFLICT"
        case 0x28: return "TASK SET FULL"
        case 0x30: return "ACA ACTIVE"
        case 0x40: return "TASK ABORTED"
        default: return Naming.unknown(UInt64(status))
        }
    }
}
