import Foundation
import Testing
@testable import VirtioTap

@Suite(.serialized) struct MappedFileTests {
    func makeFile(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "vqtap-mapped-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsWhatTheFileHolds() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = try makeFile((0..<(2 * page)).map { UInt8(truncatingIfNeeded: $0) })
        defer { unlink(path) }
        let m = try MappedFile(path: path, length: 2 * page)
        #expect(m.base.load(fromByteOffset: 5, as: UInt8.self) == 5)
        #expect(m.base.load(fromByteOffset: page + 1, as: UInt8.self) == UInt8(truncatingIfNeeded: page + 1))
        #expect(m.isIntact)
    }

    @Test func seesWritesMadeAfterMapping() throws {
        let path = try makeFile([UInt8](repeating: 0, count: 4096))
        defer { unlink(path) }
        let m = try MappedFile(path: path, length: 4096)
        let h = try #require(FileHandle(forWritingAtPath: path))
        try h.seek(toOffset: 100)
        h.write(Data([0xab]))
        try h.close()
        #expect(m.base.load(fromByteOffset: 100, as: UInt8.self) == 0xab)
    }

    @Test func aTruncatedFileReadsZerosInsteadOfCrashing() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = try makeFile([UInt8](repeating: 0x5a, count: 4 * page))
        defer { unlink(path) }
        let m = try MappedFile(path: path, length: 4 * page)
        #expect(m.base.load(fromByteOffset: 3 * page, as: UInt8.self) == 0x5a)
        #expect(truncate(path, off_t(page)) == 0)
        // Without the guard this read is a SIGBUS that kills the test process.
        #expect(m.base.load(fromByteOffset: 3 * page + 7, as: UInt8.self) == 0)
        #expect(m.memoryWentAway)
        #expect(!m.isIntact)
        #expect(m.base.load(fromByteOffset: 10, as: UInt8.self) == 0x5a)
    }

    @Test func refusesWhatCannotBeMapped() throws {
        #expect(throws: TapError.self) { _ = try MappedFile(path: "/nonexistent/vqtap", length: 4096) }
        let path = try makeFile([1, 2, 3])
        defer { unlink(path) }
        do {
            _ = try MappedFile(path: path, length: 4096)
            Issue.record("mapped more than the file holds")
        } catch {
            #expect(error.description == "\(path): 3 bytes, too small for 4096 bytes at offset 0")
        }
    }
}
