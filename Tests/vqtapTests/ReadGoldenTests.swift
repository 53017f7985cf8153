import Foundation
import PcapNG
import Testing
import VQAnalysis
import VQOutput
import VQRecord
import VQWire

/// `vqtap read` on samples/captures: each capture (written by the PcapNG writer from the
/// record streams in ReadGoldenSamples.swift) reads back to exactly its records, prints what
/// live capture prints for them, and matches its golden output in each tier. Regenerate
/// captures and outputs with VQTAP_REGENERATE=1; a regenerating run fails.
@Suite struct ReadGoldenTests {
    static let dir = VQTapBinary.root.appendingPathComponent("samples/captures")
    static var regenerate: Bool { ProcessInfo.processInfo.environment["VQTAP_REGENERATE"] != nil }
    static let tiers: [(suffix: String, args: [String])] = [(".txt", []), ("-v.txt", ["-v"]), ("-vv.txt", ["-vv"]), (".json", ["-T", "json"]), ("-q.txt", ["-q"])]

    /// Fixed section header options, so regenerated files are byte-identical on any machine.
    static let options = CaptureFileOptions(
        hardware: "x86_64", os: "Linux", userApplication: "vqtap samples",
        queueName: { _, q in q == 0 ? "controlq" : q == 1 ? "eventq" : "request\(Int(q) - 2)" })

    static func capturePath(_ name: String) -> String { dir.appendingPathComponent("\(name).pcapng").path }

    static func writeCapture(_ name: String, _ records: [CaptureRecord]) throws {
        var w = try CaptureFileWriter(path: capturePath(name), encoder: RecordPacketEncoder(), options: options)
        for r in records { try w.write(r) }
        try w.close()
    }

    static func transcript(_ r: VQTapRun) -> String { DecodeGoldenTests.transcript(r) }

    static func check(_ got: String, _ file: URL) throws {
        if regenerate {
            try got.write(to: file, atomically: true, encoding: .utf8)
            Issue.record("regenerated \(file.lastPathComponent); rerun without VQTAP_REGENERATE")
            return
        }
        let want = try? String(contentsOf: file, encoding: .utf8)
        #expect(got == want, "\(file.lastPathComponent) differs from its golden file")
    }

    /// Constructed streams, then captures made by a committed command (make-sim-capture).
    static let names = CaptureSamples.all.map(\.name) + ["sim", "qemu"]

    /// The records a sample holds: constructed, or read from the committed capture.
    static func records(_ name: String) throws -> [CaptureRecord] {
        if let constructed = CaptureSamples.all.first(where: { $0.name == name }) { return constructed.records }
        let reader = try PcapFileReader(path: capturePath(name))
        var out: [CaptureRecord] = []
        while let r = try reader.nextRecord() { out.append(r) }
        return out
    }

    @Test(arguments: names)
    func capture(_ name: String) throws {
        let records = try Self.records(name)
        if Self.regenerate && CaptureSamples.all.contains(where: { $0.name == name }) { try Self.writeCapture(name, records) }
        // The committed capture holds exactly the constructed records.
        let reader = try PcapFileReader(path: Self.capturePath(name))
        var back: [CaptureRecord] = []
        while let r = try reader.nextRecord() { back.append(r) }
        #expect(back == records)

        for tier in Self.tiers {
            let run = try VQTapBinary.run(["read", Self.capturePath(name)] + tier.args)
            try Self.check(Self.transcript(run), Self.dir.appendingPathComponent("expected/\(name)\(tier.suffix)"))
        }
    }

    /// What live capture prints (RecordDecoder + RecordFormatter, as RecordPresenter does) is what read prints.
    @Test(arguments: names)
    func sameAsLive(_ name: String) throws {
        let records = try Self.records(name)
        #expect(!records.isEmpty)
        for (verbosity, json) in [(0, false), (1, false), (2, false), (0, true)] {
            var decoder = RecordDecoder()
            let formatter = RecordFormatter(verbosity: verbosity)
            let live = records.map { r in
                let d = decoder.decode(r)
                return json ? formatter.json(d) : formatter.text(d)
            }.joined(separator: "\n") + "\n"
            var args = ["read", Self.capturePath(name)]
            if verbosity > 0 { args.append("-" + String(repeating: "v", count: verbosity)) }
            if json { args += ["-T", "json"] }
            let run = try VQTapBinary.run(args)
            #expect(run.status == 0)
            #expect(run.stdout == live, "\(name) -v\(verbosity) json \(json)")
        }
    }

    @Test func standardInputAndDashR() throws {
        let path = Self.capturePath("basic")
        let direct = try VQTapBinary.run(["read", path])
        let viaR = try VQTapBinary.run(["read", "-r", path])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let viaStdin = try VQTapBinary.run(["read", "-"], stdinData: data)
        #expect(viaR.stdout == direct.stdout)
        #expect(viaStdin.stdout == direct.stdout)
        #expect(viaStdin.status == 0)
        let two = try VQTapBinary.run(["read", path, "-c", "2"])
        #expect(two.stdout.split(separator: "\n").count == 2)
    }

    /// A capture cut inside its last block at every offset: every complete record prints,
    /// then one message naming the file and the frame, exit status 2.
    @Test func cutShortAtEveryOffsetOfTheLastBlock() throws {
        let path = Self.capturePath("basic")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let records = CaptureSamples.basic
        let full = try VQTapBinary.run(["read", path])
        let lines = full.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == records.count)
        // The last enhanced packet block (the interface statistics blocks follow it).
        var offset = 0, lastEPB = 0, lastEPBEnd = 0
        while offset + 8 <= bytes.count {
            let type = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            let length = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            if type == 6 { lastEPB = offset; lastEPBEnd = offset + length }
            offset += max(length, 12)
        }
        let cutFile = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-cut-\(getpid()).pcapng")
        defer { try? FileManager.default.removeItem(at: cutFile) }
        for cut in stride(from: lastEPB + 1, to: lastEPBEnd, by: 1) {
            try Data(bytes[0..<cut]).write(to: cutFile)
            let run = try VQTapBinary.run(["read", cutFile.path])
            #expect(run.status == 2, "cut at \(cut)")
            #expect(run.stdout == lines.dropLast().joined(separator: "\n") + "\n", "cut at \(cut)")
            #expect(run.stderr.contains("\(cutFile.path): frame \(records.count): the file appears to have been cut short"), "cut at \(cut): \(run.stderr)")
        }
    }

    /// A record of an unknown version in the middle: reported with its frame, the others decode.
    @Test func unknownRecordVersion() throws {
        var records = CaptureSamples.basic
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-v2-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var w = try CaptureFileWriter(path: path, encoder: VersionPatchingEncoder(patchIndex: 5), options: Self.options)
        for r in records { try w.write(r) }
        try w.close()
        let run = try VQTapBinary.run(["read", path, "-q"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("\(path): frame 6: unsupported: vqtap.record.version"))
        records.remove(at: 5)
        #expect(run.stdout.hasPrefix("\(records.count) records"))
        #expect(run.stdout.contains("0 undecodable, 1 bad records"))
    }

    @Test func wrongLinkTypeAndMissingFile() throws {
        let iscsi = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-iscsi-\(getpid()).pcapng").path
        defer { try? FileManager.default.removeItem(atPath: iscsi) }
        let convert = try VQTapBinary.run(["read", Self.capturePath("basic"), "-w", iscsi, "--encap", "iscsi"])
        #expect(convert.status == 0)
        #expect(convert.stdout == "")
        let run = try VQTapBinary.run(["read", iscsi])
        #expect(run.status == 1)
        #expect(run.stderr == "vqtap: read: \(iscsi): link type 252 (WIRESHARK_UPPER_PDU) is not a vqtap capture (LINKTYPE_USER0, 147)\n")
        let missing = try VQTapBinary.run(["read", "/nonexistent/x.pcapng"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("vqtap: read: /nonexistent/x.pcapng: "))
    }

    /// `read -w` rewrites a capture record for record; rotation splits it.
    @Test func convertAndRotate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-rot-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("copy.pcapng").path
        let copy = try VQTapBinary.run(["read", Self.capturePath("faults"), "-w", out, "--print"])
        #expect(copy.status == 0)
        #expect(copy.stdout == (try VQTapBinary.run(["read", Self.capturePath("faults")])).stdout)
        #expect((try VQTapBinary.run(["read", out])).stdout == copy.stdout)
        let mode = try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let ring = dir.appendingPathComponent("ring.pcapng").path
        let rot = try VQTapBinary.run(["read", Self.capturePath("basic"), "-w", ring, "-G", "1"])
        #expect(rot.status == 0)
        let bad = try VQTapBinary.run(["read", Self.capturePath("basic"), "-w", "-", "-C", "1"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("-C and -G need a file name"))
    }
}

extension ReadGoldenTests {
    /// `-w -` writes the capture to standard output; it reads back from standard input.
    @Test func writeToStandardOutputAndReadBack() throws {
        let path = Self.capturePath("control")
        let p = Process()
        p.executableURL = VQTapBinary.url
        p.arguments = ["read", path, "-w", "-"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let bytes = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(bytes.prefix(4) == Data([0x0a, 0x0d, 0x0d, 0x0a]))
        let back = try VQTapBinary.run(["read", "-"], stdinData: bytes)
        #expect(back.status == 0)
        #expect(back.stdout == (try VQTapBinary.run(["read", path])).stdout)
    }

    /// A full disk is a clear error, not a crash.
    @Test func fullDisk() throws {
        let run = try VQTapBinary.run(["read", Self.capturePath("basic"), "-w", "/dev/full"])
        #expect(run.status == 1)
        #expect(run.stderr == "vqtap: read: -w /dev/full: the disk is full; the file ends at the last complete block\n")
    }
}

/// Writes records natively but sets version 2 in one of them.
struct VersionPatchingEncoder: PacketEncoder {
    var patchIndex: Int
    var index = 0
    var linkType: LinkType { .user0 }

    mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int {
        var bytes = record.encoded
        if index == patchIndex { bytes[4] = 2 }
        index += 1
        PcapNGBlocks.appendEnhancedPacket(into: w, interface: interface, timestampNs: record.timestampNs, dataLength: bytes.count,
                                          originalLength: bytes.count, direction: record.direction) { $0.bytes(bytes) }
        return 1
    }
}
