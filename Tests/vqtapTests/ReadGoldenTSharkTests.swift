import Foundation
import Testing
import VQOutput
import VQWire

/// Runs tshark (Debian package `tshark`; `make test` installs it). Missing tshark fails the
/// tests that need it: they check what Wireshark users see, and must not pass by skipping.
enum TShark {
    static let path = "/usr/bin/tshark"

    static func run(_ args: [String]) throws -> VQTapRun? {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("tshark is not installed (apt-get install tshark; make test-deps installs it)")
            return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return VQTapRun(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// `-T fields` rows, one per frame, split on tabs.
    static func fields(_ file: String, _ names: [String], extra: [String] = []) throws -> [[String]] {
        let args = ["-r", file] + extra + ["-T", "fields", "-E", "occurrence=f", "-E", "separator=\t"] + names.flatMap { ["-e", $0] }
        guard let run = try run(args) else { return [] }
        #expect(run.status == 0, "tshark \(args): \(run.stderr)")
        return run.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
    }
}

/// vqtap's own JSON lines for a capture, the reference the Wireshark outputs are checked against.
func vqtapJSON(_ capture: String) throws -> [[String: Any]] {
    let run = try VQTapBinary.run(["read", capture, "-T", "json"])
    #expect(run.status == 0)
    return try run.stdout.split(separator: "\n").map {
        (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) ?? [:]
    }
}

extension Dictionary where Key == String, Value == Any {
    /// `path` is dotted: `virtio_scsi.cdb.opcode`.
    func at(_ path: String) -> Any? {
        var node: Any? = self
        for key in path.split(separator: ".") { node = (node as? [String: Any])?[String(key)] }
        return node
    }
    func int(_ path: String) -> Int? { (at(path) as? NSNumber)?.intValue }
    func string(_ path: String) -> String? { at(path) as? String }
}

/// tshark prints some numbers in hex (`0x12`), others in decimal.
func tsharkNumber(_ s: String) -> Int? {
    s.hasPrefix("0x") ? Int(s.dropFirst(2), radix: 16) : Int(s)
}

func hexValue(_ s: String) -> UInt64? {
    let t = s.hasPrefix("0x") ? String(s.dropFirst(2)) : s
    return UInt64(t, radix: 16)
}

/// `--encap iscsi`: stock tshark (no plugin) decodes every command of every sample, with the
/// task tag, opcode and status vqtap decodes for the same record, and `-z scsi,srt,0`
/// reports vqtap's latencies.
@Suite struct ReadGoldenISCSITests {
    @Test(arguments: ReadGoldenTests.names)
    func iscsiExportDecodesInStockTShark(_ name: String) throws {
        let capture = ReadGoldenTests.capturePath(name)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-\(name)-iscsi-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let convert = try VQTapBinary.run(["read", capture, "-w", out, "--encap", "iscsi"])
        #expect(convert.status == 0, "\(convert.stderr)")
        let records = try vqtapJSON(capture)
        var byKey: [String: [String: Any]] = [:]
        for r in records {
            if let t = r.int("transaction_id"), let kind = r.string("record") { byKey["\(kind) \(t)"] = r }
        }
        let rows = try TShark.fields(out, ["frame.comment", "frame.p2p_dir", "iscsi.opcode", "iscsi.initiatortasktag",
                                           "scsi_sbc.opcode", "scsi.spc.opcode", "scsi.status", "_ws.expert.severity"])
        #expect(!rows.isEmpty)
        var commandsSeen = 0
        for row in rows where row.count == 8 {
            let comment = row[0]
            guard let t = comment.split(separator: " ").drop(while: { $0 != "transaction" }).dropFirst().first.flatMap({ Int($0) }) else {
                Issue.record("\(name): no transaction in comment '\(comment)'")
                continue
            }
            let kind = row[1] == "0" ? "available" : "used"
            guard let r = byKey["\(kind) \(t)"] else { Issue.record("\(name): frame for \(kind) \(t) has no vqtap record"); continue }
            if let id = r.string("virtio_scsi.id"), r.int("virtio_scsi.cdb.opcode") != nil {
                commandsSeen += 1
                #expect(hexValue(row[3]) == (hexValue(id) ?? 0) & 0xffff_ffff, "\(name) \(kind) \(t): task tag")
                let opcode = tsharkNumber(row[4].isEmpty ? row[5] : row[4]) ?? -1
                let want = r.int("virtio_scsi.cdb.opcode") ?? -2
                // Wireshark decodes READ(32) (0x7f) as a variable-length CDB without an SBC opcode.
                if want != 0x7f { #expect(opcode == want, "\(name) \(kind) \(t): opcode") }
                #expect(comment.contains("id \(id)"))
            }
            if kind == "used", let status = r.int("virtio_scsi.status"), !row[6].isEmpty, r.at("request") != nil {
                #expect(tsharkNumber(row[6]) == status,
                        "\(name) used \(t): status")
            }
        }
        let commands = records.filter { $0.string("record") == "available" && $0.int("virtio_scsi.cdb.opcode") != nil }.count
        #expect(commandsSeen == commands, "\(name): every command request is a frame")
    }

    /// Every event but NO_EVENT is an Asynchronous Message with the UNIT ATTENTION a SCSI
    /// target would report; stock tshark decodes its sense.
    @Test(arguments: ["sim", "qemu"])
    func eventsAreAsynchronousMessagesInStockTShark(_ name: String) throws {
        let capture = ReadGoldenTests.capturePath(name)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-\(name)-events-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let convert = try VQTapBinary.run(["read", capture, "-w", out, "--encap", "iscsi"])
        #expect(convert.status == 0, "\(convert.stderr)")
        let events = try vqtapJSON(capture).filter { r in
            r.string("record") == "used" && (r.int("virtio_scsi.event.type") ?? 0) != 0
        }
        #expect(!events.isEmpty, "\(name) has events")
        let rows = try TShark.fields(out, ["iscsi.asyncevent", "scsi.sns.key", "scsi.sns.asc", "scsi.sns.ascq"],
                                     extra: ["-Y", "iscsi.opcode == 0x32"])
        #expect(rows.count == events.count, "\(name): one asynchronous message per event")
        for (row, event) in zip(rows, events) where row.count == 4 {
            #expect(tsharkNumber(row[0]) == 0)
            #expect(tsharkNumber(row[1]) == 6, "UNIT ATTENTION")
            if event.int("virtio_scsi.event.type") == 3 {
                #expect(tsharkNumber(row[2]) == event.int("virtio_scsi.event.asc"))
                #expect(tsharkNumber(row[3]) == event.int("virtio_scsi.event.ascq"))
            } else if event.int("virtio_scsi.event.type") == 1 && event.int("virtio_scsi.event.reason") != 0 {
                #expect(tsharkNumber(row[2]) == 0x3f && tsharkNumber(row[3]) == 0x0e, "reported LUNs changed")
            }
        }
    }

    @Test func serviceResponseTimes() throws {
        let capture = ReadGoldenTests.capturePath("basic")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-srt-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        _ = try VQTapBinary.run(["read", capture, "-w", out, "--encap", "iscsi"])
        guard let run = try TShark.run(["-r", out, "-q", "-z", "scsi,srt,0"]) else { return }
        #expect(run.status == 0)
        // vqtap's latencies of good completions, by opcode.
        var latencies: [Int: [Int]] = [:]
        for r in try vqtapJSON(capture) where r.string("record") == "used" && r.int("virtio_scsi.status") == 0 {
            if let op = r.int("request.virtio_scsi.cdb.opcode"), let ns = r.int("latency_ns") { latencies[op, default: []].append(ns) }
        }
        var rows = 0
        for line in run.stdout.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count >= 6, let index = Int(words[0]), let calls = Int(words[words.count - 5]),
                  let sum = Double(words[words.count - 1]) else { continue }
            rows += 1
            let want = latencies[index] ?? []
            #expect(calls == want.count, "opcode \(index)")
            #expect(abs(sum - Double(want.reduce(0, +)) / 1e9) < 1e-6, "opcode \(index): sum \(sum)")
        }
        // READ(10), WRITE(10), READ(16), SYNCHRONIZE CACHE(10), READ CAPACITY(10), REPORT LUNS.
        #expect(rows == 6)
    }
}

/// The iSCSI PDU layouts the dissector depends on (RFC 7143; virtio-facts.md).
@Suite struct ISCSIPDULayoutTests {
    @Test func commandWithoutDataHasNoExpectedLength() {
        var w = ByteWriter()
        ISCSIExport.command(lun: [1, 0, 0x40, 0, 0, 0, 0, 0], tag: 0x0412_3000, attribute: .simple, cdb: [0, 0, 0, 0, 0, 0],
                            read: false, write: false, expectedLength: 4096, dataOut: [], commandSN: 7, into: &w)
        #expect(w.bytes.count == 48)
        #expect(w.bytes[0] == 0x01)
        #expect(w.bytes[1] == 0x81)  // F, SIMPLE, neither R nor W
        #expect(Array(w.bytes[16..<20]) == [0x04, 0x12, 0x30, 0x00])
        #expect(Array(w.bytes[20..<24]) == [0, 0, 0, 0])
    }

    @Test func thirtyTwoByteCDBTravelsInAnExtendedCDBHeader() {
        var cdb: [UInt8] = [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09] + Array(repeating: 0, count: 22)
        cdb[31] = 1
        var w = ByteWriter()
        ISCSIExport.command(lun: [], tag: 1, attribute: .ordered, cdb: cdb, read: true, write: false, expectedLength: 512,
                            dataOut: [], commandSN: 1, into: &w)
        #expect(w.bytes[1] == 0x80 | 0x40 | 2)
        #expect(w.bytes[4] == 5)  // AHS words: 4-byte header + 16 CDB bytes
        #expect(Array(w.bytes[20..<24]) == [0, 0, 2, 0])
        #expect(Array(w.bytes[32..<48]) == Array(cdb[0..<16]))
        #expect(Array(w.bytes[48..<52]) == [0, 17, 1, 0])  // AHSLength 17, type 1 (extended CDB)
        #expect(Array(w.bytes[52..<68]) == Array(cdb[16..<32]))
        #expect(w.bytes.count == 68)
    }

    @Test func exportedPDUTagsNameTheIscsiDissector() {
        var w = ByteWriter()
        ISCSIExport.tags(outbound: true, port: 40002, into: &w)
        #expect(Array(w.bytes[0..<12]) == [0, 12, 0, 8] + Array("iscsi".utf8) + [0, 0, 0])
        #expect(Array(w.bytes.suffix(4)) == [0, 0, 0, 0])
        #expect(ISCSIExport.initiatorPort(deviceInstance: 1, queue: 3) == 40259)
    }
}
