import Foundation
import Testing
@testable import VirtioRing

@Suite struct DeviceLayoutTests {
    static let sample = DeviceLayout(
        generation: 3, status: .ready, pid: 4242,
        device: .init(type: "virtio-scsi", id: 8, name: "scsi0", path: "simulator"),
        features: 0x1_3000_0006,
        config: ["num_queues": 2, "seg_max": 254, "sense_size": 96, "cdb_size": 32],
        regions: [.init(file: "/dev/shm/vm0-ram", gpa: 0, size: 0x8000_0000),
                  .init(file: "/dev/shm/vm0-ram", offset: 0x8000_0000, gpa: 0x1_0000_0000, size: 0x8000_0000)],
        queues: [.init(index: 0, name: "controlq", size: 128, desc: 0x10_0000, avail: 0x10_0800, used: 0x10_1000),
                 .init(index: 2, size: 256, desc: 0x1_0000_0000, avail: 0x1_0000_1000, used: 0x1_0000_2000)])

    static func decode(_ json: String) throws -> DeviceLayout {
        try JSONDecoder().decode(DeviceLayout.self, from: Data(json.utf8))
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-layout-\(getpid())-\(name).json").path
    }

    /// Writes `json` to a file and loads it, returning the one-line error.
    static func loadError(_ json: String, _ name: String) -> String? {
        let path = temporaryPath(name)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            try Data(json.utf8).write(to: URL(fileURLWithPath: path))
            _ = try DeviceLayout.load(path: path)
            return nil
        } catch {
            return "\(error)".replacingOccurrences(of: path, with: "FILE")
        }
    }

    @Test func roundTripsThroughJSONAndTheFile() throws {
        let data = try JSONEncoder().encode(Self.sample)
        #expect(try JSONDecoder().decode(DeviceLayout.self, from: data) == Self.sample)
        let path = Self.temporaryPath("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.sample.write(path: path)
        #expect(try DeviceLayout.load(path: path) == Self.sample)
        #expect(Self.sample.validationProblem == nil)
    }

    @Test func addressesAndFeaturesAreHexStrings() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let text = String(decoding: try enc.encode(Self.sample), as: UTF8.self)
        #expect(text.contains(#""features":"0x130000006""#))
        #expect(text.contains(#""gpa":"0x100000000""#))
        #expect(text.contains(#""desc":"0x100000000""#))
        #expect(text.contains(#""avail":"0x100001000""#))
        #expect(text.contains(#""offset":2147483648"#), "offsets and sizes are numbers")
        #expect(text.contains(#""size":2147483648"#))
        #expect(!text.contains(#""name":null"#), "an absent queue name is left out")
    }

    struct Box: Decodable { var v: HexU64 }

    func value(_ json: String) throws -> UInt64 {
        try JSONDecoder().decode(Box.self, from: Data(("{\"v\": " + json + "}").utf8)).v.value
    }

    @Test func hexValuesAcceptDecimalStringsAndNumbers() throws {
        #expect(try value(#""0x2a""#) == 42)
        #expect(try value(#""0X2A""#) == 42)
        #expect(try value(#""43950080""#) == 43_950_080)
        #expect(try value("43950080") == 43_950_080)
        #expect(try value(#""0xffffffffffffffff""#) == UInt64.max)
        for bad in [#""0x""#, #""""#, #""0xZZ""#, #""-1""#, #""0x10000000000000000""#, #""12ab""#, "-5", "1.5"] {
            #expect(throws: DecodingError.self, "\(bad)") { try value(bad) }
        }
    }

    @Test func absentOptionalKeysTakeTheirDefaults() throws {
        let l = try Self.decode("""
        {"version": 1, "device": {"type": "virtio-scsi", "id": 8, "name": "scsi0"}, "features": "0x0",
         "regions": [{"file": "/dev/shm/x", "gpa": "0x0", "size": 4096}],
         "queues": [{"index": 2, "size": 8, "desc": "0x0", "avail": "0x80", "used": "0x100"}],
         "comment": "unknown keys are ignored"}
        """)
        #expect(l.generation == 0)
        #expect(l.status == .ready)
        #expect(l.pid == nil)
        #expect(l.config.isEmpty)
        #expect(l.device.path == nil)
        #expect(l.regions[0].offset == 0)
        #expect(l.queues[0].name == nil)
        #expect(l.validationProblem == nil)
    }

    @Test func theManPageExampleIsAValidLayout() throws {
        let man = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("man/vqtap-layout.5")
        let text = try String(contentsOf: man, encoding: .utf8)
        let example = try #require(text.components(separatedBy: ".Sh EXAMPLES").dropFirst().first)
        let body = try #require(example.components(separatedBy: ".Bd -literal -offset indent\n").dropFirst().first?
            .components(separatedBy: "\n.Ed").first)
        let l = try Self.decode(body)
        #expect(l.validationProblem == nil)
        #expect(l.queues.map(\.name) == ["controlq", "eventq", "request0", "request1"])
        #expect(l.queues.map(\.index) == [0, 1, 2, 3])
        #expect(l.features == 1 << 32 | 1 << 29 | 1 << 28 | 1 << 2 | 1 << 1)
        #expect(l.config["num_queues"] == 2)
        #expect(l.config.keys.sorted() == ["cdb_size", "cmd_per_lun", "event_info_size", "max_channel", "max_lun",
                                           "max_sectors", "max_target", "num_queues", "seg_max", "sense_size"])
        #expect(l.regions == [.init(file: "/dev/shm/vqtap-sim-4242", gpa: 0, size: 16 << 20)])
        #expect(try SplitQueueLayout(l.queues[3]).availEventAddress == 0x10a000 + 4 + 8 * 256)
    }

    @Test func aHandWrittenQEMULayoutWithDecimalAddresses() throws {
        // 4 GiB of q35 RAM and the request queue QEMU 7.2 reported (virtio-facts.md).
        let l = try Self.decode("""
        {
          "version": 1,
          "pid": 31337,
          "device": {"type": "virtio-scsi", "id": 8, "name": "scsi0", "path": "/machine/peripheral/scsi0/virtio-backend"},
          "features": "0x13000000e",
          "regions": [
            {"file": "/dev/shm/vm0-ram", "offset": 0, "gpa": "0x0", "size": 2147483648},
            {"file": "/dev/shm/vm0-ram", "offset": 2147483648, "gpa": "0x100000000", "size": 2147483648}
          ],
          "queues": [
            {"index": 2, "name": "request0", "size": 256, "desc": "43950080", "avail": 43954176, "used": "0x29eb240"}
          ]
        }
        """)
        #expect(l.validationProblem == nil)
        #expect(l.queues[0] == .init(index: 2, name: "request0", size: 256, desc: 43_950_080, avail: 43_954_176, used: 43_954_752))
        #expect(l.regions[1].offset == 0x8000_0000)
    }

    @Test func everyValidationRuleHasItsOwnMessage() {
        func problem(_ change: (inout DeviceLayout) -> Void) -> String? {
            var l = Self.sample
            change(&l)
            return l.validationProblem
        }
        let cases: [(String, (inout DeviceLayout) -> Void)] = [
            ("version 2 is not supported (this vqtap reads version 1)", { $0.version = 2 }),
            ("regions[1]: file is empty", { $0.regions[1].file = "" }),
            ("regions[0]: size is 0", { $0.regions[0].size = 0 }),
            ("regions[1]: gpa + size overflows 64 bits", { $0.regions[1].gpa = UInt64.max - 0x7fff_ffff }),
            ("regions[1]: offset + size overflows 64 bits", { $0.regions[1].offset = UInt64.max - 0x7fff_ffff }),
            ("regions[1] overlaps regions[0] in guest-physical space", { $0.regions[1].gpa = 0x7fff_f000 }),
            ("queue 0 is listed twice", { $0.queues[1].index = 0 }),
            ("queue 2: size 100 is not a power of 2 (split rings need one)", { $0.queues[1].size = 100 }),
            ("queue 2: descriptor table at 0x100000008 is not aligned to 16 bytes", { $0.queues[1].desc += 8 }),
            ("queue 2: used ring at 0x100002002 is not aligned to 4 bytes", { $0.queues[1].used += 2 }),
            ("queue 0: desc 0x80000000 + 2048 is not inside one region", { $0.queues[0].desc = 0x8000_0000 }),
            ("queue 2: used 0x17ffffff0 + 2054 is not inside one region", { $0.queues[1].used = 0x1_7fff_fff0 }),
            ("queue 2: avail 0x7ffffffe + 518 is not inside one region", { $0.queues[1].avail = 0x7fff_fffe }),
            ("queue 2: guest range 0xfffffffffffffff0 + 2054 overflows 64 bits", { $0.queues[1].used = UInt64.max - 15 }),
        ]
        for (message, change) in cases {
            #expect(problem(change) == message)
        }
    }

    @Test func aResettingDeviceMayListUnsetQueues() {
        var l = Self.sample
        l.status = .resetting
        l.queues[1] = .init(index: 2, size: 0, desc: 0, avail: 0, used: 0)
        #expect(l.validationProblem == nil)
        l.status = .ready
        #expect(l.validationProblem == "queue 2: size 0 is not a power of 2 (split rings need one)")
    }

    @Test func loadReportsOneLineNamingTheFile() {
        #expect(Self.loadError("{", "badjson")?.hasPrefix("FILE: not valid JSON") == true)
        #expect(Self.loadError(#"{"version": 1}"#, "nodevice") == "FILE: missing key 'device' at top level")
        let noFeatures = #"{"version": 1, "device": {"type": "t", "id": 8, "name": "n"}, "regions": [], "queues": []}"#
        #expect(Self.loadError(noFeatures, "nofeatures") == "FILE: missing key 'features' at top level")
        let badGPA = #"{"version": 1, "device": {"type": "t", "id": 8, "name": "n"}, "features": "0x1", "regions": [{"file": "f", "gpa": "0xZZ", "size": 1}], "queues": []}"#
        #expect(Self.loadError(badGPA, "badgpa") == #"FILE: bad value at regions[0].gpa: '0xZZ' is not a 64-bit number (write "0x..." or decimal)"#)
        let badSize = #"{"version": 1, "device": {"type": "t", "id": 8, "name": "n"}, "features": "0x1", "regions": [{"file": "f", "gpa": "0x0", "size": "big"}], "queues": []}"#
        #expect(Self.loadError(badSize, "badsize")?.hasPrefix("FILE: wrong type at regions[0].size") == true)
        let overlap = #"{"version": 1, "device": {"type": "t", "id": 8, "name": "n"}, "features": "0x1", "regions": [{"file": "f", "gpa": "0x0", "size": 4096}, {"file": "f", "gpa": "0x800", "size": 4096}], "queues": []}"#
        #expect(Self.loadError(overlap, "overlap") == "FILE: regions[1] overlaps regions[0] in guest-physical space")
        do {
            _ = try DeviceLayout.load(path: "/nonexistent/vqtap-layout.json")
            Issue.record("loading a missing file succeeded")
        } catch {
            #expect("\(error)".hasPrefix("/nonexistent/vqtap-layout.json: cannot read: "))
        }
    }
}
