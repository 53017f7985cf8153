import Foundation
import Testing
@testable import VirtioTap

/// The `vqtap` executable that `swift build --build-tests` put beside this test bundle.
enum TapBinary {
    static var url: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.pathExtension == "xctest" || dir.lastPathComponent == "Contents" || dir.lastPathComponent == "MacOS" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("vqtap")
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts the binary; `whileRunning` runs before waiting for it to exit.
    static func run(_ args: [String], whileRunning: () throws -> Void = {}) throws -> Run {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        try whileRunning()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// A virtio-scsi READ(10) request header: LUN 0:0, tag, simple, CDB of 32 bytes.
func read10(tag: UInt64, lba: UInt32, blocks: UInt16) -> [UInt8] {
    var b: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0]
    withUnsafeBytes(of: tag.littleEndian) { b.append(contentsOf: $0) }
    b += [0, 0, 0]
    var cdb = [UInt8](repeating: 0, count: 32)
    cdb[0] = 0x28
    withUnsafeBytes(of: lba.bigEndian) { for (k, v) in $0.enumerated() { cdb[2 + k] = v } }
    withUnsafeBytes(of: blocks.bigEndian) { for (k, v) in $0.enumerated() { cdb[7 + k] = v } }
    return b + cdb
}

@Suite(.serialized) struct CaptureCLITests {
    @Test func inflightListsWhatIsOutstandingOldestFirstWithDecodes() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        try dev.post(head: 1, request: read10(tag: 0x11, lba: 100, blocks: 8), responseLength: 108)
        try dev.post(head: 0, request: read10(tag: 0x22, lba: 200, blocks: 16), responseLength: 108)
        try dev.post(head: 2, request: read10(tag: 0x33, lba: 300, blocks: 1), responseLength: 108)
        try dev.complete(head: 1, response: [UInt8](repeating: 0, count: 12))
        let r = try TapBinary.run(["inflight", "--layout", dev.layoutPath])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let headers = lines.filter { $0.hasPrefix("q2 ") }
        #expect(headers.count == 2)
        #expect(headers.first?.hasPrefix("q2 request0 ring index 1 head 0: age >= ") == true)
        #expect(headers.last?.hasPrefix("q2 request0 ring index 2 head 2: age >= ") == true)
        #expect(lines.filter { $0.contains("scsi9 request0 > cmd-req 0:0") && $0.contains("Read(10)") }.count == 2)
        #expect(lines.filter { $0.contains("Logical block address: ") }.count == 2)
        #expect(r.stdout.contains("lba 200"))
        #expect(r.stdout.contains("lba 300"))
        #expect(lines.last == "2 chains outstanding")
    }

    @Test func captureStopsAfterCountAndPrintsCountersPerQueue() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        try dev.post(head: 0, request: read10(tag: 0x44, lba: 7, blocks: 8), responseLength: 108)
        try dev.post(head: 1, request: read10(tag: 0x55, lba: 9, blocks: 8), responseLength: 108)
        let r = try TapBinary.run(["capture", "--layout", dev.layoutPath, "-c", "2"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.contains("Read(10)") && $0.contains("pre-attach") }.count == 2)
        #expect(r.stderr == """
            q2 request0: captured 2 torn 0 orphan 0 dropped 0 malformed 0
            total: captured 2 torn 0 orphan 0 dropped 0 malformed 0

            """)
    }

    @Test func captureWritesJSONLines() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        try dev.post(head: 0, request: read10(tag: 0x66, lba: 1, blocks: 1), responseLength: 108)
        let r = try TapBinary.run(["capture", "--layout", dev.layoutPath, "-c", "1", "-T", "json", "-q"])
        #expect(r.status == 0)
        #expect(r.stdout == "")
        let j = try TapBinary.run(["capture", "--layout", dev.layoutPath, "-c", "1", "-T", "json"])
        let objects = try j.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["record"] as? String } == ["state", "available"])
        #expect(objects.last?["head"] as? Int == 0)
    }

    @Test func aTruncatedMemoryFileEndsTheCaptureWithStatus3() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        let r = try TapBinary.run(["capture", "--layout", dev.layoutPath, "--duration", "20s", "-q"]) {
            // Truncated once the tap has mapped it (attached), however slow the start.
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline && !Self.tapMaps(dev.memoryPath, layout: dev.layoutPath) { usleep(20_000) }
            usleep(100_000)
            #expect(truncate(dev.memoryPath, 4096) == 0)
        }
        #expect(r.status == 3)
        #expect(r.stderr.hasSuffix("vqtap: capture: the device went away: guest memory went away (a memory file was truncated)\n"))
        #expect(r.stderr.hasPrefix("q2 request0: captured 0 torn 0 orphan 0 dropped 0 malformed 0\n"))
    }

    /// Whether the tap started on `layout` has `path` mapped. Matching the command line
    /// matters: a child of this process between fork and exec shows this process's maps.
    static func tapMaps(_ path: String, layout: String) -> Bool {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { $0.allSatisfy(\.isNumber) } ?? []
        return pids.contains { pid in
            guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
                  String(decoding: cmdline, as: UTF8.self).contains(layout) else { return false }
            return (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8))?.contains(path) == true
        }
    }

    @Test func usageErrorsAndAMissingLayoutExitWith1() throws {
        let missing = try TapBinary.run(["capture", "--layout", "/nonexistent/vqtap.layout"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "vqtap: capture: /nonexistent/vqtap.layout: no such file\n")
        let cdb = try TapBinary.run(["capture", "--layout", "x", "--cdb-size", "999"])
        #expect(cdb.status == 1)
        #expect(cdb.stderr.contains("--cdb-size: must be 0 to 256"))
        let dur = try TapBinary.run(["capture", "--layout", "x", "--duration", "soon"])
        #expect(dur.status == 1)
        #expect(dur.stderr.contains("--duration: 'soon' is not a duration"))
        let timeout = try TapBinary.run(["inflight", "--layout", "/nonexistent/vqtap.layout", "--wait", "--wait-timeout", "50ms"])
        #expect(timeout.status == 1)
        #expect(timeout.stderr == "vqtap: inflight: gave up waiting: /nonexistent/vqtap.layout: no such file\n")
    }
}
