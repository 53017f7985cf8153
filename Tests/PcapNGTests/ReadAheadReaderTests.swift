import Foundation
import PcapNG
import Testing
import VQRecord
import VQWire

/// Every packet of a reader (read ahead or libpcap directly): (timestamp, bytes) in order,
/// and the error that ended the file, if any.
private func packets<Reader: PacketReader>(_ reader: Reader) -> (packets: [(UInt64, [UInt8])], error: PcapReadError?) {
    var out: [(UInt64, [UInt8])] = []
    do {
        while let p = try reader.nextPacket({ ns, raw throws(DecodeError) in (ns, Array(raw)) }) { out.append(p) }
    } catch {
        return (out, error)
    }
    return (out, nil)
}

private func same(_ a: [(UInt64, [UInt8])], _ b: [(UInt64, [UInt8])]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
}

/// `vqtap stats` reads through libpcap on a second thread: the packets, their order, the
/// frame numbers and the error at a cut must be those of the direct reader.
@Suite struct ReadAheadReaderTests {
    /// 301 records; chunks of 4 KiB hold ~15 of them, so most chunk ends split a packet off
    /// to the next chunk, and a 64 KiB record is larger than any chunk.
    static func writeFile(_ name: String, bigRecord: Bool = true) throws -> (path: String, records: [CaptureRecord]) {
        let path = temporaryPath(name)
        var records = sampleRecords(count: 300)
        if bigRecord {
            let big = [UInt8](repeating: 0xab, count: 65_000)
            records.insert(CaptureRecord(kind: .available, queue: 2, head: 7, transactionID: 999, ringIndex: 7,
                                         body: .chain([RecordSegment(address: 0x9000, length: 65_000, flags: 0, bytes: big)]),
                                         timestampNs: records[150].timestampNs), at: 150)
        }
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        for r in records { try w.write(r) }
        try w.close()
        return (path, records)
    }

    @Test(arguments: [4096, 1 << 20])
    func givesWhatLibpcapGivesInOrder(chunkBytes: Int) throws {
        let (path, records) = try Self.writeFile("ahead-\(chunkBytes).pcapng")
        let direct = packets(try PcapFileReader(path: path))
        let ahead = ReadAheadReader(try PcapFileReader(path: path), chunkBytes: chunkBytes, depth: 2)
        let read = packets(ahead)
        #expect(direct.error == nil && read.error == nil)
        #expect(read.packets.count == records.count)
        #expect(same(read.packets, direct.packets))
        #expect(ahead.frame == records.count)
        let decoded = try read.packets.map { try CaptureRecord(decoding: $0.1, timestampNs: $0.0) }
        #expect(decoded == records)
        // After the end: still the end.
        #expect(try ahead.nextPacket({ _, _ throws(DecodeError) in 1 }) == nil)
    }

    @Test func aCutFileGivesEveryCompletePacketThenTheErrorWithItsFrame() throws {
        let (path, _) = try Self.writeFile("ahead-cut.pcapng", bigRecord: false)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let enhanced = blocks(bytes).filter { $0.type == 6 }
        let cutPath = temporaryPath("ahead-cut-prefix.pcapng")
        // Inside the 200th record's block.
        try Data(bytes[0..<(enhanced[199].offset + 20)]).write(to: URL(fileURLWithPath: cutPath))
        let direct = packets(try PcapFileReader(path: cutPath))
        let read = packets(ReadAheadReader(try PcapFileReader(path: cutPath), chunkBytes: 4096, depth: 2))
        #expect(read.packets.count == 199)
        #expect(same(read.packets, direct.packets))
        guard case .cutShort(_, let frame, _)? = read.error else { Issue.record("\(String(describing: read.error))"); return }
        #expect(frame == 200)
        #expect(read.error == direct.error)
    }

    @Test func aBadRecordNamesItsFrame() throws {
        let (path, _) = try Self.writeFile("ahead-bad.pcapng", bigRecord: false)
        let reader = ReadAheadReader(try PcapFileReader(path: path), chunkBytes: 4096, depth: 2)
        var n = 0
        do {
            while try reader.nextPacket({ _, _ throws(DecodeError) -> Bool in
                n += 1
                if n == 42 { throw DecodeError.truncated("test", at: 3, needed: 4, available: 1) }
                return true
            }) != nil {}
            Issue.record("no error")
        } catch {
            guard case .badRecord(_, let frame, _) = error else { Issue.record("\(error)"); return }
            #expect(frame == 42)
        }
    }

    /// Stopping early (`-c`) ends the reading thread while it waits for a free chunk.
    @Test func closingEarlyStopsTheReadingThread() throws {
        let (path, _) = try Self.writeFile("ahead-close.pcapng")
        let reader = ReadAheadReader(try PcapFileReader(path: path), chunkBytes: 4096, depth: 2)
        #expect(try reader.nextPacket({ ns, _ throws(DecodeError) in ns }) != nil)
        usleep(50_000)  // the thread has filled both chunks and waits
        reader.close()
        reader.close()
        #expect(reader.frame == 1)
    }

    @Test func anEmptyCaptureEndsAtOnce() throws {
        let path = temporaryPath("ahead-empty.pcapng")
        var w = try CaptureFileWriter(path: path, encoder: RecordPacketEncoder())
        try w.close()
        let read = packets(ReadAheadReader(try PcapFileReader(path: path)))
        #expect(read.packets.isEmpty)
        #expect(read.error == nil)
    }
}
