import Foundation
import PcapNG
import Testing
import VQRecord
import VQWire

/// Records of every kind, with timestamps 1 ms apart.
func sampleRecords(count: Int = 12, start: UInt64 = 1_700_000_000_000_000_000) -> [CaptureRecord] {
    var out: [CaptureRecord] = [
        CaptureRecord(kind: .deviceState, queue: 2, body: .deviceState(DeviceStateMarker(
            state: .attached, generation: 1, features: 0x1_3000_0006, queueSize: 128, queueCount: 3, deviceName: "scsi0")),
            timestampNs: start),
    ]
    for i in 0..<count {
        let ts = start + UInt64(i + 1) * 1_000_000
        let header = [UInt8](repeating: UInt8(i & 0xff), count: 51)
        if i % 2 == 0 {
            out.append(CaptureRecord(kind: .available, queue: 2, head: UInt16(i), flags: i % 4 == 0 ? [.indirect] : [],
                                     transactionID: UInt64(i / 2 + 1), ringIndex: UInt16(i),
                                     body: .chain([RecordSegment(address: 0x1000, length: 51, flags: 1, bytes: header),
                                                   RecordSegment(address: 0x2000, length: 108, flags: 2)]), timestampNs: ts))
        } else {
            out.append(CaptureRecord(kind: .used, queue: 2, head: UInt16(i - 1), usedLength: 108, transactionID: UInt64(i / 2 + 1),
                                     latencyNs: 1_000_000, ringIndex: UInt16(i),
                                     body: .chain([RecordSegment(address: 0x2000, length: 108, flags: 2, bytes: Array(repeating: 0, count: 107))]),
                                     timestampNs: ts))
        }
    }
    out.append(CaptureRecord(kind: .drop, queue: 0, body: .drop(DropMarker(count: 3, reason: .availableLapped)), timestampNs: start + 99_000_000))
    return out
}

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcapng-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

func readAll(_ path: String) throws -> (records: [CaptureRecord], error: PcapReadError?) {
    let reader = try PcapFileReader(path: path)
    var out: [CaptureRecord] = []
    do {
        while let r = try reader.nextRecord() { out.append(r) }
    } catch {
        return (out, error)
    }
    return (out, nil)
}

/// The blocks of a little-endian pcapng file: (type, offset, length).
func blocks(_ bytes: [UInt8]) -> [(type: UInt32, offset: Int, length: Int)] {
    var out: [(UInt32, Int, Int)] = []
    var r = ByteReader(bytes)
    while r.remaining >= 8 {
        let at = r.offset
        guard let type = try? r.readLE32("type"), let length = try? r.readLE32("length"), length >= 12,
              (try? r.skip(Int(length) - 8, "body")) != nil else { break }
        out.append((type, at, Int(length)))
    }
    return out
}

@Suite struct CaptureFileWriterTests {
    @Test func roundTripThroughLibpcap() throws {
        let path = temporaryPath("round.pcapng")
        let records = sampleRecords()
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        for r in records { try w.write(r) }
        try w.close()
        let (back, error) = try readAll(path)
        #expect(error == nil)
        #expect(back == records)
        #expect(w.packetCount == UInt64(records.count))
    }

    @Test func aRecordLongerThanLibpcapReadsIsCutToFitAndStillReads() throws {
        // `-s 0` on a 1 MiB data-in buffer: libpcap refuses packets over 262,144 bytes.
        let path = temporaryPath("huge.pcapng")
        let payload = [UInt8](repeating: 0xab, count: 1 << 20)
        let huge = CaptureRecord(kind: .used, queue: 2, head: 1, usedLength: UInt32(payload.count + 108), transactionID: 1,
                                 body: .chain([RecordSegment(address: 0x2000, length: 108, flags: 2, bytes: [UInt8](repeating: 1, count: 108)),
                                               RecordSegment(address: 0x10_0000, length: UInt32(payload.count), flags: 2, bytes: payload)]),
                                 timestampNs: 5)
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        try w.write(huge)
        for r in sampleRecords(count: 2) { try w.write(r) }
        try w.close()
        let (back, error) = try readAll(path)
        #expect(error == nil)
        #expect(back.count == 5)
        let cut = try #require(back.first)
        #expect(cut.flags.contains(.snaplenTruncated))
        #expect(cut.segments.map(\.length) == [108, UInt32(payload.count)])
        #expect(cut.segments[0].bytes == [UInt8](repeating: 1, count: 108))
        #expect(cut.segments[1].bytes.count > 200_000)
        #expect(cut.segments[1].bytes.allSatisfy { $0 == 0xab })
        #expect(cut.encodedLength <= CaptureRecord.maxFileRecordLength)
    }

    @Test func blockStructure() throws {
        let path = temporaryPath("blocks.pcapng")
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder(), options: .init(
            hardware: "x86_64", os: "Linux", userApplication: "vqtap test",
            queueName: { _, q in q == 0 ? "controlq" : "request\(Int(q) - 2)" }))
        for r in sampleRecords() { try w.write(r) }
        try w.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let b = blocks(bytes)
        // SHB, IDB request0, 1 marker + 12 chain EPBs, IDB controlq, drop EPB, 2 ISBs.
        #expect(b.map(\.type) == [0x0A0D0D0A, 1] + Array(repeating: 6, count: 13) + [1, 6, 5, 5])
        #expect(b.last.map { $0.offset + $0.length } == bytes.count)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("scsi0/request0"))
        #expect(text.contains("scsi0/controlq"))
        #expect(text.contains("vqtap test"))
        #expect(text.contains("features 0x130000006"))
        // EPB direction flags: available outbound (2), used inbound (1).
        let epb = b[3]
        let flagsAt = epb.offset + 28 + CaptureRecord.headerLength + 20 + 52 + 20
        #expect(bytes[flagsAt..<flagsAt + 8] == [2, 0, 4, 0, 2, 0, 0, 0])
    }

    @Test func emptyCaptureReads() throws {
        let path = temporaryPath("empty.pcapng")
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        try w.close()
        let (back, error) = try readAll(path)
        #expect(back.isEmpty)
        #expect(error == nil)
    }

    @Test func fileMode0600() throws {
        let path = temporaryPath("mode.pcapng")
        _ = FileManager.default.createFile(atPath: path, contents: Data(), attributes: [.posixPermissions: 0o644])
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        try w.close()
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func statisticsBlocksCountRecordsAndDrops() throws {
        let path = temporaryPath("isb.pcapng")
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        for r in sampleRecords() { try w.write(r) }
        #expect(w.statistics.map(\.1.records) == [13, 0])
        #expect(w.statistics.map(\.1.dropped) == [0, 3])
        try w.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let isb = blocks(bytes).filter { $0.type == 5 }
        #expect(isb.count == 2)
        // isb_ifdrop of the second interface: option 5 at the end, before opt_endofopt.
        if let last = isb.last {
            var r = ByteReader(Array(bytes[last.offset + last.length - 20..<last.offset + last.length - 4]))
            #expect(try r.readLE16("code") == 5)
            #expect(try r.readLE16("len") == 8)
            #expect(try r.readLE64("drop") == 3)
        }
    }

    @Test func cutAtEveryOffsetOfTheLastBlockKeepsCompleteRecords() throws {
        let path = temporaryPath("cut.pcapng")
        let records = sampleRecords(count: 4)
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        for r in records { try w.write(r) }
        try w.flush()  // no ISBs: the last block is the last record's
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        guard let last = blocks(bytes).last else { Issue.record("no blocks"); return }
        #expect(last.type == 6)
        let cutPath = temporaryPath("cut-prefix.pcapng")
        for cut in last.offset..<bytes.count {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: cutPath))
            let (back, error) = try readAll(cutPath)
            #expect(back == Array(records.dropLast()), "cut at \(cut)")
            if cut > last.offset {
                guard case .cutShort(_, let frame, _)? = error else { Issue.record("cut at \(cut): \(String(describing: error))"); continue }
                #expect(frame == records.count)
            } else {
                #expect(error == nil)
            }
        }
    }

    /// A closed file ends with statistics blocks: cut inside them, every record still reads.
    @Test func cutInsideTheClosingStatisticsKeepsEveryRecord() throws {
        let path = temporaryPath("cut-isb.pcapng")
        let records = sampleRecords(count: 4)
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        for r in records { try w.write(r) }
        try w.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        guard let last = blocks(bytes).last else { Issue.record("no blocks"); return }
        #expect(last.type == 5)
        let cutPath = temporaryPath("cut-isb-prefix.pcapng")
        for cut in last.offset..<bytes.count {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: cutPath))
            let (back, error) = try readAll(cutPath)
            #expect(back == records, "cut at \(cut)")
            if cut > last.offset {
                guard case .cutShort? = error else { Issue.record("cut at \(cut): \(String(describing: error))"); continue }
            }
        }
    }

    @Test func rotationBySize() throws {
        let path = temporaryPath("rot.pcapng")
        let records = sampleRecords(count: 40)
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder(),
                                      options: .init(rotation: RotationOptions(maxFileBytes: 2000), bufferBytes: 64))
        for r in records { try w.write(r) }
        try w.close()
        #expect(w.files.count >= 3)
        #expect(w.files.first == path)
        #expect(w.files.dropFirst().first == path + "1")
        var all: [CaptureRecord] = []
        for f in w.files {
            let (back, error) = try readAll(f)
            #expect(error == nil)
            #expect(!back.isEmpty)
            all += back
            let size = (try FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0
            #expect(size < 2000 + 600, "\(f) is \(size) bytes")
        }
        #expect(all == records)
    }

    @Test func rotationRingOfFiles() throws {
        let path = temporaryPath("ring.pcapng")
        let records = sampleRecords(count: 60)
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder(),
                                      options: .init(rotation: RotationOptions(maxFileBytes: 1500, fileCount: 3), bufferBytes: 64))
        for r in records { try w.write(r) }
        try w.close()
        #expect(w.files.count > 3)
        #expect(Set(w.files) == [path + "0", path + "1", path + "2"])
        // The newest file ends with the last record.
        if let newest = w.files.last {
            let (back, _) = try readAll(newest)
            #expect(back.last == records.last)
        }
    }

    @Test func rotationByTime() throws {
        let path = temporaryPath("time.pcapng")
        let records = sampleRecords(count: 20)  // 1 ms apart
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder(),
                                      options: .init(rotation: RotationOptions(maxFileDurationNs: 5_000_000)))
        for r in records { try w.write(r) }
        try w.close()
        var all: [CaptureRecord] = []
        for f in w.files {
            let (back, _) = try readAll(f)
            if let first = back.first, let last = back.last, back.count > 1 {
                #expect(last.timestampNs - first.timestampNs < 5_000_000 || f == w.files.last)
            }
            all += back
        }
        #expect(w.files.count == 6)  // 21 records in 5 ms steps, then the drop 79 ms later
        #expect(all == records)
    }

    @Test func invalidOptions() {
        #expect(throws: PcapNGWriteError.invalidOptions("-C and -G need a file name, not standard output")) {
            _ = try CaptureFileWriter(path: "-", encoder: RecordPacketEncoder(), options: .init(rotation: RotationOptions(maxFileBytes: 10)))
        }
        #expect(throws: PcapNGWriteError.invalidOptions("-W goes with -C or -G")) {
            _ = try CaptureFileWriter(path: temporaryPath("w.pcapng"), encoder: RecordPacketEncoder(), options: .init(rotation: RotationOptions(fileCount: 2)))
        }
    }

    @Test func diskFullIsAClearError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { Issue.record("/dev/full missing"); return }
        #expect(throws: PcapNGWriteError.diskFull(path: "/dev/full")) {
            var w = try CaptureFileWriter(path: "/dev/full", encoder: RecordPacketEncoder())
            try w.close()
        }
    }

    @Test func unreadableAndWrongLinkType() throws {
        #expect(throws: PcapReadError.self) { _ = try PcapFileReader(path: temporaryPath("missing.pcapng")) }
        let path = temporaryPath("ether.pcap")
        // A classic pcap header with link type 1 (Ethernet).
        var w = ByteWriter()
        w.writeLE32(0xa1b2c3d4); w.writeLE16(2); w.writeLE16(4); w.writeLE32(0); w.writeLE32(0); w.writeLE32(65535); w.writeLE32(1)
        try Data(w.bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: PcapReadError.wrongLinkType(path: path, linkType: 1, name: "EN10MB")) { _ = try PcapFileReader(path: path) }
    }

    /// Classic pcap (nanosecond magic) reads through the same reader.
    @Test func classicPcapReads() throws {
        let records = sampleRecords()
        var w = ByteWriter()
        w.writeLE32(0xa1b2_3c4d); w.writeLE16(2); w.writeLE16(4); w.writeLE32(0); w.writeLE32(0); w.writeLE32(262_144); w.writeLE32(147)
        for r in records {
            let bytes = r.encoded
            w.writeLE32(UInt32(r.timestampNs / 1_000_000_000))
            w.writeLE32(UInt32(r.timestampNs % 1_000_000_000))
            w.writeLE32(UInt32(bytes.count))
            w.writeLE32(UInt32(bytes.count))
            w.writeBytes(bytes)
        }
        let path = temporaryPath("classic.pcap")
        try Data(w.bytes).write(to: URL(fileURLWithPath: path))
        let (back, error) = try readAll(path)
        #expect(error == nil)
        #expect(back == records)
    }

    @Test func encodedLengthMatchesEncoding() {
        for r in sampleRecords() {
            #expect(r.encodedLength == r.encoded.count)
            let b = BlockBuffer(capacity: 8)
            r.encode(into: b)
            #expect(b.array == r.encoded)
        }
        var cut = sampleRecords()[1]
        cut.flags = [.snaplenTruncated]
        cut.body = .chain([RecordSegment(address: 0, length: 4097, flags: 0, bytes: [1, 2, 3])])
        #expect(cut.originalLength == 56 + 20 + 4100)
    }
}
