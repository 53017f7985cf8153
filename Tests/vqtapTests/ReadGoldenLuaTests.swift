import Foundation
import Testing
import PcapNG
import VQOutput
import VQRecord
import VQWire

/// The Lua dissector (`vqtap wireshark print`) in tshark: every sample decodes frame by frame
/// to the values vqtap's own JSON has for the same record; request and response link both
/// ways with the response time; expert info marks what went wrong; Wireshark's SCSI layer
/// decodes the CDBs (`-z scsi,srt,0`).
@Suite struct ReadGoldenLuaTests {
    static func plugin() throws -> String {
        // One file per caller, removed by it: the tests run in parallel and leave nothing.
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vqtap-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).lua").path
        let run = try VQTapBinary.run(["wireshark", "print"])
        #expect(run.status == 0)
        try run.stdout.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// (tshark field, vqtap JSON path, how the JSON value prints in tshark).
    static let compared: [(String, String)] = [
        ("virtio_scsi.record.queue", "queue"),
        ("virtio_scsi.record.head", "head"),
        ("virtio_scsi.record.transaction_id", "transaction_id"),
        ("virtio_scsi.record.used_length", "used_length"),
        ("virtio_scsi.record.ring_index", "ring_index"),
        ("virtio_scsi.drop.count", "dropped"),
        ("virtio_scsi.state.cdb_size", "cdb_size"),
        ("virtio_scsi.state.sense_size", "sense_size"),
        ("virtio_scsi.state.queue_size", "queue_size"),
        ("virtio_scsi.id", "virtio_scsi.id"),
        ("virtio_scsi.lun.target", "virtio_scsi.lun.target"),
        ("virtio_scsi.lun.lun", "virtio_scsi.lun.lun"),
        ("virtio_scsi.task_attr", "virtio_scsi.task_attr"),
        ("virtio_scsi.cdb.opcode", "virtio_scsi.cdb.opcode"),
        ("virtio_scsi.sense_len", "virtio_scsi.sense_len"),
        ("virtio_scsi.residual", "virtio_scsi.residual"),
        ("virtio_scsi.status", "virtio_scsi.status"),
        ("virtio_scsi.response", "virtio_scsi.response"),
        ("virtio_scsi.sense.key", "virtio_scsi.sense.key"),
        ("virtio_scsi.sense.asc", "virtio_scsi.sense.asc"),
        ("virtio_scsi.sense.ascq", "virtio_scsi.sense.ascq"),
        ("virtio_scsi.ctrl.type", "virtio_scsi.ctrl.type"),
        ("virtio_scsi.tmf.subtype", "virtio_scsi.tmf.subtype"),
        ("virtio_scsi.tmf.response", "virtio_scsi.tmf.response"),
        ("virtio_scsi.an.event_requested", "virtio_scsi.an.event_requested"),
        ("virtio_scsi.an.event_actual", "virtio_scsi.an.event_actual"),
        ("virtio_scsi.an.response", "virtio_scsi.an.response"),
        ("virtio_scsi.event.type", "virtio_scsi.event.type"),
        ("virtio_scsi.event.reason", "virtio_scsi.event.reason"),
        ("virtio_scsi.event_buffer_length", "virtio_scsi.event_buffer_length"),
        ("virtio_scsi.time", "latency_ns"),
    ]

    static func normalized(_ value: Any?, field: String) -> String {
        guard let value else { return "" }
        if field == "virtio_scsi.time", let ns = (value as? NSNumber)?.uint64Value {
            let frac = String(ns % 1_000_000_000)
            return "\(ns / 1_000_000_000).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
        }
        if let s = value as? String, let v = hexValue(s) { return String(v) }
        if let n = value as? NSNumber { return n.stringValue }
        return "\(value)"
    }

    static func tsharkNormalized(_ s: String, field: String) -> String {
        if field == "virtio_scsi.time" { return s }
        if s.hasPrefix("0x"), let v = UInt64(s.dropFirst(2), radix: 16) { return String(v) }
        return s
    }

    @Test(arguments: ReadGoldenTests.names)
    func fieldsMatchVQTapJSON(_ name: String) throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let capture = ReadGoldenTests.capturePath(name)
        let records = try vqtapJSON(capture)
        let fields = Self.compared.map(\.0)
        let rows = try TShark.fields(capture, ["frame.number"] + fields, extra: ["-X", "lua_script:\(lua)"])
        #expect(rows.count == records.count, "\(name): one frame per record")
        var compared = 0
        for (i, row) in rows.enumerated() where i < records.count && row.count == fields.count + 1 {
            for (j, (field, path)) in Self.compared.enumerated() {
                let want = Self.normalized(records[i].at(path), field: field)
                let got = Self.tsharkNormalized(row[j + 1], field: field)
                // The record header is always there in the dissector; JSON prints the parts
                // that mean something for the record's kind.
                if want.isEmpty && field.hasPrefix("virtio_scsi.record.") { continue }
                #expect(got == want, "\(name) frame \(i + 1) \(field): tshark '\(got)' vqtap '\(want)'")
                if !want.isEmpty { compared += 1 }
            }
        }
        #expect(compared > records.count, "\(name): \(compared) values compared")
    }

    /// Two passes (-2): a request shows its response frame, the response its request and time.
    @Test(arguments: ReadGoldenTests.names)
    func requestAndResponseLinkedBothWays(_ name: String) throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let capture = ReadGoldenTests.capturePath(name)
        let records = try vqtapJSON(capture)
        let rows = try TShark.fields(capture, ["virtio_scsi.response_in", "virtio_scsi.request_in"], extra: ["-2", "-X", "lua_script:\(lua)"])
        // vqtap pairs a completion with the latest request of its queue and transaction; a
        // paired completion carries latency_ns.
        var latestRequest: [String: Int] = [:]
        var links = 0
        for (i, r) in records.enumerated() where i < rows.count {
            guard let t = r.int("transaction_id"), let q = r.int("queue") else { continue }
            let key = "\(q) \(t)"
            if r.string("record") == "available" { latestRequest[key] = i; continue }
            guard r.string("record") == "used", r.at("latency_ns") != nil, let req = latestRequest[key] else {
                #expect(rows[i][1] == "", "\(name) frame \(i + 1): an unpaired completion links nowhere")
                continue
            }
            #expect(rows[i][1] == String(req + 1), "\(name) frame \(i + 1) request_in")
            #expect(rows[req][0] == String(i + 1), "\(name) frame \(req + 1) response_in")
            links += 1
        }
        #expect(links >= 4)
    }

    /// Expert info where vqtap reports trouble.
    @Test func expertInfo() throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let capture = ReadGoldenTests.capturePath("faults")
        let records = try vqtapJSON(capture)
        func frames(_ filter: String) throws -> [Int] {
            try TShark.fields(capture, ["frame.number"], extra: ["-X", "lua_script:\(lua)", "-Y", filter]).compactMap { Int($0[0]) }
        }
        func want(_ flag: String) -> [Int] {
            records.enumerated().filter { (($0.element["flags"] as? [String]) ?? []).contains(flag) }.map { $0.offset + 1 }
        }
        #expect(try frames("virtio_scsi.expert.torn") == want("torn"))
        #expect(try frames("virtio_scsi.expert.orphan") == want("orphan"))
        #expect(try frames("virtio_scsi.expert.malformed") == want("malformed"))
        #expect(try frames("virtio_scsi.expert.drop") == records.enumerated().filter { $0.element["dropped"] != nil }.map { $0.offset + 1 })
        let badResponse = records.enumerated().filter { ($0.element.int("virtio_scsi.response") ?? 0) != 0 }.map { $0.offset + 1 }
        #expect(!badResponse.isEmpty)
        #expect(try frames("virtio_scsi.expert.response") == badResponse)
        let basic = ReadGoldenTests.capturePath("basic")
        let check = try vqtapJSON(basic).enumerated().filter { $0.element.int("virtio_scsi.status") == 2 }.map { $0.offset + 1 }
        let got = try TShark.fields(basic, ["frame.number"], extra: ["-X", "lua_script:\(lua)", "-Y", "virtio_scsi.expert.check_condition"]).compactMap { Int($0[0]) }
        #expect(!check.isEmpty)
        #expect(got == check)
    }

    /// Wireshark's SCSI layer, reached through the iSCSI PDUs the plugin builds.
    @Test func scsiDecodingAndServiceResponseTimes() throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let capture = ReadGoldenTests.capturePath("basic")
        let records = try vqtapJSON(capture)
        let rows = try TShark.fields(capture, ["scsi_sbc.opcode", "scsi.spc.opcode", "scsi.sns.key"], extra: ["-X", "lua_script:\(lua)"])
        for (i, r) in records.enumerated() where i < rows.count && r.string("record") == "available" {
            guard let op = r.int("virtio_scsi.cdb.opcode") else { continue }
            let got = tsharkNumber(rows[i][0].isEmpty ? rows[i][1] : rows[i][0])
            #expect(got == op, "frame \(i + 1)")
        }
        for (i, r) in records.enumerated() where i < rows.count {
            if let key = r.int("virtio_scsi.sense.key") { #expect(tsharkNumber(rows[i][2]) == key, "frame \(i + 1) sense key") }
        }
        guard let run = try TShark.run(["-X", "lua_script:\(lua)", "-r", capture, "-q", "-z", "scsi,srt,0"]) else { return }
        let rowsSRT = run.stdout.split(separator: "\n").filter { $0.hasPrefix(" ") && $0.split(separator: " ").count >= 6 }
        #expect(rowsSRT.count == 6, "\(run.stdout)")
    }

    /// Every field name any virtio-scsi decoder can emit is declared (names cannot drift), and
    /// tshark registers every declaration.
    @Test func everyFieldDeclaredAndRegistered() throws {
        let sources = VQTapBinary.root.appendingPathComponent("Sources/VirtioSCSI")
        var inSources: Set<String> = []
        let files = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String } ?? []
        for file in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for part in text.components(separatedBy: "FieldDef(\"").dropFirst() {
                if let end = part.firstIndex(of: "\"") { inSources.insert(String(part[..<end])) }
            }
        }
        let declared = Set(LuaDissector.declaredFieldNames)
        #expect(inSources.count > 150)
        #expect(inSources.subtracting(declared).subtracting(["virtio_scsi"]).sorted() == [])
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        guard let run = try TShark.run(["-G", "fields", "-X", "lua_script:\(lua)"]) else { return }
        let registered = Set(run.stdout.split(separator: "\n").compactMap { line -> String? in
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
            return cols.count > 2 && cols[0] == "F" ? String(cols[2]) : nil
        })
        #expect(declared.subtracting(registered).sorted() == [])
        #expect(!run.stderr.contains("Lua: Error"))
    }

    @Test func installWritesThePlugin() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-plugins-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try VQTapBinary.run(["wireshark", "install", "--dir", dir.path])
        #expect(run.status == 0)
        #expect(run.stdout == dir.appendingPathComponent("vqtap.lua").path + "\n")
        let text = try String(contentsOf: dir.appendingPathComponent("vqtap.lua"), encoding: .utf8)
        #expect(text == (try VQTapBinary.run(["wireshark", "print"])).stdout)
    }
}

/// Writes each record cut to a growing prefix (captured length below the original length),
/// as a capture with a small pcapng snap length would hold it.
struct PrefixEncoder: PacketEncoder {
    var linkType: LinkType { .user0 }
    var cuts: [Int]

    mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int {
        let bytes = record.encoded
        for cut in cuts where cut < bytes.count {
            let prefix = Array(bytes.prefix(cut))
            PcapNGBlocks.appendEnhancedPacket(into: w, interface: interface, timestampNs: record.timestampNs, dataLength: prefix.count,
                                              originalLength: bytes.count, direction: record.direction) { $0.bytes(prefix) }
        }
        return cuts.count
    }
}

extension ReadGoldenLuaTests {
    /// Every prefix of every kind of record: the dissector clamps every read (no Lua error),
    /// and says what was cut.
    @Test func everyPrefixDissectsWithoutLuaErrors() throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-prefixes-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = CaptureSamples.basic.prefix(7) + CaptureSamples.control.suffix(4) + CaptureSamples.faults.suffix(6)
        var w = try CaptureFileWriter(path: path, encoder: PrefixEncoder(cuts: Array(0..<400)), options: ReadGoldenTests.options)
        for r in records { try w.write(r) }
        try w.close()
        guard let run = try TShark.run(["-X", "lua_script:\(lua)", "-r", path]) else { return }
        #expect(run.status == 0)
        #expect(!run.stdout.isEmpty)
        #expect(!run.stdout.contains("Lua Error"), "\(run.stdout.split(separator: "\n").first { $0.contains("Lua Error") } ?? "")")
        #expect(!run.stderr.contains("Lua"))
        let truncated = try TShark.fields(path, ["frame.number"], extra: ["-X", "lua_script:\(lua)", "-Y", "virtio_scsi.expert.truncated"])
        #expect(truncated.count > 1000)
    }
}

/// Writes each record as it is and as `variants` copies with bytes changed at random
/// (a fixed seed): lengths, counts and codes that lie.
struct MutatingEncoder: PacketEncoder {
    var linkType: LinkType { .user0 }
    var variants: Int
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int {
        let original = record.encoded
        for v in 0...variants {
            var bytes = original
            if v > 0 {
                for _ in 0..<(1 + Int(next() % 4)) {
                    let at = Int(next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: next())
                }
            }
            PcapNGBlocks.appendEnhancedPacket(into: w, interface: interface, timestampNs: record.timestampNs, dataLength: bytes.count,
                                              originalLength: bytes.count, direction: record.direction) { $0.bytes(bytes) }
        }
        return variants + 1
    }
}

extension ReadGoldenLuaTests {
    /// Lying lengths and codes: the dissector never reads past the captured bytes (no Lua
    /// error), and vqtap read reports what does not decode without stopping.
    @Test func mutatedRecordsDissectWithoutLuaErrors() throws {
        let lua = try Self.plugin()
        defer { try? FileManager.default.removeItem(atPath: lua) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-mutated-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var w = try CaptureFileWriter(path: path, encoder: MutatingEncoder(variants: 60), options: ReadGoldenTests.options)
        for r in CaptureSamples.basic + CaptureSamples.control + CaptureSamples.faults { try w.write(r) }
        try w.close()
        guard let run = try TShark.run(["-X", "lua_script:\(lua)", "-r", path]) else { return }
        #expect(run.status == 0)
        #expect(!run.stdout.contains("Lua Error"), "\(run.stdout.split(separator: "\n").first { $0.contains("Lua Error") } ?? "")")
        let read = try VQTapBinary.run(["read", "-q", path])
        #expect(read.status == 0 || read.status == 2)
        #expect(read.stdout.contains(" records: "))
    }
}
