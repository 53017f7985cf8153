import VQRecord
import VQWire
import VirtioSCSI

// The Wireshark dissector for vqtap captures (LINKTYPE_USER0), shipped inside the binary
// (`vqtap wireshark print|install`). Its field declarations are generated from the Swift
// registries (`VirtioSCSI.allFieldDefs`, `LuaDissector.recordFields`) and its value
// strings from the Swift code tables, so that names and labels never drift between the
// JSON, the text and Wireshark (DESIGN.md rule 10). The decoding itself is Lua
// (LuaDissectorBody.swift); it hands CDB, data and sense to Wireshark's SCSI layer through
// an iSCSI PDU built like `--encap iscsi` builds it.

public enum LuaDissector {
    public static let fileName = "vqtap.lua"

    /// Fields of the capture record (man/vqtap-pcapng.5) and of the request/response link.
    public static let recordFields: [FieldDef] = [
        FieldDef("virtio_scsi.record", "vqtap capture record", .group),
        FieldDef("virtio_scsi.record.version", "Record version", .uint(bits: 8)),
        FieldDef("virtio_scsi.record.kind", "Record kind", .code(bits: 8)),
        FieldDef("virtio_scsi.record.header_length", "Header length", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.device_type", "Virtio device type", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.device_instance", "Device instance", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.queue", "Virtqueue", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.queue_name", "Queue name", .string),
        FieldDef("virtio_scsi.record.head", "Descriptor head", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.flags", "Record flags", .flags(bits: 32)),
        FieldDef("virtio_scsi.record.used_length", "Used length", .uint(bits: 32)),
        FieldDef("virtio_scsi.record.transaction_id", "Transaction", .uint(bits: 64)),
        FieldDef("virtio_scsi.record.latency_ns", "Latency (ns)", .uint(bits: 64)),
        FieldDef("virtio_scsi.record.ring_index", "Ring index", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.segment_count", "Segments", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.error", "Ring error", .uint(bits: 16)),
        FieldDef("virtio_scsi.record.error_detail", "Ring error detail", .hex64),
        FieldDef("virtio_scsi.segment", "Segment", .group),
        FieldDef("virtio_scsi.segment.address", "Guest address", .hex64),
        FieldDef("virtio_scsi.segment.length", "Descriptor length", .uint(bits: 32)),
        FieldDef("virtio_scsi.segment.captured_length", "Captured length", .uint(bits: 32)),
        FieldDef("virtio_scsi.segment.flags", "Descriptor flags", .flags(bits: 16)),
        FieldDef("virtio_scsi.segment.bytes", "Captured bytes", .bytes),
        FieldDef("virtio_scsi.drop.count", "Chains dropped", .uint(bits: 64)),
        FieldDef("virtio_scsi.drop.reason", "Drop reason", .code(bits: 16)),
        FieldDef("virtio_scsi.state.state", "Device state", .code(bits: 8)),
        FieldDef("virtio_scsi.state.queue_size", "Queue size", .uint(bits: 16)),
        FieldDef("virtio_scsi.state.queue_count", "Queue count", .uint(bits: 16)),
        FieldDef("virtio_scsi.state.generation", "Generation", .uint(bits: 64)),
        FieldDef("virtio_scsi.state.features", "Features", .hex64),
        FieldDef("virtio_scsi.state.cdb_size", "cdb_size", .uint(bits: 32)),
        FieldDef("virtio_scsi.state.sense_size", "sense_size", .uint(bits: 32)),
        FieldDef("virtio_scsi.state.desc", "Descriptor table", .hex64),
        FieldDef("virtio_scsi.state.avail", "Available ring", .hex64),
        FieldDef("virtio_scsi.state.used", "Used ring", .hex64),
        FieldDef("virtio_scsi.state.name", "Device name", .string),
    ]

    /// Fields Wireshark types that the Swift registry has no type for (frame links, times).
    static let linkDeclarations = """
        F["virtio_scsi.response_in"] = ProtoField.framenum("virtio_scsi.response_in", "Response in", base.NONE, frametype.RESPONSE)
        F["virtio_scsi.request_in"] = ProtoField.framenum("virtio_scsi.request_in", "Request in", base.NONE, frametype.REQUEST)
        F["virtio_scsi.time"] = ProtoField.relative_time("virtio_scsi.time", "Time from request")
        """

    /// Value strings generated from the Swift code tables, by field name.
    static var valueStrings: [(field: String, table: [(UInt64, String)])] {
        func range(_ r: ClosedRange<UInt64>, _ name: (UInt64) -> String) -> [(UInt64, String)] {
            r.compactMap { v in let n = name(v); return n.hasPrefix("unknown(") ? nil : (v, n) }
        }
        return [
            ("virtio_scsi.record.kind", RecordKind.allCases.map { (UInt64($0.rawValue), $0.name) }),
            ("virtio_scsi.drop.reason", [(1, "available ring lapped"), (2, "used ring lapped")]),
            ("virtio_scsi.state.state", range(1...5) { DeviceStateMarker.State(rawValue: UInt8($0))?.name ?? "unknown(\($0))" }),
            ("virtio_scsi.response", range(0...12) { VirtioSCSIResponse(rawValue: UInt8($0)).name(in: .command) }),
            ("virtio_scsi.tmf.response", range(0...12) { VirtioSCSIResponse(rawValue: UInt8($0)).name(in: .taskManagement) }),
            ("virtio_scsi.an.response", range(0...12) { VirtioSCSIResponse(rawValue: UInt8($0)).name(in: .asyncNotification) }),
            ("virtio_scsi.task_attr", range(0...3) { TaskAttribute(rawValue: UInt8($0)).name }),
            ("virtio_scsi.tmf.subtype", range(0...7) { TMFSubtype(rawValue: UInt32($0)).name }),
            ("virtio_scsi.ctrl.type", range(0...2) { ControlType(rawValue: UInt32($0)).name }),
            ("virtio_scsi.event.type", range(0...3) { EventType(rawValue: UInt32($0)).name }),
            ("virtio_scsi.status", range(0...0x40) { SAMStatus.name(UInt8($0)) }),
            ("virtio_scsi.sense.key", range(0...15) { SenseKey.name(UInt8($0)) }),
            ("virtio_scsi.cdb.opcode", range(0...255) { SCSIOpcodes.name(opcode: UInt8($0), serviceAction: nil) }),
        ]
    }

    static func luaString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 || u.value > 0x7e { out += "\\\(u.value)" } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// One `ProtoField` declaration.
    static func declaration(_ def: FieldDef, valueString: String?) -> String {
        let name = luaString(def.name), label = luaString(def.label)
        let vs = valueString.map { ", \($0)" } ?? ""
        func uint(_ bits: Int, _ base: String) -> String {
            let kind = bits <= 8 ? "uint8" : bits <= 16 ? "uint16" : bits <= 24 ? "uint24" : bits <= 32 ? "uint32" : "uint64"
            return "ProtoField.\(kind)(\(name), \(label), \(base)\(vs))"
        }
        let body: String
        switch def.type {
        case .group: body = "ProtoField.none(\(name), \(label))"
        case let .uint(bits): body = uint(bits, "base.DEC")
        case .hex64: body = "ProtoField.uint64(\(name), \(label), base.HEX)"
        case let .code(bits): body = uint(bits, "base.DEC")
        case let .flags(bits): body = uint(bits, "base.HEX")
        case .bool: body = "ProtoField.bool(\(name), \(label))"
        case .string: body = "ProtoField.string(\(name), \(label))"
        case .bytes: body = "ProtoField.bytes(\(name), \(label))"
        case .int: body = "ProtoField.int64(\(name), \(label), base.DEC)"
        }
        return "F[\(name)] = \(body)"
    }

    /// Every field the dissector declares, record fields first.
    public static var declaredFields: [FieldDef] {
        // The protocol itself is `virtio_scsi`: its tree item is the Proto, not a field.
        var seen: Set<String> = [VirtioSCSI.protocolField.name]
        return (recordFields + VirtioSCSI.allFieldDefs).filter { seen.insert($0.name).inserted }
    }

    public static var declaredFieldNames: [String] {
        declaredFields.map(\.name) + ["virtio_scsi.response_in", "virtio_scsi.request_in", "virtio_scsi.time"]
    }

    public static let source: String = {
        var lines = [
            "-- vqtap.lua: Wireshark dissector for vqtap capture records (LINKTYPE_USER0, record version \(CaptureRecord.version)).",
            "-- Generated by `vqtap wireshark print`; the field declarations come from vqtap's field registry.",
            "-- Load: tshark -X lua_script:vqtap.lua -r capture.pcapng, or copy to ~/.local/lib/wireshark/plugins/.",
            "",
            "local vs = Proto(\"virtio_scsi\", \"virtio-scsi (vqtap)\")",
            "local F = {}",
            "local VS = {}",
        ]
        var tables: [String: String] = [:]
        for (field, table) in valueStrings {
            let key = "VS[\(luaString(field))]"
            lines.append("\(key) = {" + table.map { "[\($0.0)] = \(luaString($0.1))" }.joined(separator: ", ") + "}")
            tables[field] = key
        }
        for def in declaredFields { lines.append(declaration(def, valueString: tables[def.name])) }
        lines.append(linkDeclarations)
        lines.append("do local list = {} for _, f in pairs(F) do list[#list + 1] = f end vs.fields = list end")
        lines.append("local RECORD_VERSION = \(CaptureRecord.version)")
        lines.append("local HEADER_LENGTH = \(CaptureRecord.headerLength)")
        return lines.joined(separator: "\n") + "\n" + LuaDissectorBody.text
    }()
}
