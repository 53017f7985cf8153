import Testing
import VQWire

@Suite struct UnitsTests {
    @Test(arguments: [
        ("500us", UInt64(500_000)), ("20ms", 20_000_000), ("5s", 5_000_000_000), ("2m", 120_000_000_000),
        ("3", 3_000_000_000), ("0.5", 500_000_000), ("100ns", 100), ("1h", 3_600_000_000_000), ("0", 0),
    ])
    func durations(text: String, ns: UInt64) {
        #expect(Units.duration(text) == ns)
    }

    @Test(arguments: ["", "ms", "5x", "-1s", "1e3s", "5 s s", "1..2s"])
    func badDurations(text: String) {
        #expect(Units.duration(text) == nil)
    }

    @Test(arguments: [
        ("512", UInt64(512)), ("4k", 4096), ("64K", 65536), ("1M", 1 << 20), ("2G", 2 << 30),
        ("1.5k", 1536), ("4KiB", 4096), ("1MB", 1 << 20),
    ])
    func sizes(text: String, bytes: UInt64) {
        #expect(Units.size(text) == bytes)
    }

    @Test(arguments: ["", "k", "4q", "0.3", "-4k", "99999999999T"])
    func badSizes(text: String) {
        #expect(Units.size(text) == nil)
    }

    @Test func counts() {
        #expect(Units.count("100k") == 100_000)
        #expect(Units.count("1.5M") == 1_500_000)
        #expect(Units.count("7") == 7)
        #expect(Units.count("x") == nil)
    }

    @Test func formatting() {
        #expect(Units.formatDuration(ns: 80_000) == "80us")
        #expect(Units.formatDuration(ns: 2_000_000) == "2ms")
        #expect(Units.formatDuration(ns: 1_500_000_000) == "1.5s")
        #expect(Units.formatDuration(ns: 7) == "7ns")
        #expect(Units.formatSize(4096) == "4k")
        #expect(Units.formatSize(1 << 20) == "1M")
        #expect(Units.formatSize(1000) == "1000")
    }
}
